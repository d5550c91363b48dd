import assert from 'node:assert/strict';
import test from 'node:test';
import { planNode } from '../../../src/plan/index.js';
import type { NamespacePlan, NodePlan } from '../../../src/plan/types.js';
import { catalogOf, facts } from '../../helpers/catalog.js';

const CLUSTER = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  other: { subnet: 10.0.2.0/24 }
  v6net: { subnet: "fd00:1::/64" }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1: { address: 192.0.2.11, ingressSandbox: { netns: /run/netns/sbox1, address: 10.255.0.2 } }
  node-2: { address: 192.0.2.12, ingressSandbox: { netns: /run/netns/sbox2, address: 10.255.0.3 } }
services:
  web:
    vips: { appnet: 10.0.1.2, ingress: 10.255.0.9 }
    lb: { scheduler: sh, persistence: 60 }
    ports: [{ target: 80, published: 8080 }]
  db:
    vips: { other: 10.0.2.2 }
    healthcheck: { tcp: 5432 }
  peers:
    endpointMode: dnsrr
    networks: [appnet, v6net]
    ports: [{ target: 9000, published: 9000, mode: host, network: v6net }]
  hp:
    vips: { appnet: 10.0.1.3 }
    ports: [{ target: 81, published: 8081, mode: host }]
tasks:
  web.1.a: { service: web, node: node-1, netns: /run/netns/web1, addresses: { appnet: 10.0.1.11, ingress: 10.255.0.11 }, weight: 5 }
  web.2.b: { service: web, node: node-2, netns: /run/netns/web2, addresses: { appnet: 10.0.1.12, ingress: 10.255.0.12 } }
  web.3.c: { service: web, node: node-2, netns: /run/netns/web3, addresses: { appnet: 10.0.1.13, ingress: 10.255.0.13 }, health: unhealthy }
  web.4.d: { service: web, node: node-1, netns: /run/netns/web4, addresses: { appnet: 10.0.1.14, ingress: 10.255.0.14 }, state: shutdown }
  db.1.a: { service: db, node: node-1, netns: /run/netns/db1, addresses: { other: 10.0.2.11 } }
  db.2.b: { service: db, node: node-2, netns: /run/netns/db2, addresses: { other: 10.0.2.12 }, health: healthy }
  peers.1.a: { service: peers, node: node-1, netns: /run/netns/peers1, addresses: { appnet: 10.0.1.21, v6net: "fd00:1::21" } }
  hp.1.a: { service: hp, node: node-1, netns: /run/netns/hp1, addresses: { appnet: 10.0.1.31 } }
  loner: { node: node-1, pid: 77, addresses: { appnet: 10.0.1.41, other: 10.0.2.41 } }
`;

const catalog = catalogOf(CLUSTER);

function ns(plan: NodePlan, key: string): NamespacePlan {
  const found = plan.namespaces.find((n) => n.key === key);
  assert.ok(found, `namespace ${key} is planned (have: ${plan.namespaces.map((n) => n.key).join(', ')})`);
  return found;
}

function chainRules(plan: NamespacePlan, table: string, name: string, family = 4): readonly string[] {
  return plan.chains.find((c) => c.table === table && c.name === name && c.family === family)?.rules ?? [];
}

test('only running local tasks get a namespace plan; host and sandbox come first', () => {
  const plan = planNode(catalog, 'node-1', facts());
  assert.deepEqual(plan.namespaces.map((n) => n.key), [
    'host', '/run/netns/sbox1', '/run/netns/db1', '/run/netns/hp1', '/proc/77/ns/net', '/run/netns/peers1', '/run/netns/web1',
  ]);
});

test('real servers are the serving tasks on that network: no unhealthy or stopped task', () => {
  const plan = planNode(catalog, 'node-1', facts());
  const web = ns(plan, '/run/netns/web1').ipvs.find((v) => v.label === 'web/appnet');
  assert.ok(web);
  assert.deepEqual(web.realServers.map((r) => `${r.address}:${r.port}w${r.weight}`), ['10.0.1.11:0w5', '10.0.1.12:0w1']);
  assert.equal(web.scheduler, 'sh');
  assert.equal(web.persistence, 60);
});

test('a task reaching its own VIP lands on itself, SNAT-ed to its own address', () => {
  const web1 = ns(planNode(catalog, 'node-1', facts()), '/run/netns/web1');
  const vs = web1.ipvs.find((v) => v.label === 'web/appnet')!;
  assert.ok(vs.realServers.some((r) => r.address === '10.0.1.11'));
  assert.ok(chainRules(web1, 'nat', 'VIPMESH-POSTROUTING').some((r) => r.endsWith('-j SNAT --to-source 10.0.1.11')));
});

test('a local task of a service with a healthcheck serves only after a passing probe; remote ones keep the catalog', () => {
  const labelOf = (p: NodePlan) => ns(p, '/proc/77/ns/net').ipvs.find((v) => v.label === 'db/other')!;
  const without = labelOf(planNode(catalog, 'node-1', facts()));
  assert.deepEqual(without.realServers.map((r) => r.task), ['db.2.b']);
  const passing = labelOf(planNode(catalog, 'node-1', facts({ probes: new Map([['db.1.a', true]]) })));
  assert.deepEqual(passing.realServers.map((r) => r.task), ['db.1.a', 'db.2.b']);
  const failing = labelOf(planNode(catalog, 'node-1', facts({ probes: new Map([['db.1.a', false]]) })));
  assert.deepEqual(failing.realServers.map((r) => r.task), ['db.2.b']);
  // Seen from node-2, db.1.a is remote: its catalog health (unknown) serves.
  const remote = ns(planNode(catalog, 'node-2', facts()), '/run/netns/db2').ipvs.find((v) => v.label === 'db/other')!;
  assert.deepEqual(remote.realServers.map((r) => r.task), ['db.1.a']);
});

test('a task sees VIPs only on its non-ingress networks; dnsrr services get no IPVS', () => {
  const plan = planNode(catalog, 'node-1', facts());
  assert.deepEqual(ns(plan, '/run/netns/peers1').ipvs.map((v) => v.label), ['hp/appnet', 'web/appnet']);
  assert.deepEqual(ns(plan, '/proc/77/ns/net').ipvs.map((v) => v.label), ['db/other', 'hp/appnet', 'web/appnet']);
  for (const n of plan.namespaces) {
    assert.ok(!n.ipvs.some((v) => v.label.startsWith('peers')), `${n.key} has no IPVS for dnsrr`);
    if (n.role === 'task') assert.ok(!n.ipvs.some((v) => v.label.endsWith('/ingress')), `${n.key} has no ingress VIP`);
  }
});

test('every task namespace redirects 127.0.0.11:53, with tokens until an agent holds ports', () => {
  const plan = planNode(catalog, 'node-1', facts({ resolverPorts: new Map([['/run/netns/web1', { udp: 41000, tcp: 42000 }]]) }));
  const web1 = ns(plan, '/run/netns/web1');
  assert.deepEqual(chainRules(web1, 'nat', 'VIPMESH-DNS-OUTPUT'), [
    '-d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:41000',
    '-d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:42000',
  ]);
  assert.deepEqual(web1.resolverPorts, { udp: 41000, tcp: 42000 });
  const hp1 = ns(plan, '/run/netns/hp1');
  assert.deepEqual(chainRules(hp1, 'nat', 'VIPMESH-DNS-POSTROUTING'), [
    '-s 127.0.0.11/32 -p udp -m udp --sport UDP_PORT -j SNAT --to-source :53',
    '-s 127.0.0.11/32 -p tcp -m tcp --sport TCP_PORT -j SNAT --to-source :53',
  ]);
  assert.equal(hp1.resolverPorts, null);
  for (const c of web1.chains) assert.equal(c.group, c.name.startsWith('VIPMESH-DNS-') ? 'dns' : 'datapath');
});

test('the sandbox balances each ingress port over the tasks of every node at the target port', () => {
  const sbox = ns(planNode(catalog, 'node-1', facts()), '/run/netns/sbox1');
  const port = sbox.ipvs.find((v) => v.label === 'web 8080/tcp')!;
  assert.equal(port.fwmark, 0x56000000 + 6 * 0x10000 + 8080);
  assert.deepEqual(port.realServers.map((r) => `${r.address}:${r.port}`), ['10.255.0.11:80', '10.255.0.12:80']);
  assert.deepEqual(chainRules(sbox, 'mangle', 'VIPMESH-PREROUTING')[0],
    '-d 10.255.0.2/32 -p tcp -m tcp --dport 8080 -m comment --comment "web 8080/tcp" -j MARK --set-xmark 0x56061f90/0xffffffff');
  assert.ok(sbox.ipvs.some((v) => v.label === 'web/ingress'), 'the ingress VIP is balanced in the sandbox');
  assert.ok(sbox.sysctls.some((s) => s.name === 'net.ipv4.ip_forward' && s.value === '1'));
});

test('the host DNATs ingress ports to the sandbox and host-mode ports to the local task', () => {
  const host = ns(planNode(catalog, 'node-1', facts()), 'host');
  assert.deepEqual(chainRules(host, 'nat', 'VIPMESH-PORTS'), [
    '-p tcp -m tcp --dport 8080 -m comment --comment "web 8080/tcp" -j DNAT --to-destination 10.255.0.2:8080',
    '-p tcp -m tcp --dport 8081 -m comment --comment "hp 8081/tcp" -j DNAT --to-destination 10.0.1.31:81',
  ]);
  // The host-mode port goes to the network the port names, IPv6 here.
  assert.deepEqual(chainRules(host, 'nat', 'VIPMESH-PORTS', 6), [
    '-p tcp -m tcp --dport 9000 -m comment --comment "peers 9000/tcp" -j DNAT --to-destination [fd00:1::21]:9000',
  ]);
  const hairpin = chainRules(host, 'nat', 'VIPMESH-POSTROUTING').filter((r) => r.startsWith('-s 10.0.1.31/32 -d 10.0.1.31/32'));
  assert.equal(hairpin.length, 1);
  const jumps = host.chains.find((c) => c.name === 'VIPMESH-PORTS' && c.family === 4)!.jumps;
  assert.deepEqual(jumps.map((j) => j.from), ['PREROUTING', 'OUTPUT']);
  assert.deepEqual(host.sysctls.map((s) => `${s.name}=${s.value}`), [
    'net.ipv4.conf.all.route_localnet=1', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1',
  ]);
});

test('a node without a local task of a host-mode service publishes only the ingress ports', () => {
  const host = ns(planNode(catalog, 'node-2', facts()), 'host');
  assert.deepEqual(chainRules(host, 'nat', 'VIPMESH-PORTS').map((r) => r.split(' -m comment')[0]), ['-p tcp -m tcp --dport 8080']);
  assert.equal(host.chains.filter((c) => c.family === 6).length, 0);
});

test('conn_reuse_mode=0 is set only on kernels older than 5.9', () => {
  const sysctlsOf = (kernelRelease: string) =>
    ns(planNode(catalog, 'node-1', facts({ kernelRelease })), '/run/netns/web1').sysctls.map((s) => s.name);
  assert.ok(sysctlsOf('5.4.0-150-generic').includes('net.ipv4.vs.conn_reuse_mode'));
  assert.ok(!sysctlsOf('5.9.0').includes('net.ipv4.vs.conn_reuse_mode'));
  assert.ok(!sysctlsOf('6.1.0-28-cloud-amd64').includes('net.ipv4.vs.conn_reuse_mode'));
  assert.ok(sysctlsOf('6.1.0').includes('net.ipv4.vs.expire_nodest_conn'));
});

test('adding or removing a service never changes another service\'s mark', () => {
  const markOf = (c: typeof catalog) =>
    ns(planNode(c, 'node-1', facts()), '/run/netns/web1').ipvs.find((v) => v.label === 'web/appnet')!.fwmark;
  const before = markOf(catalog);
  const extra = catalogOf(CLUSTER.replace('services:\n', 'services:\n  zzz: { vips: { appnet: 10.0.1.99 } }\n  aaa: { vips: { appnet: 10.0.1.98 } }\n'));
  assert.equal(markOf(extra), before);
  const fewer = catalogOf(CLUSTER.replace(/^ {2}hp:\n(?: {4}.*\n)+/m, '').replace(/^ {2}hp\.1\.a:.*\n/m, ''));
  assert.equal(markOf(fewer), before);
});

test('the same input plans the same output', () => {
  assert.deepEqual(planNode(catalog, 'node-1', facts()), planNode(catalogOf(CLUSTER), 'node-1', facts()));
});
