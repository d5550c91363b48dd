import assert from 'node:assert/strict';
import test from 'node:test';
import { planNode } from '../../../src/plan/index.js';
import type { NamespacePlan, NodePlan } from '../../../src/plan/types.js';
import { renderPlanText } from '../../../src/render/plan.js';
import { catalogOf, facts } from '../../helpers/catalog.js';

// appnet has a load balancer on node-1 only; other has none anywhere.
const CLUSTER = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  other: { subnet: 10.0.2.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1:
    address: 192.0.2.11
    loadBalancers: { appnet: { netns: /run/netns/lb-appnet, address: 10.0.1.250 } }
  node-2: { address: 192.0.2.12 }
services:
  web: { vips: { appnet: 10.0.1.2 }, lb: { scheduler: sh, persistence: 60 } }
  api: { vips: { appnet: 10.0.1.3, other: 10.0.2.3 } }
  db: { vips: { other: 10.0.2.2 } }
  peers: { endpointMode: dnsrr, networks: [appnet] }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/web1, addresses: { appnet: 10.0.1.11 }, weight: 3 }
  web.2: { service: web, node: node-2, netns: /run/netns/web2, addresses: { appnet: 10.0.1.12 } }
  web.3: { service: web, node: node-2, netns: /run/netns/web3, addresses: { appnet: 10.0.1.13 }, health: unhealthy }
  api.1: { service: api, node: node-1, netns: /run/netns/api1, addresses: { appnet: 10.0.1.21, other: 10.0.2.21 } }
  db.1: { service: db, node: node-2, netns: /run/netns/db1, addresses: { other: 10.0.2.31 } }
  peers.1: { service: peers, node: node-1, netns: /run/netns/peers1, addresses: { appnet: 10.0.1.41 } }
`;

const catalog = catalogOf(CLUSTER);

function ns(plan: NodePlan, key: string): NamespacePlan {
  const found = plan.namespaces.find((n) => n.key === key);
  assert.ok(found, `namespace ${key} is planned (have: ${plan.namespaces.map((n) => n.key).join(', ')})`);
  return found;
}

const rules = (plan: NamespacePlan, table: string, name: string) =>
  plan.chains.find((c) => c.table === table && c.name === name)?.rules ?? [];

test('a network\'s load balancer comes after the node\'s own namespaces and before the tasks', () => {
  const plan = planNode(catalog, 'node-1', facts());
  assert.deepEqual(plan.namespaces.map((n) => `${n.role} ${n.key}`), [
    'load-balancer /run/netns/lb-appnet', 'task /run/netns/api1', 'task /run/netns/peers1', 'task /run/netns/web1',
  ]);
});

test('the load balancer marks each VIP of its network in INPUT, balances it over every node\'s tasks and SNATs to itself', () => {
  const lb = ns(planNode(catalog, 'node-1', facts()), '/run/netns/lb-appnet');
  assert.equal(lb.network, 'appnet');
  const [api, web] = lb.ipvs;
  assert.ok(api && web && lb.ipvs.length === 2, 'one IPVS service per VIP of appnet');
  assert.deepEqual(lb.chains.map((c) => `${c.table} ${c.name} <- ${c.jumps.map((j) => j.from).join(',')}`), [
    'mangle VIPMESH-INPUT <- INPUT', 'nat VIPMESH-POSTROUTING <- POSTROUTING',
  ]);
  const hex = (mark: number) => `0x${mark.toString(16)}`;
  assert.deepEqual(rules(lb, 'mangle', 'VIPMESH-INPUT'), [
    `-d 10.0.1.3/32 -m comment --comment "api/appnet" -j MARK --set-xmark ${hex(api.fwmark)}/0xffffffff`,
    `-d 10.0.1.2/32 -m comment --comment "web/appnet" -j MARK --set-xmark ${hex(web.fwmark)}/0xffffffff`,
  ]);
  assert.deepEqual(rules(lb, 'nat', 'VIPMESH-POSTROUTING'), [
    `-m mark --mark ${hex(api.fwmark)} -m comment --comment "api/appnet" -j SNAT --to-source 10.0.1.250`,
    `-m mark --mark ${hex(web.fwmark)} -m comment --comment "web/appnet" -j SNAT --to-source 10.0.1.250`,
  ]);
  // Serving tasks on both nodes (the unhealthy one left out), at port 0, with their weights.
  assert.deepEqual(web.realServers.map((r) => `${r.address}:${r.port} w${r.weight} ${r.task}`),
    ['10.0.1.11:0 w3 web.1', '10.0.1.12:0 w1 web.2']);
  assert.deepEqual([web.scheduler, web.persistence], ['sh', 60]);
  assert.deepEqual(web.balances, { kind: 'vip', service: 'web', network: 'appnet' });
  assert.deepEqual(lb.sysctls.map((s) => `${s.name}=${s.value}`), [
    'net.ipv4.ip_forward=1', 'net.ipv4.vs.conntrack=1', 'net.ipv4.vs.expire_nodest_conn=1', 'net.ipv4.vs.expire_quiescent_template=1',
  ]);
  assert.deepEqual(lb.addresses, [
    { address: '10.0.1.2', prefixLength: 32, anchor: '10.0.1.250', service: 'web', network: 'appnet' },
    { address: '10.0.1.3', prefixLength: 32, anchor: '10.0.1.250', service: 'api', network: 'appnet' },
  ]);
});

test('tasks keep only the DNS redirect on a balanced network, and the per-task VIPs of the others', () => {
  const plan = planNode(catalog, 'node-1', facts());
  for (const key of ['/run/netns/web1', '/run/netns/peers1']) {
    const task = ns(plan, key);
    assert.deepEqual(task.chains.map((c) => c.name), ['VIPMESH-DNS-OUTPUT', 'VIPMESH-DNS-POSTROUTING'], key);
    assert.deepEqual([task.ipvs, task.sysctls], [[], []], key);
  }
  // api.1 is on both: appnet's VIPs are the load balancer's, other's stay in the task.
  const api = ns(plan, '/run/netns/api1');
  assert.deepEqual(api.ipvs.map((v) => v.label), ['api/other', 'db/other']);
  assert.deepEqual(rules(api, 'mangle', 'VIPMESH-OUTPUT').map((r) => r.split(' ')[1]), ['10.0.2.3/32', '10.0.2.2/32']);
});

test('a node without a load balancer keeps the per-task model on the same network', () => {
  const plan = planNode(catalog, 'node-2', facts());
  assert.ok(plan.namespaces.every((n) => n.role === 'task'));
  assert.deepEqual(ns(plan, '/run/netns/web2').ipvs.map((v) => v.label), ['api/appnet', 'web/appnet']);
});

test('a VIP keeps the mark already programmed in the load balancer', () => {
  const marks = new Map([['/run/netns/lb-appnet', new Map([['web/appnet', 0x56abcdef]])]]);
  const lb = ns(planNode(catalog, 'node-1', facts({ marks })), '/run/netns/lb-appnet');
  assert.equal(lb.ipvs.find((v) => v.label === 'web/appnet')?.fwmark, 0x56abcdef);
});

test('a load balancer with nothing to balance is not planned', () => {
  const dnsrrOnly = catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes:
  node-1: { address: 192.0.2.11, loadBalancers: { appnet: { netns: /run/netns/lb-appnet, address: 10.0.1.250 } } }
services:
  peers: { endpointMode: dnsrr, networks: [appnet] }
tasks:
  peers.1: { service: peers, node: node-1, netns: /run/netns/peers1, addresses: { appnet: 10.0.1.41 } }
`);
  assert.deepEqual(planNode(dnsrrOnly, 'node-1', facts()).namespaces.map((n) => n.role), ['task']);
});

test('the plan text prints a load balancer\'s VIP addresses after its sysctls', () => {
  const text = renderPlanText(planNode(catalog, 'node-1', facts()));
  const section = text.slice(text.indexOf('# netns /run/netns/lb-appnet\n'), text.indexOf('\n# netns /run/netns/api1'));
  assert.match(section, /# sysctl net\.ipv4\.vs\.expire_quiescent_template=1\n# address 10\.0\.1\.2\/32 beside 10\.0\.1\.250\n# address 10\.0\.1\.3\/32 beside 10\.0\.1\.250\n$/);
});
