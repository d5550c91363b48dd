import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NODE, serviceName, syntheticCatalog, withLoadBalancer, withService } from '../../../bench/synthetic.js';
import { parseCatalog } from '../../../src/catalog/load.js';
import { formatProblems } from '../../../src/catalog/problems.js';
import { planNode } from '../../../src/plan/index.js';
import { facts } from '../../helpers/catalog.js';

test('a synthetic 100 × 10 catalog is valid and plans its K local task namespaces', () => {
  const catalog = syntheticCatalog({ services: 100, tasksPerService: 10, networks: 10, localTasks: 10 });
  for (const text of [JSON.stringify(catalog), JSON.stringify(catalog, null, 2)]) {
    const result = parseCatalog(text);
    assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems));
    assert.equal(Object.keys(result.catalog.tasks).length, 1000);
    const plan = planNode(result.catalog, NODE, facts());
    const tasks = plan.namespaces.filter((ns) => ns.role === 'task');
    assert.equal(tasks.length, 10);
    assert.deepEqual(plan.namespaces.map((ns) => ns.role).filter((r) => r !== 'task'), ['host', 'ingress-sandbox']);
    // Every local task is on net-0 and balances its ten services' VIPs there.
    for (const ns of tasks) assert.equal(ns.ipvs.length, 10);
  }
});

test('load-balancer mode: the same catalog plus a load balancer puts every VIP in its namespace and none in the tasks', () => {
  const base = syntheticCatalog({ services: 30, tasksPerService: 10, networks: 1, localTasks: 5, publishEvery: 0 });
  const raw = withLoadBalancer(base, 'net-0', { netns: '/run/netns/lb', address: '10.1.255.250' });
  assert.equal('loadBalancers' in base.nodes[NODE]!, false, 'the base catalog is left as it was');
  const result = parseCatalog(JSON.stringify(raw));
  assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems));
  const plan = planNode(result.catalog, NODE, facts());
  const lb = plan.namespaces.filter((ns) => ns.role === 'load-balancer');
  assert.equal(lb.length, 1);
  assert.equal(lb[0]!.ipvs.length, 30);
  assert.equal(lb[0]!.ipvs[0]!.realServers.length, 10);
  for (const ns of plan.namespaces.filter((n) => n.role === 'task')) assert.equal(ns.ipvs.length, 0);
  assert.throws(() => withLoadBalancer(base, 'net-9', { netns: '/run/netns/lb', address: '10.1.255.250' }), /no network net-9/);
});

test('one service added: a fresh VIP and tasks, the local ones in the given namespaces, the rest on other nodes', () => {
  const base = syntheticCatalog({ services: 30, tasksPerService: 10, networks: 1, localTasks: 5, publishEvery: 0 });
  const raw = withService(base, { index: 30, network: 'net-0', tasks: 10, localNetns: ['/run/netns/spare'], block: 250 });
  const result = parseCatalog(JSON.stringify(raw));
  assert.ok(result.ok, result.ok ? '' : formatProblems(result.problems));
  assert.deepEqual(raw.services[serviceName(30)], { vips: { 'net-0': '10.1.250.1' } });
  const added = Object.values(raw.tasks).filter((t) => t.service === serviceName(30));
  assert.equal(added.length, 10);
  assert.deepEqual(added.filter((t) => t.node === NODE).map((t) => t.netns), ['/run/netns/spare']);
  assert.ok(added.every((t) => t.node === NODE || t.node !== 'node-0'));
  // Per-task mode: every local task namespace balances one more VIP, and the new one all of them.
  const plan = planNode(result.catalog, NODE, facts());
  const tasks = plan.namespaces.filter((ns) => ns.role === 'task');
  assert.equal(tasks.length, 6);
  for (const ns of tasks) assert.equal(ns.ipvs.length, 31);
  assert.throws(() => withService(raw, { index: 31, network: 'net-0', tasks: 10, localNetns: [], block: 250 }), /10\.1\.250\.1 is taken/);
  assert.throws(() => withService(raw, { index: 30, network: 'net-0', tasks: 10, localNetns: [], block: 251 }), /exists/);
  assert.throws(() => withService(raw, { index: 31, network: 'net-0', tasks: 1, localNetns: ['/a', '/b'], block: 251 }), /2 local tasks but 1/);
});
