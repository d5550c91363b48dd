// The plan renderers yield one namespace at a time, and their chunks add up to
// exactly the bytes the whole-string rendering always printed.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { loadCatalog } from '../../../src/catalog/load.js';
import { planNode } from '../../../src/plan/index.js';
import type { NamespacePlan, NodePlan } from '../../../src/plan/types.js';
import {
  printablePath, renderNamespaceText, renderPlanJson, renderPlanJsonChunks, renderPlanText, renderPlanTextChunks,
} from '../../../src/render/plan.js';
import { catalogOf, facts } from '../../helpers/catalog.js';
import { FIXTURES } from '../../helpers/paths.js';

/** What `vipmesh plan` printed before it streamed: the reference for every byte. */
const wholeText = (plan: NodePlan) => plan.namespaces.map(renderNamespaceText).join('\n');
// A virtual service's typed `balances` is the reconciler's key, not part of the published JSON.
const withoutBalances = (key: string, value: unknown) => (key === 'balances' ? undefined : value);
const wholeJson = (plan: NodePlan) => JSON.stringify(plan, withoutBalances, 2) + '\n';

const plans: { name: string; plan: NodePlan }[] = [];
for (const fixture of readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml')).sort()) {
  const loaded = await loadCatalog(join(FIXTURES, fixture));
  assert.ok(loaded.ok, `${fixture} is valid`);
  for (const node of Object.keys(loaded.catalog.nodes).sort()) {
    plans.push({ name: `${fixture} --node ${node}`, plan: planNode(loaded.catalog, node, facts()) });
  }
}

test('every fixture gives plans to compare, some with several namespaces', () => {
  assert.ok(plans.length >= 10, `${plans.length} plans`);
  assert.ok(plans.some((p) => p.plan.namespaces.length >= 3));
});

for (const { name, plan } of plans) {
  test(`${name}: the streamed text and JSON are the whole renderings, byte for byte`, () => {
    assert.equal([...renderPlanTextChunks(plan)].join(''), wholeText(plan));
    assert.equal(renderPlanText(plan), wholeText(plan));
    assert.equal([...renderPlanJsonChunks(plan)].join(''), wholeJson(plan));
    assert.equal(renderPlanJson(plan), wholeJson(plan));
  });

  test(`${name}: one text chunk per namespace, each its own section`, () => {
    const chunks = [...renderPlanTextChunks(plan)];
    assert.equal(chunks.length, plan.namespaces.length);
    chunks.forEach((chunk, i) => {
      assert.equal(chunk, `${i === 0 ? '' : '\n'}${renderNamespaceText(plan.namespaces[i]!)}`);
      assert.equal(chunk.match(/^# netns /gm)?.length, 1, 'one namespace header per chunk');
    });
  });

  test(`${name}: one JSON chunk per namespace, around the plan's other fields`, () => {
    const chunks = [...renderPlanJsonChunks(plan)];
    const perNamespace = chunks.filter((c) => /^,?\n {4}\{/.test(c));
    assert.equal(perNamespace.length, plan.namespaces.length);
    perNamespace.forEach((chunk, i) => {
      assert.deepEqual(JSON.parse(chunk.replace(/^,/, '')), JSON.parse(JSON.stringify(plan.namespaces[i], withoutBalances)));
    });
  });
}

/** A plan whose namespaces after the first cannot be read: only a lazy renderer gets a chunk out. */
function poisoned(plan: NodePlan): NodePlan {
  const namespaces = [...plan.namespaces];
  for (let i = 1; i < namespaces.length; i++) {
    Object.defineProperty(namespaces, i, { get: () => assert.fail(`namespace ${i} was read before chunk 1 was taken`) });
  }
  return { node: plan.node, namespaces };
}

test('a chunk is rendered when it is asked for, not before: the whole plan is never one string', () => {
  const { plan } = plans.find((p) => p.plan.namespaces.length >= 3)!;
  const text = renderPlanTextChunks(poisoned(plan));
  assert.equal(text.next().value, renderNamespaceText(plan.namespaces[0]!));
  const json = renderPlanJsonChunks(poisoned(plan));
  let taken = '';
  while (!taken.includes('"role"')) {
    const next = json.next();
    assert.ok(!next.done, 'the first namespace is rendered');
    taken += next.value;
  }
  assert.match(taken, new RegExp(`"key": ${JSON.stringify(plan.namespaces[0]!.key).replaceAll('/', '\\/')}`));
});

test('a plan without namespaces is an empty text and an empty JSON array', () => {
  const plan: NodePlan = { node: 'n', namespaces: [] };
  assert.deepEqual([...renderPlanTextChunks(plan)], []);
  assert.equal(renderPlanJson(plan), wholeJson(plan));
  assert.equal(renderPlanJson(plan), '{\n  "node": "n",\n  "namespaces": []\n}\n');
});

test('JSON leaves out what JSON.stringify leaves out', () => {
  const ns: NamespacePlan = { key: 'host', netns: null, role: 'host', chains: [], ipvs: [], sysctls: [] };
  const plan = { node: 'n', extra: undefined, namespaces: [{ ...ns, task: undefined, resolverPorts: null }] } as unknown as NodePlan;
  assert.equal(renderPlanJson(plan), wholeJson(plan));
});

test('a namespace path is printed as it is unless a reader could misread it', () => {
  for (const plain of ['/run/netns/whoami-1', '/proc/1234/ns/net', '/run/netns/with space', '/run/netns/back\\slash', '/run/netns/ünïcode', 'host']) {
    assert.equal(printablePath(plain), plain);
  }
  const odd = ['/run/netns/a\nb', '/run/netns/cr\r', '/run/netns/tab\t', '/run/netns/del\u007f', '/run/netns/c1\u0085',
    '/run/netns/ls\u2028', '/run/netns/ps\u2029', '"/run/netns/quoted"', '/run/netns/nul\u0000'];
  for (const path of odd) {
    const shown = printablePath(path);
    assert.match(shown, /^"/, `${JSON.stringify(path)} is quoted`);
    assert.doesNotMatch(shown, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, `${JSON.stringify(path)} prints no control character`);
    assert.equal(JSON.parse(shown), path, 'the quoted form is a JSON string of the path');
  }
});

test('a task namespace whose path holds a newline keeps its # netns line one line', () => {
  const catalog = catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
services: { web: { vips: { appnet: 10.0.1.2 } } }
tasks:
  web.1.a: { service: web, node: node-1, netns: "/run/netns/web\\n# netns host", addresses: { appnet: 10.0.1.3 } }
`);
  const text = renderPlanText(planNode(catalog, 'node-1', facts()));
  assert.match(text, /^# netns "\/run\/netns\/web\\n# netns host"$/m);
  assert.equal(text.match(/^# netns /gm)?.length, 1, 'the path forges no second namespace');
});
