import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { parseResolvConf, readHostResolvConf } from '../../../src/resolver/upstreams.js';

test('nameservers in order, port 53, at most 3, skipping 127.0.0.11 and non-addresses', () => {
  const conf = parseResolvConf(`
# generated
nameserver 127.0.0.11
nameserver 192.0.2.53   # the office
nameserver not-an-address
nameserver 2001:db8::53
; a comment
nameserver 198.51.100.53
nameserver 203.0.113.53
`);
  assert.deepEqual(conf.upstreams, [
    { address: '192.0.2.53', port: 53 },
    { address: '2001:db8::53', port: 53 },
    { address: '198.51.100.53', port: 53 },
  ]);
});

test('a systemd-resolved stub on loopback is kept: the agent forwards from its own namespace', () => {
  assert.deepEqual(parseResolvConf('nameserver 127.0.0.53\noptions edns0 trust-ad\n').upstreams, [{ address: '127.0.0.53', port: 53 }]);
});

test('a zone on a link-local server is kept as written', () => {
  assert.deepEqual(parseResolvConf('nameserver fe80::1%eth0\n').upstreams, [{ address: 'fe80::1%eth0', port: 53 }]);
});

test('the last search or domain line wins, as in glibc', () => {
  assert.deepEqual(parseResolvConf('search a.test b.test\n').search, ['a.test', 'b.test']);
  assert.deepEqual(parseResolvConf('search a.test b.test\ndomain c.test\n').search, ['c.test']);
  assert.deepEqual(parseResolvConf('domain c.test\nsearch a.test\n').search, ['a.test']);
  assert.deepEqual(parseResolvConf('nameserver 192.0.2.1\n').search, []);
});

test('no nameserver: no upstreams (unknown names get SERVFAIL)', () => {
  assert.deepEqual(parseResolvConf('').upstreams, []);
  assert.deepEqual(parseResolvConf('nameserver 127.0.0.11\n').upstreams, []);
});

test('readHostResolvConf reads a file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-resolv-'));
  try {
    const path = join(dir, 'resolv.conf');
    await writeFile(path, 'nameserver 192.0.2.7\nsearch corp.test\n');
    assert.deepEqual(await readHostResolvConf(path), { upstreams: [{ address: '192.0.2.7', port: 53 }], search: ['corp.test'] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
