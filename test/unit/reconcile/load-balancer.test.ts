// A load balancer's VIP addresses through reconcile, diff and cleanup, over the
// fake kernel (the address adapter itself: test/kernel/addresses.test.ts).
import assert from 'node:assert/strict';
import test from 'node:test';
import type { Catalog } from '../../../src/catalog/types.js';
import type { ObservedAddress } from '../../../src/kernel/types.js';
import { diffAddresses } from '../../../src/reconcile/diff-addresses.js';
import { reconcileNode, type ReconcileInput } from '../../../src/reconcile/run.js';
import { EMPTY_STATE } from '../../../src/state/store.js';
import { createFakeKernel, type FakeKernel } from '../../fakes/kernel.js';
import { catalogOf, facts } from '../../helpers/catalog.js';

const LB = '/run/netns/lb-appnet';
const CATALOG = `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes:
  node-1: { address: 192.0.2.11, loadBalancers: { appnet: { netns: ${LB}, address: 10.0.1.250 } } }
services:
  web: { vips: { appnet: 10.0.1.2 } }
  api: { vips: { appnet: 10.0.1.3 } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/w1, addresses: { appnet: 10.0.1.11 } }
  api.1: { service: api, node: node-1, netns: /run/netns/a1, addresses: { appnet: 10.0.1.21 } }
`;
const WITHOUT_API = CATALOG.replace(/ {2}api: .*\n/, '').replace(/ {2}api\.1: .*\n/, '');

const ETH0: ObservedAddress = { index: 7, name: 'eth0', address: '10.0.1.250', prefixLength: 24 };

function kernelWithBalancer(): FakeKernel {
  const kernel = createFakeKernel({ namespaces: [LB, '/run/netns/w1', '/run/netns/a1'] });
  kernel.addInterfaceAddress(LB, { index: 1, name: 'lo', address: '127.0.0.1', prefixLength: 8 });
  kernel.addInterfaceAddress(LB, ETH0);
  return kernel;
}

const input = (catalog: Catalog, kernel: FakeKernel): Omit<ReconcileInput, 'mode' | 'state'> =>
  ({ catalog, node: 'node-1', kernel, facts: facts(), now: 0 });

const vipsOn = (kernel: FakeKernel) => kernel.addresses(LB).filter((a) => a.index === 7).map((a) => `${a.address}/${a.prefixLength}`);
const changesOf = (r: { namespaces: readonly { key: string; changes: readonly { text: string }[] }[] }) =>
  r.namespaces.filter((n) => n.key === LB).flatMap((n) => n.changes.map((c) => c.text)).filter((t) => t.includes(' address '));

test('the VIPs go on the interface holding the load balancer\'s address, as /32s, and are recorded as owned', async () => {
  const kernel = kernelWithBalancer();
  const applied = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: EMPTY_STATE, mode: 'apply' });
  assert.deepEqual(applied.namespaces.flatMap((n) => n.errors), []);
  assert.deepEqual(vipsOn(kernel), ['10.0.1.250/24', '10.0.1.2/32', '10.0.1.3/32']);
  assert.deepEqual(changesOf(applied), ['+ address 10.0.1.2/32 on eth0 (web/appnet)', '+ address 10.0.1.3/32 on eth0 (api/appnet)']);
  assert.deepEqual(applied.state.addresses, { [LB]: ['10.0.1.2/32', '10.0.1.3/32'] });
  assert.deepEqual(applied.state.namespaces[LB], { netns: LB, role: 'load-balancer' });

  const again = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: applied.state, mode: 'apply' });
  assert.deepEqual(changesOf(again), [], 'nothing to change the second time');
  assert.deepEqual(again.state.addresses, applied.state.addresses);
});

test('diff reports a missing and an extra VIP address; reconcile removes only its own', async () => {
  const kernel = kernelWithBalancer();
  const first = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: EMPTY_STATE, mode: 'apply' });
  // Someone removes one VIP, and adds an address of their own on the same interface.
  await kernel.applyAddresses(LB, [{ kind: 'delete', index: 7, address: '10.0.1.2', prefixLength: 32 }]);
  kernel.addInterfaceAddress(LB, { index: 7, name: 'eth0', address: '10.0.1.99', prefixLength: 32 });
  const missing = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: first.state, mode: 'diff' });
  assert.deepEqual(changesOf(missing), ['+ address 10.0.1.2/32 on eth0 (web/appnet)']);
  assert.ok(missing.namespaces.find((n) => n.key === LB)!.changes.every((c) => c.drift));

  const extra = await reconcileNode({ ...input(catalogOf(WITHOUT_API), kernel), state: first.state, mode: 'diff' });
  assert.deepEqual(changesOf(extra), ['+ address 10.0.1.2/32 on eth0 (web/appnet)', '- address 10.0.1.3/32 on eth0']);
  assert.deepEqual(vipsOn(kernel), ['10.0.1.250/24', '10.0.1.3/32', '10.0.1.99/32'], 'diff changes nothing');

  const fixed = await reconcileNode({ ...input(catalogOf(WITHOUT_API), kernel), state: first.state, mode: 'apply' });
  assert.deepEqual(vipsOn(kernel), ['10.0.1.250/24', '10.0.1.99/32', '10.0.1.2/32']);
  assert.deepEqual(fixed.state.addresses, { [LB]: ['10.0.1.2/32'] });
});

test('cleanup removes the VIP addresses vipmesh added and leaves a foreign one', async () => {
  const kernel = kernelWithBalancer();
  const applied = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: EMPTY_STATE, mode: 'apply' });
  kernel.addInterfaceAddress(LB, { index: 7, name: 'eth0', address: '10.0.1.99', prefixLength: 32 });
  const cleaned = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: applied.state, mode: 'cleanup' });
  assert.deepEqual(cleaned.namespaces.flatMap((n) => n.errors), []);
  assert.deepEqual(vipsOn(kernel), ['10.0.1.250/24', '10.0.1.99/32']);
  assert.deepEqual(kernel.vipmeshChains(LB), []);
  assert.equal(cleaned.state.addresses, undefined);
  assert.deepEqual(cleaned.state.namespaces, {});
});

test('a VIP address that was there before vipmesh is used but never owned, so never removed', async () => {
  const kernel = kernelWithBalancer();
  kernel.addInterfaceAddress(LB, { index: 7, name: 'eth0', address: '10.0.1.2', prefixLength: 32 });
  const applied = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: EMPTY_STATE, mode: 'apply' });
  assert.deepEqual(applied.state.addresses, { [LB]: ['10.0.1.3/32'] });
  await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: applied.state, mode: 'cleanup' });
  assert.deepEqual(vipsOn(kernel), ['10.0.1.250/24', '10.0.1.2/32']);
});

test('without an interface holding the load balancer\'s address, the VIPs are reported, not added', async () => {
  const kernel = createFakeKernel({ namespaces: [LB, '/run/netns/w1', '/run/netns/a1'] });
  const applied = await reconcileNode({ ...input(catalogOf(CATALOG), kernel), state: EMPTY_STATE, mode: 'apply' });
  const lb = applied.namespaces.find((n) => n.key === LB)!;
  assert.deepEqual(lb.errors.map((e) => e.message), ['VIP addresses not added: no interface holds the load balancer\'s address 10.0.1.250']);
  assert.deepEqual(kernel.addresses(LB), []);
});

test('diffAddresses: only owned addresses are deleted, wherever they are; a present planned one is kept', () => {
  const vip = (address: string) => ({ address, prefixLength: 32, anchor: '10.0.1.250', service: 's', network: 'n' });
  const observed: ObservedAddress[] = [
    ETH0,
    { index: 7, name: 'eth0', address: '10.0.1.2', prefixLength: 32 },
    { index: 7, name: 'eth0', address: '10.0.1.5', prefixLength: 32 },
    { index: 9, name: 'eth1', address: '10.0.1.6', prefixLength: 32 },
    { index: 9, name: 'eth1', address: '10.0.1.7', prefixLength: 32 },
  ];
  const result = diffAddresses([vip('10.0.1.2'), vip('10.0.1.3')], observed, ['10.0.1.2/32', '10.0.1.6/32', '10.0.1.8/32']);
  assert.deepEqual(result.ops, [
    { kind: 'add', index: 7, address: '10.0.1.3', prefixLength: 32 },
    { kind: 'delete', index: 9, address: '10.0.1.6', prefixLength: 32 },
  ]);
  assert.deepEqual(result.owned, ['10.0.1.2/32', '10.0.1.3/32']);
});
