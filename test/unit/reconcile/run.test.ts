// The reconcile orchestration over the fake kernel (the adapters themselves are
// proven against the real kernel in test/kernel and the kernel lane).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { loadCatalog } from '../../../src/catalog/load.js';
import type { Catalog } from '../../../src/catalog/types.js';
import { KernelError } from '../../../src/kernel/types.js';
import { planNode } from '../../../src/plan/index.js';
import { vipKey } from '../../../src/plan/types.js';
import { readBackScope, reconcileNode, type ReconcileInput } from '../../../src/reconcile/run.js';
import { summarize } from '../../../src/reconcile/summary.js';
import { EMPTY_STATE, type StoredState } from '../../../src/state/store.js';
import { createFakeKernel, type FakeKernel } from '../../fakes/kernel.js';
import { catalogOf, facts } from '../../helpers/catalog.js';
import { FIXTURES } from '../../helpers/paths.js';

const CATALOG = `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11, netns: /run/netns/h } }
services: { web: { vips: { appnet: 10.0.1.2 } } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/w1, addresses: { appnet: 10.0.1.11 } }
  web.2: { service: web, node: node-1, netns: /run/netns/w2, addresses: { appnet: 10.0.1.12 } }
`;

/** A fake kernel holding every namespace the catalog names. */
function kernelFor(catalog: Catalog, options: { ipvs?: boolean } = {}): FakeKernel {
  const paths = [
    ...Object.values(catalog.nodes).flatMap((n) => [n.netns, n.ingressSandbox?.netns]),
    ...Object.values(catalog.tasks).map((t) => t.netns),
  ].filter((p): p is string => p !== undefined);
  return createFakeKernel({ ...options, namespaces: paths });
}

const base = (catalog: Catalog, kernel: FakeKernel): Omit<ReconcileInput, 'mode' | 'state'> =>
  ({ catalog, node: 'node-1', kernel, facts: facts(), now: 0 });

const errorsOf = (r: { namespaces: readonly { errors: readonly unknown[] }[] }) => r.namespaces.flatMap((n) => n.errors);

test('reconcile then cleanup: both converge with no error, and cleanup leaves nothing', async () => {
  const catalog = catalogOf(CATALOG);
  const kernel = kernelFor(catalog);
  const input = base(catalog, kernel);
  const applied = await reconcileNode({ ...input, state: EMPTY_STATE, mode: 'apply' });
  assert.deepEqual(errorsOf(applied), []);
  assert.equal(kernel.ipvsServices('/run/netns/w1').length, 1);
  assert.ok(kernel.vipmeshChains('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'));
  assert.ok(applied.namespaces.every((n) => n.writes.iptables === 1), 'one transaction per namespace and family');

  const again = await reconcileNode({ ...input, state: applied.state, mode: 'apply' });
  assert.deepEqual(again.namespaces.flatMap((n) => n.changes), [], 'a second pass changes nothing');
  assert.ok(again.namespaces.every((n) => Object.values(n.writes).every((w) => w === 0)), 'and writes nothing');

  const cleaned = await reconcileNode({ ...input, state: again.state, mode: 'cleanup' });
  assert.deepEqual(errorsOf(cleaned), [], 'removing chains and IPVS together reports no error');
  for (const ns of ['/run/netns/w1', '/run/netns/w2']) {
    assert.deepEqual(kernel.ipvsServices(ns), []);
    assert.deepEqual(kernel.vipmeshChains(ns), []);
  }
  assert.deepEqual(cleaned.state.namespaces, {});
});

test('the VIP marks kept in state are VIPs only, never a published port (article 003, node-1)', async () => {
  const loaded = await loadCatalog(join(FIXTURES, 'article-003-whoami.yaml'));
  assert.ok(loaded.ok);
  const kernel = kernelFor(loaded.catalog);
  const result = await reconcileNode({ ...base(loaded.catalog, kernel), state: EMPTY_STATE, mode: 'apply' });
  assert.deepEqual(errorsOf(result), []);
  const plan = planNode(loaded.catalog, 'node-1', facts());
  const vips = new Set(plan.namespaces.flatMap((ns) => ns.ipvs.flatMap((vs) => {
    const b = vs.balances;
    return b.kind === 'vip' ? [vipKey(b)] : [];
  })));
  assert.ok(plan.namespaces.some((ns) => ns.ipvs.some((vs) => vs.balances.kind === 'port')), 'the fixture publishes a port');
  const kept = Object.entries(result.state.marks).flatMap(([ns, marks]) => Object.keys(marks).map((key) => `${ns} ${key}`));
  assert.ok(kept.length > 0);
  for (const entry of kept) assert.ok(vips.has(entry.split(' ')[1]!), `${entry} is a VIP`);
  assert.equal(result.state.marks['/run/netns/ingress_sbox'], undefined, 'the sandbox has ports, no VIP');
  assert.deepEqual(Object.keys(result.state.marks['/run/netns/whoami-1'] ?? {}), ['whoami/dig-default']);
});

const TWO_NETWORKS = `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 }, other: { subnet: 10.0.2.0/24 } }
nodes: { node-1: { address: 192.0.2.11, netns: /run/netns/h }, node-2: { address: 192.0.2.12 } }
services: { web: { vips: { appnet: 10.0.1.2 } }, api: { vips: { other: 10.0.2.2 } } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/w1, addresses: { appnet: 10.0.1.11 } }
  web.2: { service: web, node: node-1, netns: /run/netns/w2, addresses: { appnet: 10.0.1.12 } }
  api.1: { service: api, node: node-1, netns: /run/netns/a1, addresses: { other: 10.0.2.11 } }
`;

const reads = (kernel: FakeKernel, from = 0) => kernel.calls.slice(from).filter((c) => c.call === 'readIptables').map((c) => c.netns);

test('a changed-only pass reads and writes just the namespaces whose plan changed; a full pass still repairs the rest', async () => {
  const catalog = catalogOf(TWO_NETWORKS);
  const kernel = kernelFor(catalog);
  const input = { ...base(catalog, kernel), mode: 'apply' as const };
  const full = await reconcileNode({ ...input, state: EMPTY_STATE });
  assert.deepEqual(errorsOf(full), []);
  assert.deepEqual(Object.keys(full.state.applied).sort(), ['/run/netns/a1', '/run/netns/w1', '/run/netns/w2']);

  let mark = kernel.calls.length;
  const idle = await reconcileNode({ ...input, state: full.state, scope: 'changed' });
  assert.deepEqual(reads(kernel, mark), [], 'nothing changed, nothing read');
  assert.deepEqual([...idle.skipped].sort(), ['/run/netns/a1', '/run/netns/w1', '/run/netns/w2']);

  const scaled = catalogOf(TWO_NETWORKS + '  api.2: { service: api, node: node-2, netns: /run/netns/x, addresses: { other: 10.0.2.12 } }\n');
  mark = kernel.calls.length;
  const partial = await reconcileNode({ ...input, catalog: scaled, state: idle.state, scope: 'changed' });
  assert.deepEqual(reads(kernel, mark), ['/run/netns/a1'], 'only the namespace that sees api is read');
  assert.deepEqual(kernel.ipvsServices('/run/netns/a1')[0]?.realServers.map((r) => r.address), ['10.0.2.11', '10.0.2.12']);
  assert.deepEqual(partial.namespaces.map((n) => n.key), ['/run/netns/a1']);

  // Drift in a skipped namespace waits for the next full pass, which repairs it.
  await kernel.restoreIptables('/run/netns/w1', 4, '*mangle\n-D OUTPUT -j VIPMESH-OUTPUT\n:VIPMESH-OUTPUT - [0:0]\n-X VIPMESH-OUTPUT\nCOMMIT\n');
  assert.ok(!kernel.vipmeshChains('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'));
  await reconcileNode({ ...input, catalog: scaled, state: partial.state, scope: 'changed' });
  assert.ok(!kernel.vipmeshChains('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'), 'a changed-only pass does not look');
  await reconcileNode({ ...input, catalog: scaled, state: partial.state });
  assert.ok(kernel.vipmeshChains('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'), 'the full pass repairs it');
});

test('conntrack entries for 127.0.0.11:53 are dropped only where the resolver\'s ports moved', async () => {
  const catalog = catalogOf(CATALOG);
  const kernel = kernelFor(catalog);
  const ports = (w1: number) => facts({ resolverPorts: new Map([
    ['/run/netns/w1', { udp: w1, tcp: w1 + 1 }], ['/run/netns/w2', { udp: 5000, tcp: 5001 }],
  ]) });
  const input = { ...base(catalog, kernel), mode: 'apply' as const };
  const first = await reconcileNode({ ...input, facts: ports(4000), state: EMPTY_STATE });
  assert.deepEqual(kernel.forgotten, [], 'a first redirect has no old flows to forget');
  const same = await reconcileNode({ ...input, facts: ports(4000), state: first.state });
  assert.deepEqual(kernel.forgotten, []);
  const moved = await reconcileNode({ ...input, facts: ports(4100), state: same.state });
  assert.deepEqual(kernel.forgotten, ['/run/netns/w1']);
  assert.equal(moved.namespaces.find((n) => n.key === '/run/netns/w1')?.writes.conntrack, 1);
});

test('each failure carries its kind, and the summary prints the same sentences as before', async () => {
  const catalog = catalogOf(TWO_NETWORKS + '  web.3: { service: web, node: node-1, netns: /run/netns/w3, addresses: { appnet: 10.0.1.13 } }\n');
  const kernel = kernelFor(catalog);
  kernel.fail('restoreIptables', { netns: '/run/netns/w1' });
  kernel.fail('applyIpvs', { netns: '/run/netns/w2' });
  kernel.fail('readIptables', { netns: '/run/netns/w3', error: new KernelError('`iptables-nft-save` timed out after 30000 ms', 'timeout') });
  kernel.removeNamespace('/run/netns/a1');
  const result = await reconcileNode({ ...base(catalog, kernel), state: EMPTY_STATE, mode: 'apply' });
  const kinds = Object.fromEntries(result.namespaces.map((n) => [n.key, n.errors.map((e) => e.kind)]));
  assert.deepEqual(kinds, {
    '/run/netns/a1': ['namespace_gone'],
    '/run/netns/w1': ['iptables_rejected'],
    '/run/netns/w2': ['ipvs_rejected'],
    '/run/netns/w3': ['timeout'],
  });
  const w1 = result.namespaces.find((n) => n.key === '/run/netns/w1')!;
  assert.deepEqual(kernel.vipmeshChains('/run/netns/w1'), [], 'a rejected transaction changes nothing');
  assert.equal(w1.writes.iptables, 0);
  assert.deepEqual(kernel.ipvsServices('/run/netns/w2'), [], 'a rejected IPVS batch changes nothing');

  const printed = summarize('reconcile', result, false);
  assert.equal(printed.failed, 4);
  assert.equal(printed.stderr, [
    'vipmesh: /run/netns/a1: namespace /run/netns/a1 does not exist',
    'vipmesh: /run/netns/w1: iptables: iptables-restore rejected the rules for namespace /run/netns/w1: injected failure',
    'vipmesh: /run/netns/w2: IPVS: ipvsadm -R failed in namespace /run/netns/w2: injected failure',
    'vipmesh: /run/netns/w3: `iptables-nft-save` timed out after 30000 ms',
    '',
  ].join('\n'));
});

test('without IPVS the DNS redirect and marks still apply, and each namespace says no_ipvs', async () => {
  const catalog = catalogOf(CATALOG);
  const kernel = kernelFor(catalog, { ipvs: false });
  const result = await reconcileNode({ ...base(catalog, kernel), state: EMPTY_STATE, mode: 'apply' });
  for (const ns of ['/run/netns/w1', '/run/netns/w2']) {
    const found = result.namespaces.find((n) => n.key === ns)!;
    assert.deepEqual(found.errors.map((e) => e.kind), ['no_ipvs']);
    assert.match(found.errors[0]!.message, /^IPVS state not written: the kernel lacks IPVS/);
    assert.ok(kernel.vipmeshChains(ns).includes('mangle/VIPMESH-OUTPUT'));
  }
  const diff = await reconcileNode({ ...base(catalog, kernel), state: result.state, mode: 'diff' });
  assert.deepEqual(errorsOf(diff), []);
  assert.ok(diff.namespaces.every((n) => n.warnings.every((w) => w.startsWith('IPVS state not compared'))));
});

test('an aborted pass starts no new namespace, names the rest, and keeps their state', async () => {
  const catalog = catalogOf(TWO_NETWORKS);
  const kernel = kernelFor(catalog);
  const input = { ...base(catalog, kernel), mode: 'apply' as const, concurrency: 1 };
  const before: StoredState = {
    ...EMPTY_STATE,
    namespaces: { '/run/netns/w2': { netns: '/run/netns/w2', role: 'task' } },
    draining: { '/run/netns/w2': { '1452277761 10.0.1.99:0': 5 } },
  };
  const controller = new AbortController();
  // The first write aborts the pass: that namespace is finished, no other one started.
  kernel.beforeCall((call) => {
    if (call === 'restoreIptables') controller.abort();
  });
  const result = await reconcileNode({ ...input, state: before, signal: controller.signal });
  assert.equal(result.namespaces.length, 1);
  const [done] = result.namespaces;
  assert.deepEqual(done!.errors, []);
  assert.ok(done!.writes.iptables > 0, 'the namespace in flight finished');
  const notHandled = result.notHandled.map((t) => t.key);
  assert.equal(notHandled.length, 2);
  assert.ok(!notHandled.includes(done!.key));
  for (const key of notHandled) assert.deepEqual(kernel.vipmeshChains(key), [], `${key} untouched`);
  assert.ok(result.state.applied[done!.key] !== undefined, 'the handled namespace is recorded as applied');
  for (const key of notHandled) {
    assert.ok(result.state.namespaces[key] !== undefined, `${key} stays on the list`);
    assert.equal(result.state.applied[key], undefined, `${key} is not recorded as applied`);
  }
  assert.deepEqual(result.state.draining['/run/netns/w2'], before.draining['/run/netns/w2'], 'what was known of a skipped namespace stays');
  assert.match(summarize('reconcile', result, false).stdout, /stopped early: 2 more namespaces not handled this pass/);

  const aborted = await reconcileNode({ ...input, state: before, signal: AbortSignal.abort() });
  assert.deepEqual(aborted.namespaces, []);
  assert.equal(aborted.notHandled.length, 3);

  const rest = await reconcileNode({ ...input, state: result.state });
  assert.deepEqual(errorsOf(rest), []);
  assert.deepEqual(rest.notHandled, []);
  assert.deepEqual(Object.keys(rest.state.applied).sort(), ['/run/netns/a1', '/run/netns/w1', '/run/netns/w2']);
});

test('a namespace spelled differently in state.json is one target, and its stored state follows it', async () => {
  const catalog = catalogOf(CATALOG);
  const kernel = kernelFor(catalog);
  const input = { ...base(catalog, kernel), mode: 'apply' as const };
  const first = await reconcileNode({ ...input, state: EMPTY_STATE });
  // web.2 turns unhealthy with a connection open: its real server drains in w1.
  const [service] = kernel.ipvsServices('/run/netns/w1');
  kernel.setConnections('/run/netns/w1', service!.fwmark, '10.0.1.12', 0, 1, 0);
  const unhealthy = catalogOf(CATALOG.replace('addresses: { appnet: 10.0.1.12 } }', 'addresses: { appnet: 10.0.1.12 }, health: unhealthy }'));
  const draining = await reconcileNode({ ...input, catalog: unhealthy, state: first.state, now: 1000 });
  const drains = draining.state.draining['/run/netns/w1'];
  assert.deepEqual(Object.values(drains ?? {}), [1000]);

  // The same state as an older catalog spelled the path.
  const other = '/var/run/netns//w1';
  const respell = <T>(record: Readonly<Record<string, T>>) =>
    Object.fromEntries(Object.entries(record).map(([k, v]) => [k === '/run/netns/w1' ? other : k, v]));
  const stored: StoredState = {
    namespaces: { ...respell(draining.state.namespaces), [other]: { netns: other, role: 'task' } },
    draining: respell(draining.state.draining),
    marks: respell(draining.state.marks),
    applied: respell(draining.state.applied),
  };
  const mark = kernel.calls.length;
  const again = await reconcileNode({ ...input, catalog: unhealthy, state: stored, now: 2000 });
  assert.deepEqual(errorsOf(again), []);
  assert.deepEqual(reads(kernel, mark).filter((n) => n?.endsWith('w1')), ['/run/netns/w1'], 'read once, by the plan\'s spelling');
  assert.ok(again.namespaces.flatMap((n) => n.changes).every((c) => !c.drift), 'the marks kept under the other spelling were used');
  assert.equal(again.state.namespaces[other], undefined);
  assert.deepEqual(again.state.draining['/run/netns/w1'], drains, 'the drain keeps its start time');
  assert.deepEqual(again.state.marks['/run/netns/w1'], draining.state.marks['/run/netns/w1']);
});

test('the read-back scope is the fwmarks the changes touched, or everything when many', () => {
  assert.deepEqual(readBackScope([
    { kind: 'add-service', fwmark: 7, scheduler: 'rr', persistence: 0 },
    { kind: 'add-real-server', fwmark: 7, address: '10.0.0.1', port: 0, weight: 1 },
    { kind: 'delete-service', fwmark: 9 },
  ]), new Set([7, 9]));
  const many = Array.from({ length: 17 }, (_, i) => ({ kind: 'delete-service' as const, fwmark: i + 1 }));
  assert.equal(readBackScope(many), undefined);
});
