// The lab's topology for a catalog: what it plumbs, and what it refuses with a clear problem.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { loadCatalog } from '../../../src/catalog/load.js';
import { type LabTopology, labTopology } from '../../../src/lab/topology.js';
import { catalogOf } from '../../helpers/catalog.js';
import { FIXTURES } from '../../helpers/paths.js';

async function labYaml(): Promise<LabTopology> {
  const loaded = await loadCatalog(join(FIXTURES, 'lab.yaml'));
  assert.ok(loaded.ok);
  const result = labTopology(loaded.catalog);
  assert.ok(result.ok, result.ok ? '' : result.problems.join('\n'));
  return result.topology;
}

test('fixtures/lab.yaml: one namespace per node, task, sandbox, load balancer and segment, all vipmesh-lab-*', async () => {
  const t = await labYaml();
  const names = t.namespaces.map((ns) => ns.name);
  assert.ok(names.every((n) => n.startsWith('vipmesh-lab-')), names.join(' '));
  assert.equal(new Set(names).size, names.length, 'no namespace twice');
  const kinds = (kind: string) => t.namespaces.filter((ns) => ns.role.kind === kind).map((ns) => ns.name).sort();
  assert.deepEqual(kinds('node'), ['vipmesh-lab-node-1', 'vipmesh-lab-node-2']);
  assert.deepEqual(kinds('ingress-sandbox'), ['vipmesh-lab-ingress-sbox-1', 'vipmesh-lab-ingress-sbox-2']);
  assert.deepEqual(kinds('load-balancer'), ['vipmesh-lab-lb-appnet-1', 'vipmesh-lab-lb-appnet-2']);
  assert.deepEqual(kinds('segment'), ['vipmesh-lab-net-appnet', 'vipmesh-lab-net-ingress', 'vipmesh-lab-underlay']);
  assert.deepEqual(kinds('outside'), ['vipmesh-lab-outside']);
  assert.equal(kinds('task').length, 6);
  // Segments come first: everything else is plugged into them.
  const firstOther = t.namespaces.findIndex((ns) => ns.role.kind !== 'segment');
  assert.ok(t.namespaces.slice(firstOther).every((ns) => ns.role.kind !== 'segment'));
});

test('fixtures/lab.yaml: addresses take their network\'s prefix; the outside client shares the nodes\' /24', async () => {
  const t = await labYaml();
  const plug = (ns: string, segment: string) => t.plugs.filter((p) => p.ns === ns && p.segment === segment).map((p) => p.cidr);
  assert.deepEqual(plug('vipmesh-lab-whoami-1', 'vipmesh-lab-net-appnet'), ['10.0.1.11/24']);
  assert.deepEqual(plug('vipmesh-lab-whoami-1', 'vipmesh-lab-net-ingress'), ['10.255.0.11/16']);
  assert.deepEqual(plug('vipmesh-lab-client', 'vipmesh-lab-net-ingress'), []);
  assert.deepEqual(plug('vipmesh-lab-lb-appnet-2', 'vipmesh-lab-net-appnet'), ['10.0.1.251/24']);
  assert.deepEqual(plug('vipmesh-lab-ingress-sbox-2', 'vipmesh-lab-net-ingress'), ['10.255.0.3/16']);
  assert.deepEqual(plug('vipmesh-lab-node-2', 'vipmesh-lab-underlay'), ['192.0.2.12/24']);
  assert.deepEqual(t.outside, { ns: 'vipmesh-lab-outside', address: '192.0.2.100' });
  assert.deepEqual(plug('vipmesh-lab-outside', 'vipmesh-lab-underlay'), ['192.0.2.100/24']);
  // One interface name per network in each namespace.
  for (const ns of t.namespaces) {
    const ifnames = t.plugs.filter((p) => p.ns === ns.name).map((p) => p.ifname);
    assert.equal(new Set(ifnames).size, ifnames.length, `${ns.name}: ${ifnames.join(' ')}`);
  }
});

test('fixtures/lab.yaml: node N links to its sandbox as the mesh scenario does, with routes both ways', async () => {
  const t = await labYaml();
  assert.deepEqual(t.wires, [
    { a: 'vipmesh-lab-node-1', aIf: 'sb0', aCidr: '172.18.1.1/24', b: 'vipmesh-lab-ingress-sbox-1', bIf: 'gw0', bCidr: '172.18.1.2/24' },
    { a: 'vipmesh-lab-node-2', aIf: 'sb0', aCidr: '172.18.2.1/24', b: 'vipmesh-lab-ingress-sbox-2', bIf: 'gw0', bCidr: '172.18.2.2/24' },
  ]);
  assert.deepEqual(t.routes, [
    { ns: 'vipmesh-lab-node-1', args: ['10.255.0.2/32', 'via', '172.18.1.2'] },
    { ns: 'vipmesh-lab-ingress-sbox-1', args: ['default', 'via', '172.18.1.1'] },
    { ns: 'vipmesh-lab-node-2', args: ['10.255.0.3/32', 'via', '172.18.2.2'] },
    { ns: 'vipmesh-lab-ingress-sbox-2', args: ['default', 'via', '172.18.2.1'] },
  ]);
});

test('fixtures/lab.yaml: a load balancer is reached by ARP only from its own node, except for its own address', async () => {
  const t = await labYaml();
  const guarded = (lb: string) => t.arpGuards.filter((g) => g.to === lb).map((g) => `${g.from} allow ${g.allow}`).sort();
  assert.deepEqual(guarded('vipmesh-lab-lb-appnet-1'), [
    'vipmesh-lab-backend-2 allow 10.0.1.250',
    'vipmesh-lab-lb-appnet-2 allow 10.0.1.250',
    'vipmesh-lab-whoami-3 allow 10.0.1.250',
  ]);
  assert.deepEqual(guarded('vipmesh-lab-lb-appnet-2'), [
    'vipmesh-lab-backend-1 allow 10.0.1.251',
    'vipmesh-lab-client allow 10.0.1.251',
    'vipmesh-lab-lb-appnet-1 allow 10.0.1.251',
    'vipmesh-lab-whoami-1 allow 10.0.1.251',
    'vipmesh-lab-whoami-2 allow 10.0.1.251',
  ]);
  assert.ok(t.arpGuards.every((g) => g.segment === 'vipmesh-lab-net-appnet'));
});

test('fixtures/lab.yaml: every running task gets a server on port 80 and on its service\'s probe port', async () => {
  const t = await labYaml();
  const ports = Object.fromEntries(t.tasks.map((task) => [task.name, task.ports]));
  assert.deepEqual(ports, {
    'backend.1': [80, 9000], 'backend.2': [80, 9000], client: [80], 'whoami.1': [80], 'whoami.2': [80], 'whoami.3': [80],
  });
  assert.ok(t.tasks.every((task) => task.running));
});

const BASE = `version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
`;

function problems(yaml: string): string {
  const result = labTopology(catalogOf(yaml));
  assert.ok(!result.ok, 'the lab should refuse this catalog');
  return result.problems.join('\n');
}

test('a node without its own namespace, or one outside /run/netns, is refused with the path', () => {
  const text = problems(`${BASE}nodes:
  a: { address: 192.0.2.1 }
  b: { address: 192.0.2.2, netns: /proc/1/ns/net }
tasks:
  t: { node: a, pid: 1, addresses: { appnet: 10.0.1.3 } }
`);
  assert.match(text, /nodes\.a\.netns: the lab plays each node in its own namespace: give \/run\/netns\/NAME/);
  assert.match(text, /nodes\.b\.netns: \/proc\/1\/ns\/net is not a namespace the lab can make/);
  assert.match(text, /tasks\.t\.netns: \/proc\/1\/ns\/net is not a namespace the lab can make/);
});

test('nodes on different /24s, and one namespace on two nodes, are refused', () => {
  const text = problems(`${BASE}nodes:
  a: { address: 192.0.2.1, netns: /run/netns/x-a, loadBalancers: { appnet: { netns: /run/netns/lb, address: 10.0.1.250 } } }
  b: { address: 198.51.100.2, netns: /run/netns/x-b, loadBalancers: { appnet: { netns: /run/netns/lb, address: 10.0.1.251 } } }
`);
  assert.match(text, /every node on one underlay \/24, but the node addresses lie in 192\.0\.2\.0\/24, 198\.51\.100\.0\/24/);
  assert.match(text, /nodes\.b\.loadBalancers\.appnet\.netns: \/run\/netns\/lb is nodes\.a\.loadBalancers\.appnet\.netns's as well/);
});

test('a network over the sandbox links (172.18.0.0/16) and an IPv6 network are refused', () => {
  const text = problems(`version: 1
networks:
  gw: { subnet: 172.18.5.0/24 }
  six: { subnet: 'fd00:1::/64' }
nodes:
  a: { address: 192.0.2.1, netns: /run/netns/x-a }
`);
  assert.match(text, /networks\.gw: 172\.18\.5\.0\/24 overlaps 172\.18\.0\.0\/16/);
  assert.match(text, /networks\.six: the lab plumbs IPv4 networks only/);
});

test('the outside client avoids a node that holds .100', () => {
  const result = labTopology(catalogOf(`${BASE}nodes:
  a: { address: 192.0.2.100, netns: /run/netns/x-a }
`));
  assert.ok(result.ok);
  assert.equal(result.topology.outside.address, '192.0.2.254');
});
