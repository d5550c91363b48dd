// A node the catalog does not have, by any name: one that left the cluster
// while its agent still runs, or one that only Object.prototype "has".
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { planNode } from '../../../src/plan/index.js';
import { catalogOf, facts } from '../../helpers/catalog.js';
import { vipmesh } from '../../helpers/cli.js';
import { FIXTURES } from '../../helpers/paths.js';

const NOT_NODES = ['gone', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];

// Every node gets the routing mesh, so any node the planner wrongly believed in would get a plan.
const catalog = catalogOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1: { address: 192.0.2.11, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.2 } }
services:
  web: { vips: { appnet: 10.0.1.2 }, ports: [{ target: 80, published: 8080 }] }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/web-1, addresses: { appnet: 10.0.1.3, ingress: 10.255.0.3 } }
`);

test('a node the catalog does not have gets the empty plan, not an exception', () => {
  assert.ok(planNode(catalog, 'node-1', facts()).namespaces.length > 0, 'the catalog plans something for its own node');
  for (const node of NOT_NODES) {
    assert.deepEqual(planNode(catalog, node, facts()), { node, namespaces: [] }, node);
  }
});

// Every command checks --node alike (cli/main.ts loadForNode); plan and diff stand for them. Not
// reconcile or cleanup: on a regression they would write to this machine's namespaces.
const COMMANDS = { plan: ['constructor', 'toString', '__proto__', 'hasOwnProperty'], diff: ['constructor', '__proto__'] };

for (const [command, nodes] of Object.entries(COMMANDS)) {
  test(`${command} refuses a --node only Object.prototype has, with exit 2`, async () => {
    const file = join(FIXTURES, 'article-003-whoami.yaml');
    for (const node of nodes) {
      const result = await vipmesh([command, '-c', file, '--node', node]);
      assert.equal(result.exitCode, 2, `${command} --node ${node}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      assert.equal(result.stderr, `vipmesh: node ${node} is not in ${file} (its nodes: node-1, node-2, node-3); pass --node NAME\n`);
    }
  });
}
