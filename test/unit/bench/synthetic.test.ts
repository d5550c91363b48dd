import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NODE, syntheticCatalog } from '../../../bench/synthetic.js';
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
