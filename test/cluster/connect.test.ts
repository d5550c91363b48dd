// connectEtcd against real etcd members: plain, TLS with a client certificate,
// and a CA that did not sign the members' certificates.
import assert from 'node:assert/strict';
import test from 'node:test';
import { connectEtcd, describeEtcdError } from '../../src/cluster/connect.js';
import { parseSource } from '../../src/cluster/source.js';
import { startEtcd } from '../helpers/etcd.js';

const etcdSource = (text: string) => {
  const parsed = parseSource(text);
  if (!parsed.ok || parsed.source.kind !== 'etcd') throw new Error(`not an etcd source: ${text}`);
  return parsed.source;
};

test('a 3-member cluster takes a write through one member and answers it through another', async (t) => {
  const etcd = await startEtcd(t, { members: 3 });
  const client = await connectEtcd(etcdSource(etcd.source('/t')));
  t.after(() => client.close());
  await client.put('/t/v1/x').value('1');
  assert.equal((await etcd.etcdctl(['get', '--print-value-only', '/t/v1/x'])).trim(), '1');
  await etcd.stop(0);
  assert.equal(await client.get('/t/v1/x').string(), '1', 'two of three members still answer');
});

test('etcds:// with the CA and a client certificate; another CA fails naming the endpoint', async (t) => {
  const etcd = await startEtcd(t, { members: 1, tls: true });
  const source = etcdSource(etcd.source('/t'));
  assert.equal(source.secure, true);
  const tls = etcd.tls!;
  const good = await connectEtcd(source, { ca: tls.ca, cert: tls.cert, key: tls.key });
  t.after(() => good.close());
  await good.put('/t/v1/y').value('2');
  assert.equal(await good.get('/t/v1/y').string(), '2');

  const bad = await connectEtcd(source, { ca: tls.otherCa, cert: tls.cert, key: tls.key });
  t.after(() => bad.close());
  const error = await bad.get('/t/v1/y').string().then(() => undefined, (e: unknown) => e);
  assert.ok(error !== undefined, 'a client that cannot verify the member must not read');
  assert.match(describeEtcdError(source, error), new RegExp(`etcd at ${etcd.endpoints[0]!.replaceAll('.', '\\.')}`));

  await assert.rejects(connectEtcd(source, {}), /needs --etcd-ca/);
  await assert.rejects(connectEtcd(source, { ca: '/nonexistent/ca.crt' }), /--etcd-ca \/nonexistent\/ca\.crt: no such file/);
});
