import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { formatProblems } from '../../../src/catalog/problems.js';

function problemsOf(text: string): string[] {
  const result = parseCatalog(text);
  if (result.ok) assert.fail('expected the catalog to be rejected');
  return formatProblems(result.problems).split('\n');
}

const NETWORKS = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  backnet: { subnet: 10.0.2.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
`;

test('a load balancer per network is read, its namespace path normalized', () => {
  const result = parseCatalog(`${NETWORKS}nodes:
  node-1:
    address: 192.0.2.11
    loadBalancers:
      appnet: { netns: /var/run/netns/lb-appnet, address: 10.0.1.250 }
      backnet: { netns: /run/netns//lb-backnet/, address: 10.0.2.250 }
`);
  if (!result.ok) assert.fail(formatProblems(result.problems));
  const node = result.catalog.nodes['node-1']!;
  assert.deepEqual({ ...node.loadBalancers }, {
    appnet: { netns: '/run/netns/lb-appnet', address: '10.0.1.250' },
    backnet: { netns: '/run/netns/lb-backnet', address: '10.0.2.250' },
  });
});

test('a load balancer is on a known, non-ingress network, with an address inside it', () => {
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1:
    address: 192.0.2.11
    loadBalancers:
      appnet: { netns: /run/netns/lb-a, address: 10.0.2.250 }
      backnet: { netns: /run/netns/lb-b, address: 10.0.2.255 }
      ingress: { netns: /run/netns/lb-i, address: 10.255.0.9 }
      nosuch: { netns: /run/netns/lb-n, address: 10.9.0.9 }
`), [
    'nodes.node-1.loadBalancers.appnet.address: 10.0.2.250 is not inside appnet\'s subnet 10.0.1.0/24',
    'nodes.node-1.loadBalancers.backnet.address: 10.0.2.255 is the broadcast address of backnet\'s subnet 10.0.2.0/24',
    'nodes.node-1.loadBalancers.ingress: ingress is the ingress network, balanced in the ingress sandbox; '
      + 'a load balancer is for another network',
    'nodes.node-1.loadBalancers.nosuch: unknown network "nosuch"',
  ]);
});

test('a load balancer is a map of netns and address, each field named where it is wrong', () => {
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1:
    address: 192.0.2.11
    loadBalancers:
      extra: { netns: /run/netns/lb-e, address: 10.0.1.9, mode: fast }
      broken: { netns: relative, address: nonsense }
      bare: 10.0.1.8
  node-2:
    address: 192.0.2.12
    loadBalancers: [appnet]
`), [
    'nodes.node-1.loadBalancers.bare: must be a map with netns and address',
    'nodes.node-1.loadBalancers.broken.address: nonsense is not a valid IPv4 or IPv6 address',
    'nodes.node-1.loadBalancers.broken.netns: must be an absolute path such as /run/netns/name',
    'nodes.node-1.loadBalancers.extra.mode: unknown field "mode"',
    'nodes.node-2.loadBalancers: must be a map of network name to load balancer',
  ]);
});

test('a load balancer\'s address is unique on its network', () => {
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1:
    address: 192.0.2.11
    loadBalancers: { appnet: { netns: /run/netns/lb-1, address: 10.0.1.2 } }
  node-2:
    address: 192.0.2.12
    loadBalancers: { appnet: { netns: /run/netns/lb-2, address: 10.0.1.3 } }
services:
  web: { vips: { appnet: 10.0.1.3 } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/t1, addresses: { appnet: 10.0.1.2 } }
`), [
    'services.web.vips.appnet: 10.0.1.3 is already used by nodes.node-2.loadBalancers.appnet.address',
    'tasks.web.1.addresses.appnet: 10.0.1.2 is already used by nodes.node-1.loadBalancers.appnet.address',
  ]);
});

test('a load balancer\'s namespace is its own: not the host\'s, the sandbox\'s, another balancer\'s or a task\'s', () => {
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1:
    address: 192.0.2.11
    netns: /run/netns/n1
    ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.2 }
    loadBalancers:
      appnet: { netns: /run/netns/n1, address: 10.0.1.250 }
      backnet: { netns: /run/netns/sbox, address: 10.0.2.250 }
  node-2:
    address: 192.0.2.12
    loadBalancers:
      appnet: { netns: /run/netns/lb, address: 10.0.1.251 }
      backnet: { netns: /var/run/netns/lb, address: 10.0.2.251 }
tasks:
  t: { node: node-2, netns: /run/netns/lb, addresses: { appnet: 10.0.1.3 } }
`), [
    'nodes.node-1.loadBalancers.appnet.netns: the load balancer of network appnet and the node itself (nodes.node-1.netns) '
      + 'both use the namespace /run/netns/n1 on node node-1; each needs its own',
    'nodes.node-1.loadBalancers.backnet.netns: the load balancer of network backnet and the ingress sandbox '
      + '(nodes.node-1.ingressSandbox.netns) both use the namespace /run/netns/sbox on node node-1; each needs its own',
    'nodes.node-2.loadBalancers.backnet.netns: the load balancer of network backnet and the load balancer of network appnet '
      + '(nodes.node-2.loadBalancers.appnet.netns) both use the namespace /run/netns/lb on node node-2, '
      + 'written /var/run/netns/lb and /run/netns/lb; each needs its own',
    'tasks.t.netns: running task t and the load balancer of network appnet (nodes.node-2.loadBalancers.appnet.netns) '
      + 'both use the namespace /run/netns/lb on node node-2; each needs its own',
  ]);
});
