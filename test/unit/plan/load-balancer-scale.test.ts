// Load-balancer mode at the scale that killed the per-task model (1 000 VIP
// services seen from 3 000 local tasks): IPVS state is one service per VIP in
// the load balancer, whatever the number of local tasks, and `plan` prints it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { NODE, syntheticCatalog, type SyntheticCatalog } from '../../../bench/synthetic.js';
import { validateCatalog } from '../../../src/catalog/validate.js';
import { formatProblems } from '../../../src/catalog/problems.js';
import { planNode } from '../../../src/plan/index.js';
import { facts } from '../../helpers/catalog.js';
import { CLI } from '../../helpers/paths.js';

const SERVICES = 1000;
const LB_NETNS = '/run/netns/lb-net-0';

/** The synthetic catalog (one network) with a load balancer for it on the benchmarked node. */
function balanced(localTasks: number): SyntheticCatalog {
  const catalog = syntheticCatalog({ services: SERVICES, tasksPerService: 10, networks: 1, localTasks, publishEvery: 0 });
  const node = catalog.nodes[NODE] as Record<string, unknown>;
  node['loadBalancers'] = { 'net-0': { netns: LB_NETNS, address: '10.1.255.250' } };
  return catalog;
}

function ipvsOf(localTasks: number) {
  const result = validateCatalog(balanced(localTasks));
  if (!result.ok) assert.fail(formatProblems(result.problems));
  const plan = planNode(result.catalog, NODE, facts());
  const services = plan.namespaces.reduce((sum, ns) => sum + ns.ipvs.length, 0);
  const realServers = plan.namespaces.reduce((sum, ns) => sum + ns.ipvs.reduce((n, vs) => n + vs.realServers.length, 0), 0);
  return { plan, services, realServers };
}

test('IPVS state is one service per VIP in the load balancer, not one per VIP per local task', () => {
  const few = ipvsOf(10);
  const many = ipvsOf(3000);
  assert.equal(many.services, SERVICES);
  assert.deepEqual([few.services, few.realServers], [many.services, many.realServers], 'IPVS state does not grow with local tasks');
  assert.equal(many.realServers, SERVICES * 10);
  const lb = many.plan.namespaces.filter((ns) => ns.role === 'load-balancer');
  assert.deepEqual(lb.map((ns) => [ns.key, ns.ipvs.length, ns.addresses?.length]), [[LB_NETNS, SERVICES, SERVICES]]);
  const tasks = many.plan.namespaces.filter((ns) => ns.role === 'task');
  assert.equal(tasks.length, 3000);
  assert.ok(tasks.every((ns) => ns.ipvs.length === 0 && ns.chains.every((c) => c.group === 'dns')), 'tasks hold only the DNS redirect');
});

test('plan prints a node with 1 000 VIP services and 3 000 local tasks in load-balancer mode', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-lb-scale-'));
  try {
    const file = join(dir, 'catalog.json');
    writeFileSync(file, JSON.stringify(balanced(3000)));
    const child = spawn(process.execPath, [CLI, 'plan', '-c', file, '--node', NODE, '--kernel-release', '6.1.0-28-cloud-amd64'],
      { env: { ...process.env, VIPMESH_RUN_DIR: join(dir, 'run') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let sections = 0;
    let serviceLines = 0;
    let tail = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const text = tail + chunk;
      const lines = text.split('\n');
      tail = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('# netns ')) sections++;
        else if (line.startsWith('-A -f ')) serviceLines++;
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const hang = setTimeout(() => child.kill('SIGKILL'), 300_000);
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(hang);
    assert.equal(stderr, '');
    assert.equal(exitCode, 0);
    assert.equal(sections, 1 + 3000, 'the load balancer, then every local task');
    assert.equal(serviceLines, SERVICES);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
