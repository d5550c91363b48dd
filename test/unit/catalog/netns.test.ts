import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { normalizeNetns } from '../../../src/catalog/netns.js';
import { formatProblems } from '../../../src/catalog/problems.js';

test('namespace paths get one spelling', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['/run/netns/x', '/run/netns/x'],
    ['/run/netns//x', '/run/netns/x'],
    ['//run///netns/x', '/run/netns/x'],
    ['/run/netns/x/', '/run/netns/x'],
    ['/run/netns/x//', '/run/netns/x'],
    ['/run/netns/./x', '/run/netns/x'],
    ['/run/netns/x/.', '/run/netns/x'],
    ['/run/netns/a/../x', '/run/netns/x'],
    ['/run/netns/a/b/../../x', '/run/netns/x'],
    ['/../run/netns/x', '/run/netns/x'],
    ['/var/run/netns/x', '/run/netns/x'],
    ['/var/run', '/run'],
    ['/var/run/', '/run'],
    ['/var//run/netns/x', '/run/netns/x'],
    ['/var/./run/netns/x', '/run/netns/x'],
    // /var/run is a symlink to /run: its parent is /, not /var.
    ['/var/run/../x', '/x'],
    ['/var/lib/../run/netns/x', '/run/netns/x'],
    ['/var/runner/x', '/var/runner/x'],
    ['/run/var/run/x', '/run/var/run/x'],
    ['/run/netns/.hidden', '/run/netns/.hidden'],
    ['/run/netns/..x', '/run/netns/..x'],
    ['/run/netns/x.', '/run/netns/x.'],
    ['/proc/1234/ns/net', '/proc/1234/ns/net'],
    ['/', '/'],
    ['//', '/'],
    ['/..', '/'],
  ];
  for (const [path, normal] of cases) {
    assert.equal(normalizeNetns(path), normal, path);
    assert.equal(normalizeNetns(normal), normal, `${normal} is already normal`);
  }
});

test('the normalized catalog carries every namespace path in its one spelling', () => {
  const result = parseCatalog(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 }, ingress: { subnet: 10.255.0.0/16, ingress: true } }
nodes:
  node-1: { address: 192.0.2.11, netns: /var/run/netns/node-1/, ingressSandbox: { netns: /run/netns//sbox, address: 10.255.0.2 } }
tasks:
  plain: { node: node-1, netns: /run/netns/a/../plain }
  by-pid: { node: node-1, pid: 42 }
`);
  if (!result.ok) assert.fail(formatProblems(result.problems));
  const { nodes, tasks } = result.catalog;
  assert.equal(nodes['node-1']?.netns, '/run/netns/node-1');
  assert.equal(nodes['node-1']?.ingressSandbox?.netns, '/run/netns/sbox');
  assert.equal(tasks['plain']?.netns, '/run/netns/plain');
  assert.equal(tasks['by-pid']?.netns, '/proc/42/ns/net');
});

test('a relative or NUL-carrying namespace path is refused', () => {
  const result = parseCatalog(`
version: 1
nodes:
  node-1: { address: 192.0.2.11, netns: run/netns/node-1, ingressSandbox: { netns: ./sbox, address: 10.255.0.2 } }
tasks:
  a: { node: node-1, netns: "netns/a" }
  b: { node: node-1, netns: "/run/netns/b\\0" }
  c: { node: node-1, netns: "" }
`);
  assert.equal(result.ok ? '' : formatProblems(result.problems), [
    'nodes.node-1.ingressSandbox.netns: must be an absolute path such as /run/netns/name',
    'nodes.node-1.netns: must be an absolute path such as /run/netns/name',
    'tasks.a.netns: must be an absolute path such as /run/netns/name',
    'tasks.b.netns: must be an absolute path such as /run/netns/name',
    'tasks.c.netns: must be an absolute path such as /run/netns/name',
  ].join('\n'));
});
