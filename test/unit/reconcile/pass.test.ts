// The pass as a library: run directory in, state out, a typed result back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { runPass, type PassOptions } from '../../../src/reconcile/pass.js';
import { FAILURE_KINDS } from '../../../src/reconcile/types.js';
import { STATE_FILE } from '../../../src/state/store.js';
import { createFakeKernel } from '../../fakes/kernel.js';
import { catalogOf } from '../../helpers/catalog.js';

const CATALOG = catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11, netns: /run/netns/h } }
services: { web: { vips: { appnet: 10.0.1.2 } } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/w1, addresses: { appnet: 10.0.1.11 } }
  web.2: { service: web, node: node-1, netns: /run/netns/w2, addresses: { appnet: 10.0.1.12 } }
`);

async function runDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-pass-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const NONE = { iptables: 0, ipvs: 0, sysctl: 0, conntrack: 0 };

test('a first pass writes, saves state, and the next pass over it writes nothing', async (t) => {
  const dir = await runDir(t);
  const kernel = createFakeKernel({ namespaces: ['/run/netns/h', '/run/netns/w1', '/run/netns/w2'] });
  const options: PassOptions = { catalog: CATALOG, node: 'node-1', mode: 'apply', runDir: dir, kernel, kernelRelease: '6.1.0', now: 0 };
  const first = await runPass(options);
  assert.deepEqual(first.namespaces.flatMap((n) => n.errors), []);
  // Two task namespaces: one iptables transaction, one IPVS batch, one sysctl batch each.
  assert.deepEqual(first.written, { iptables: 2, ipvs: 2, sysctl: 2, conntrack: 0 });
  assert.deepEqual(Object.keys(first.failures), [...FAILURE_KINDS]);
  assert.ok(Object.values(first.failures).every((n) => n === 0));
  assert.equal(first.stateWritten, true);
  const saved = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8'));
  assert.deepEqual(saved, JSON.parse(JSON.stringify(first.state)));

  const second = await runPass(options);
  assert.deepEqual(second.written, NONE, 'a converged node gets no write');
  const changed = await runPass({ ...options, scope: 'changed' });
  assert.deepEqual(changed.written, NONE);
  assert.deepEqual([...changed.skipped].sort(), ['/run/netns/w1', '/run/netns/w2']);
  assert.equal(changed.scope, 'changed');
});

test('a diff writes neither the kernel nor state.json; failures are counted by kind', async (t) => {
  const dir = await runDir(t);
  const kernel = createFakeKernel({ namespaces: ['/run/netns/w1'], ipvs: false });
  const result = await runPass({ catalog: CATALOG, node: 'node-1', mode: 'diff', runDir: dir, kernel, kernelRelease: '6.1.0' });
  assert.equal(result.stateWritten, false);
  await assert.rejects(stat(join(dir, STATE_FILE)), { code: 'ENOENT' });
  assert.deepEqual(result.written, NONE);
  assert.ok(result.namespaces.some((n) => n.changes.length > 0), 'there was drift to report');
  assert.equal(kernel.calls.filter((c) => ['restoreIptables', 'applyIpvs', 'writeSysctls'].includes(c.call)).length, 0);

  const applied = await runPass({ catalog: CATALOG, node: 'node-1', mode: 'apply', runDir: dir, kernel, kernelRelease: '6.1.0' });
  assert.equal(applied.failures.namespace_gone, 1, 'w2 does not exist');
  assert.equal(applied.failures.no_ipvs, 1, 'w1 has no IPVS');
  assert.equal(applied.written.iptables, 1, 'w1 still got its rules');
});

test('an aborted pass saves what it did and names what it did not', async (t) => {
  const dir = await runDir(t);
  const kernel = createFakeKernel({ namespaces: ['/run/netns/w1', '/run/netns/w2'] });
  const result = await runPass({
    catalog: CATALOG, node: 'node-1', mode: 'apply', runDir: dir, kernel, kernelRelease: '6.1.0', signal: AbortSignal.abort(),
  });
  assert.deepEqual(result.namespaces, []);
  assert.deepEqual(result.notHandled.map((n) => n.key), ['/run/netns/w1', '/run/netns/w2']);
  assert.deepEqual(result.written, NONE);
  const saved = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8'));
  assert.deepEqual(Object.keys(saved.namespaces).sort(), ['/run/netns/w1', '/run/netns/w2']);
});

test('importing the pass runs nothing: no output, no exit code, no work', async () => {
  const module = new URL('../../../src/reconcile/pass.js', import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(module)}); if (typeof m.runPass !== 'function') process.exit(9);`;
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(stdout, '');
  assert.equal(stderr, '');
});
