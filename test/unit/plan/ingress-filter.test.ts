import assert from 'node:assert/strict';
import test from 'node:test';
import { planNode } from '../../../src/plan/index.js';
import type { Chain, NamespacePlan, NodePlan } from '../../../src/plan/types.js';
import { renderPlanText } from '../../../src/render/plan.js';
import { catalogOf, facts } from '../../helpers/catalog.js';

// node-1 balances appnet in a load balancer, node-2 keeps the per-task model.
const CLUSTER = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1:
    address: 192.0.2.11
    ingressSandbox: { netns: /run/netns/sbox-1, address: 10.255.0.2 }
    loadBalancers: { appnet: { netns: /run/netns/lb-appnet, address: 10.0.1.250 } }
  node-2:
    address: 192.0.2.12
    ingressSandbox: { netns: /run/netns/sbox-2, address: 10.255.0.3 }
services:
  web:
    vips: { appnet: 10.0.1.2 }
    ports:
      - { target: 80, published: 8080 }
      - { target: 80, published: 8081 }
      - { target: 5353, published: 53, protocol: udp }
      - { target: 9000, published: 9000, mode: host }
  diameter:
    vips: { appnet: 10.0.1.3 }
    ports:
      - { target: 3868, published: 3868, protocol: sctp }
  quiet:
    vips: { appnet: 10.0.1.4 }
    ports:
      - { target: 7000, published: 7000, mode: host }
  db: { vips: { appnet: 10.0.1.5 } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/web1, addresses: { appnet: 10.0.1.11, ingress: 10.255.0.11 } }
  web.2: { service: web, node: node-2, netns: /run/netns/web2, addresses: { appnet: 10.0.1.12, ingress: 10.255.0.12 } }
  diameter.1: { service: diameter, node: node-2, netns: /run/netns/dia1, addresses: { appnet: 10.0.1.21, ingress: 10.255.0.21 } }
  quiet.1: { service: quiet, node: node-2, netns: /run/netns/quiet1, addresses: { appnet: 10.0.1.31, ingress: 10.255.0.31 } }
  db.1: { service: db, node: node-2, netns: /run/netns/db1, addresses: { appnet: 10.0.1.41 } }
  loner: { node: node-2, netns: /run/netns/loner, addresses: { ingress: 10.255.0.51 } }
  web.3: { service: web, node: node-1, netns: /run/netns/web3, addresses: { appnet: 10.0.1.13, ingress: 10.255.0.13 }, state: shutdown }
`;

const catalog = catalogOf(CLUSTER);

function ns(plan: NodePlan, key: string): NamespacePlan {
  const found = plan.namespaces.find((n) => n.key === key);
  assert.ok(found, `namespace ${key} is planned (have: ${plan.namespaces.map((n) => n.key).join(', ')})`);
  return found;
}

const filterChains = (plan: NamespacePlan): Chain[] => plan.chains.filter((c) => c.table === 'filter');
const chain = (plan: NamespacePlan, name: string): Chain => {
  const found = plan.chains.find((c) => c.table === 'filter' && c.name === name);
  assert.ok(found, `${plan.key} has filter chain ${name}`);
  return found;
};
const DROPS = ['-p tcp -j DROP', '-p udp -j DROP', '-p sctp -j DROP'];

test('a task with an ingress address accepts its service\'s ingress-mode target ports there, once each, and drops the rest', () => {
  const web = ns(planNode(catalog, 'node-2', facts()), '/run/netns/web2');
  assert.deepEqual(filterChains(web).map((c) => `${c.name} <- ${c.jumps.map((j) => `${j.from} ${j.match}`).join(', ')}`), [
    'VIPMESH-INGRESS-INPUT <- INPUT -d 10.255.0.12/32 ! -i lo',
    'VIPMESH-INGRESS-OUTPUT <- OUTPUT -s 10.255.0.12/32 ! -o lo',
  ]);
  // 8080 and 8081 both land on 80: one rule; the host-mode 9000 never comes this way.
  assert.deepEqual(chain(web, 'VIPMESH-INGRESS-INPUT').rules, [
    '-p tcp -m tcp --dport 80 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment "web 80/tcp" -j ACCEPT',
    '-p udp -m udp --dport 5353 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment "web 5353/udp" -j ACCEPT',
    ...DROPS,
  ]);
  assert.deepEqual(chain(web, 'VIPMESH-INGRESS-OUTPUT').rules, [
    '-p tcp -m tcp --sport 80 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "web 80/tcp" -j ACCEPT',
    '-p udp -m udp --sport 5353 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "web 5353/udp" -j ACCEPT',
    ...DROPS,
  ]);
  for (const c of filterChains(web)) assert.equal(c.group, 'datapath', 'the filter is applied with or without an agent');
});

test('the filter is the same in load-balancer mode, beside only the DNS redirect', () => {
  const web = ns(planNode(catalog, 'node-1', facts()), '/run/netns/web1');
  assert.deepEqual(web.chains.map((c) => `${c.table} ${c.name}`), [
    'nat VIPMESH-DNS-OUTPUT', 'nat VIPMESH-DNS-POSTROUTING', 'filter VIPMESH-INGRESS-INPUT', 'filter VIPMESH-INGRESS-OUTPUT',
  ]);
  assert.deepEqual(web.ipvs, []);
  const perTask = ns(planNode(catalog, 'node-2', facts()), '/run/netns/web2');
  assert.deepEqual(
    filterChains(web).map((c) => c.rules),
    filterChains(perTask).map((c) => c.rules),
  );
  assert.equal(chain(web, 'VIPMESH-INGRESS-INPUT').jumps[0]?.match, '-d 10.255.0.11/32 ! -i lo');
});

test('an sctp port is accepted as sctp', () => {
  const dia = ns(planNode(catalog, 'node-2', facts()), '/run/netns/dia1');
  assert.deepEqual(chain(dia, 'VIPMESH-INGRESS-INPUT').rules, [
    '-p sctp -m sctp --dport 3868 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment "diameter 3868/sctp" -j ACCEPT',
    ...DROPS,
  ]);
});

test('an ingress address with no ingress-mode port behind it accepts nothing: a host-mode-only service, a standalone container', () => {
  const plan = planNode(catalog, 'node-2', facts());
  for (const key of ['/run/netns/quiet1', '/run/netns/loner']) {
    const task = ns(plan, key);
    assert.deepEqual(chain(task, 'VIPMESH-INGRESS-INPUT').rules, DROPS, key);
    assert.deepEqual(chain(task, 'VIPMESH-INGRESS-OUTPUT').rules, DROPS, key);
  }
  assert.equal(chain(ns(plan, '/run/netns/loner'), 'VIPMESH-INGRESS-INPUT').jumps[0]?.match, '-d 10.255.0.51/32 ! -i lo');
});

test('a task without an ingress address, and every other namespace, gets no ingress filter', () => {
  const plan = planNode(catalog, 'node-2', facts());
  assert.deepEqual(filterChains(ns(plan, '/run/netns/db1')), []);
  for (const other of [...plan.namespaces, ...planNode(catalog, 'node-1', facts()).namespaces]) {
    if (other.role === 'task') continue;
    assert.ok(!other.chains.some((c) => c.name.startsWith('VIPMESH-INGRESS-')), `${other.role} ${other.key} has no ingress filter`);
  }
  // A task that is not running has no plan at all, so no filter either.
  assert.ok(!planNode(catalog, 'node-1', facts()).namespaces.some((n) => n.key === '/run/netns/web3'));
});

test('a catalog without an ingress network plans no filter', () => {
  const plain = catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
services: { web: { vips: { appnet: 10.0.1.2 } } }
tasks: { web.1: { service: web, node: node-1, netns: /run/netns/web1, addresses: { appnet: 10.0.1.11 } } }
`);
  const plan = planNode(plain, 'node-1', facts());
  assert.doesNotMatch(renderPlanText(plan), /\*filter/);
});

test('the filter renders as one filter-table transaction after the DNS redirect, in iptables-save spelling', () => {
  const text = renderPlanText(planNode(catalog, 'node-1', facts()));
  const web = text.slice(text.indexOf('# netns /run/netns/web1\n'));
  assert.match(web, /COMMIT\n\*filter\n:VIPMESH-INGRESS-INPUT - \[0:0\]\n:VIPMESH-INGRESS-OUTPUT - \[0:0\]\n-I INPUT -d 10\.255\.0\.11\/32 ! -i lo -j VIPMESH-INGRESS-INPUT\n-I OUTPUT -s 10\.255\.0\.11\/32 ! -o lo -j VIPMESH-INGRESS-OUTPUT\n/);
});
