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

// Every command checks --node alike, before anything else reads the catalog (cli/main.ts loadForNode);
// plan stands for them, needing no root. `__proto__` is no node name at all: it may be refused as such.
test('plan refuses a --node only Object.prototype has, with exit 2', async () => {
  const file = join(FIXTURES, 'article-003-whoami.yaml');
  for (const node of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    const result = await vipmesh(['plan', '-c', file, '--node', node]);
    assert.equal(result.exitCode, 2, `--node ${node}: ${result.stderr}`);
    assert.equal(result.stdout, '');
    assert.ok(result.stderr.startsWith('vipmesh: ') && result.stderr.includes(node), result.stderr);
    assert.doesNotMatch(result.stderr, /nothing to program/);
    if (node !== '__proto__') assert.match(result.stderr, new RegExp(`node ${node} is not in .*\\(its nodes: node-1, node-2, node-3\\)`));
  }
});
