// `vipmesh resolver -c etcd://…`: it starts from the catalog in etcd and reads it
// again on SIGHUP; a catalog there that no longer fits leaves the previous one
// serving. (Its answers are the resolver's own tests; here the node has no local
// task, so nothing but the catalog source is exercised.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { vipmesh } from '../helpers/cli.js';
import { startEtcd } from '../helpers/etcd.js';
import { CLI } from '../helpers/paths.js';

const HANG_MS = 30_000;

const catalog = (nodes: readonly string[]) => `version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
${nodes.map((node, i) => `  ${node}: { address: 192.0.2.${11 + i} }\n`).join('')}services:
  web: { vips: { appnet: 10.0.1.2 } }
tasks:
  web.1.x: { service: web, node: node-2, netns: /run/netns/nowhere, addresses: { appnet: 10.0.1.11 } }
`;

test('the resolver reads its catalog from etcd at start and again on SIGHUP, keeping the last good one', { timeout: 90_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const source = etcd.source('/vm');
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-etcdres-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'catalog.yaml');
  const pushCatalog = async (nodes: readonly string[]) => {
    writeFileSync(file, catalog(nodes));
    const pushed = await vipmesh(['catalog', 'push', file, '--to', source]);
    assert.equal(pushed.exitCode, 0, pushed.stderr);
  };
  await pushCatalog(['node-1', 'node-2']);

  const child = spawn(process.execPath, [CLI, 'resolver', '-c', source, '--node', 'node-1', '--upstream', '127.0.0.1:5399'], {
    env: { ...process.env, VIPMESH_RUN_DIR: join(dir, 'run') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let output = '';
  const waiters = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    for (const wake of waiters) wake();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const waitFor = async (pattern: RegExp, from: number): Promise<number> => {
    const deadline = Date.now() + HANG_MS;
    for (;;) {
      const match = pattern.exec(output.slice(from));
      if (match !== null) return from + match.index + match[0].length;
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`no ${pattern} in the resolver's output:\n${output}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        setTimeout(wake, 500);
      });
    }
  };

  let at = await waitFor(/serving 0 namespaces; the catalog in etcd is read again on SIGHUP\n/, 0);

  await pushCatalog(['node-2']);
  child.kill('SIGHUP');
  at = await waitFor(/node node-1 is not in etcd:\/\/\S+\/vm .*; still serving the previous catalog\n/, at);

  await pushCatalog(['node-1', 'node-2', 'node-3']);
  child.kill('SIGHUP');
  at = await waitFor(/reloaded \(SIGHUP\): serving 0 namespaces\n/, at);

  child.kill('SIGTERM');
  assert.equal(await exited, 0, output);
  assert.doesNotMatch(output, /cannot watch|watching .* failed|can't read/, 'no file is watched or read for an etcd source');
});
