// scripts/vagrant/catalog.yaml, the two-machine lab's catalog (Vagrantfile): it
// cannot run here, so this keeps it valid and keeps it holding what the
// provisioning and the final check rely on.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCatalog } from '../../../src/catalog/load.js';
import { formatProblems } from '../../../src/catalog/problems.js';
import type { Catalog } from '../../../src/catalog/types.js';
import { EMPTY_FACTS, planNode } from '../../../src/plan/index.js';
import { ROOT } from '../../helpers/paths.js';

const FILE = join(ROOT, 'scripts', 'vagrant', 'catalog.yaml');

async function load(): Promise<Catalog> {
  const result = await loadCatalog(FILE);
  if (!result.ok) assert.fail(`${FILE}:\n${formatProblems(result.problems)}`);
  return result.catalog;
}

test('the Vagrant catalog loads and validates', async () => {
  await load();
});

test('two nodes on the private network, each with an ingress sandbox and a load balancer on every overlay network', async () => {
  const catalog = await load();
  assert.deepEqual(Object.entries(catalog.nodes).map(([name, n]) => [name, n.address]), [
    ['manager', '192.168.56.11'],
    ['worker', '192.168.56.12'],
  ]);
  const overlays = Object.values(catalog.networks).filter((n) => !n.ingress).map((n) => n.name);
  assert.ok(overlays.length > 0);
  for (const node of Object.values(catalog.nodes)) {
    assert.equal(node.netns, undefined, `${node.name} is the machine itself`);
    assert.ok(node.ingressSandbox, `${node.name} has an ingress sandbox`);
    assert.deepEqual(Object.keys(node.loadBalancers ?? {}).sort(), overlays, `${node.name}: a load balancer per overlay network`);
  }
});

test('whoami: three tasks across both machines, published on 8080 through the routing mesh', async () => {
  const catalog = await load();
  const whoami = catalog.services['whoami'];
  assert.ok(whoami);
  assert.equal(whoami.endpointMode, 'vip');
  assert.deepEqual(whoami.ports.map((p) => [p.published, p.target, p.protocol, p.mode]), [[8080, 80, 'tcp', 'ingress']]);
  const tasks = Object.values(catalog.tasks).filter((t) => t.service === 'whoami');
  assert.equal(tasks.length, 3);
  assert.deepEqual([...new Set(tasks.map((t) => t.node))].sort(), ['manager', 'worker']);
  const ingress = Object.values(catalog.networks).find((n) => n.ingress)?.name;
  for (const task of tasks) assert.ok(ingress !== undefined && task.addresses[ingress], `${task.name} has an ingress address`);
});

test('a dnsrr service, a service with a tcp healthcheck, and a standalone client task on each machine', async () => {
  const catalog = await load();
  const services = Object.values(catalog.services);
  assert.ok(services.some((s) => s.endpointMode === 'dnsrr'), 'a dnsrr service');
  assert.ok(services.some((s) => s.healthcheck?.probe.kind === 'tcp'), 'a service with a tcp healthcheck');
  const clients = Object.values(catalog.tasks).filter((t) => t.service === undefined);
  assert.deepEqual(clients.map((t) => t.node).sort(), ['manager', 'worker']);
  // check.sh runs dig and curl in the namespace named "client" on each machine.
  assert.ok(clients.every((t) => t.netns === '/run/netns/client'), clients.map((t) => t.netns).join(', '));
});

test('every task is a named namespace, which the provisioning creates (scripts/vagrant/lab-net.sh)', async () => {
  const catalog = await load();
  for (const task of Object.values(catalog.tasks)) {
    assert.match(task.netns, /^\/run\/netns\/[a-z0-9_-]+$/, task.name);
    assert.equal(task.state, 'running', task.name);
  }
});

test('each machine\'s plan has its sandbox, its load balancer and its own tasks\' namespaces', async () => {
  const catalog = await load();
  for (const node of ['manager', 'worker']) {
    const plan = planNode(catalog, node, EMPTY_FACTS);
    const planned = new Set(plan.namespaces.map((n) => n.netns));
    const local = Object.values(catalog.tasks).filter((t) => t.node === node).map((t) => t.netns);
    for (const netns of [...local, '/run/netns/ingress_sbox', '/run/netns/lb_appnet']) {
      assert.ok(planned.has(netns), `${node}: ${netns} is planned (planned: ${[...planned].join(', ')})`);
    }
  }
});
