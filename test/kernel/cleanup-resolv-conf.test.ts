// `vipmesh cleanup` removes the resolv.conf the agent wrote for its tasks
// (/etc/netns/NAME/resolv.conf, marked as ours) and nothing it did not write.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import test from 'node:test';
import { resolvConfText } from '../../src/resolver/resolv-conf.js';
import { vipmesh } from '../helpers/cli.js';
import { cluster } from '../helpers/cluster.js';

test('cleanup removes our resolv.conf of every task on the node and leaves a foreign one', async (t) => {
  const c = await cluster(t);
  const file = (ns: string) => `/etc/netns/${ns}/resolv.conf`;
  const foreignText = 'nameserver 192.0.2.53\n';
  for (const ns of [c.ns.web, c.ns.api, c.ns.client]) {
    t.after(() => rmSync(`/etc/netns/${ns}`, { recursive: true, force: true }));
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  }
  writeFileSync(file(c.ns.web), resolvConfText([]));
  writeFileSync(file(c.ns.api), resolvConfText(['example.org']));
  writeFileSync(file(c.ns.client), foreignText);

  const result = await vipmesh(['cleanup', '-c', c.catalog, '--node', 'node-1'], { VIPMESH_RUN_DIR: c.runDir });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.ok(!existsSync(`/etc/netns/${c.ns.web}`), 'our resolv.conf (and its then empty directory) is gone');
  assert.ok(!existsSync(file(c.ns.api)), 'our resolv.conf with a search line is gone');
  assert.equal(readFileSync(file(c.ns.client), 'utf8'), foreignText, 'a resolv.conf vipmesh did not write stays as it was');
  assert.match(result.stdout, new RegExp(`# removed ${file(c.ns.web).replace(/\./g, '\\.')}\\n`));
});
