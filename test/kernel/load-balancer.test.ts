// A load balancer's VIP addresses against this machine's kernel, in throwaway
// namespaces (root): the rtnetlink address adapter, then reconcile, diff and
// cleanup of the addresses. IPVS itself is proven in the kernel lane
// (test/vm/lb.scenario.ts); where this kernel lacks it, the pass says so for the
// IPVS part and programs the rest, addresses included.
import assert from 'node:assert/strict';
import test, { type TestContext } from 'node:test';
import { createRunner } from '../../src/kernel/exec.js';
import { createKernel, detectBackend } from '../../src/kernel/index.js';
import { KernelError, type Kernel } from '../../src/kernel/types.js';
import { reconcileNode } from '../../src/reconcile/run.js';
import { EMPTY_STATE } from '../../src/state/store.js';
import { catalogOf, facts } from '../helpers/catalog.js';
import { inNetns, kernelHasIpvs, netns, plumbing, uniqueName } from '../helpers/netns.js';

const path = (name: string): string => `/run/netns/${name}`;

async function realKernel(): Promise<Kernel> {
  const runner = createRunner();
  return createKernel(runner, { backend: await detectBackend(runner) });
}

/** A namespace with an interface `lb0` (a veth whose peer stays beside it) holding `address`/24. */
async function balancerNetns(t: TestContext, address: string): Promise<string> {
  const name = await netns(t, 'vmlb');
  await plumbing(t).wire(name, 'lb0', `${address}/24`, name, uniqueName('p'), []);
  return name;
}

/** Addresses on lb0 as `ip` shows them: "10.0.1.2/32". */
async function addressesOf(name: string): Promise<string[]> {
  const shown = JSON.parse(await inNetns(name, 'ip', ['-j', 'addr', 'show', 'dev', 'lb0'])) as
    { addr_info: { family: string; local: string; prefixlen: number }[] }[];
  return shown.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).sort();
}

test('the address adapter lists, adds and deletes addresses inside a namespace over rtnetlink', async (t) => {
  const name = await balancerNetns(t, '10.9.0.250');
  const kernel = await realKernel();
  const listed = await kernel.readAddresses(path(name));
  const lb0 = listed.find((a) => a.name === 'lb0');
  assert.deepEqual(lb0 && { address: lb0.address, prefixLength: lb0.prefixLength }, { address: '10.9.0.250', prefixLength: 24 });
  await kernel.applyAddresses(path(name), [
    { kind: 'add', index: lb0!.index, address: '10.9.0.2', prefixLength: 32 },
    { kind: 'add', index: lb0!.index, address: '10.9.0.3', prefixLength: 32 },
  ]);
  assert.deepEqual(await addressesOf(name), ['10.9.0.2/32', '10.9.0.250/24', '10.9.0.3/32']);
  await kernel.applyAddresses(path(name), [{ kind: 'delete', index: lb0!.index, address: '10.9.0.2', prefixLength: 32 }]);
  assert.deepEqual(await addressesOf(name), ['10.9.0.250/24', '10.9.0.3/32']);
});

test('a refused address change names the address and how far the batch got', async (t) => {
  const name = await balancerNetns(t, '10.9.0.250');
  const kernel = await realKernel();
  const index = (await kernel.readAddresses(path(name))).find((a) => a.name === 'lb0')!.index;
  await assert.rejects(kernel.applyAddresses(path(name), [
    { kind: 'add', index, address: '10.9.0.4', prefixLength: 32 },
    { kind: 'add', index, address: '10.9.0.4', prefixLength: 32 },
  ]), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.equal(e.kind, 'rejected');
    assert.match(e.message, /adding 10\.9\.0\.4\/32 .*EEXIST.*\(1 of 2 changes made\)/);
    return true;
  });
  await assert.rejects(kernel.readAddresses('/run/netns/vipmesh-no-such-namespace'),
    (e: unknown) => e instanceof KernelError && e.kind === 'no-namespace');
});

test('reconcile adds the VIPs on the load balancer\'s interface; diff sees drift; cleanup leaves a foreign address', async (t) => {
  const lb = await balancerNetns(t, '10.0.1.250');
  const task = await netns(t, 'vmlt');
  const catalog = (services: string) => catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes:
  node-1: { address: 192.0.2.11, loadBalancers: { appnet: { netns: ${path(lb)}, address: 10.0.1.250 } } }
services:
${services}
tasks:
  web.1: { service: web, node: node-1, netns: ${path(task)}, addresses: { appnet: 10.0.1.11 } }
`);
  const both = catalog('  web: { vips: { appnet: 10.0.1.2 } }\n  api: { vips: { appnet: 10.0.1.3 } }');
  const webOnly = catalog('  web: { vips: { appnet: 10.0.1.2 } }');
  const kernel = await realKernel();
  const ipvs = await kernelHasIpvs();
  const base = { node: 'node-1', kernel, facts: facts(), now: Date.now() };
  const lbErrors = (r: Awaited<ReturnType<typeof reconcileNode>>) =>
    r.namespaces.filter((n) => n.key === path(lb)).flatMap((n) => n.errors.map((e) => e.kind));

  const applied = await reconcileNode({ ...base, catalog: both, state: EMPTY_STATE, mode: 'apply' });
  assert.deepEqual(lbErrors(applied), ipvs ? [] : ['no_ipvs'], 'only IPVS may be missing');
  assert.deepEqual(await addressesOf(lb), ['10.0.1.2/32', '10.0.1.250/24', '10.0.1.3/32']);
  assert.deepEqual(applied.state.addresses, { [path(lb)]: ['10.0.1.2/32', '10.0.1.3/32'] });
  const mangle = await inNetns(lb, 'iptables-save', ['-t', 'mangle']);
  assert.match(mangle, /^-A INPUT -j VIPMESH-INPUT$/m);
  assert.match(mangle, /^-A VIPMESH-INPUT -d 10\.0\.1\.2\/32 -m comment --comment "web\/appnet" -j MARK/m);
  // The task namespace holds no VIP mark: only the DNS redirect, left alone without an agent.
  assert.doesNotMatch(await inNetns(task, 'iptables-save', []), /VIPMESH-OUTPUT|MARK/);

  // Drift: a VIP removed by hand, and a foreign address beside ours.
  await inNetns(lb, 'ip', ['addr', 'del', '10.0.1.2/32', 'dev', 'lb0']);
  await inNetns(lb, 'ip', ['addr', 'add', '10.0.1.99/32', 'dev', 'lb0']);
  const diff = await reconcileNode({ ...base, catalog: webOnly, state: applied.state, mode: 'diff' });
  const texts = diff.namespaces.filter((n) => n.key === path(lb)).flatMap((n) => n.changes.map((c) => c.text)).filter((c) => c.includes(' address '));
  assert.deepEqual(texts, ['+ address 10.0.1.2/32 on lb0 (web/appnet)', '- address 10.0.1.3/32 on lb0']);

  const fixed = await reconcileNode({ ...base, catalog: webOnly, state: applied.state, mode: 'apply' });
  assert.deepEqual(await addressesOf(lb), ['10.0.1.2/32', '10.0.1.250/24', '10.0.1.99/32']);

  const cleaned = await reconcileNode({ ...base, catalog: webOnly, state: fixed.state, mode: 'cleanup' });
  assert.deepEqual(lbErrors(cleaned), []);
  assert.deepEqual(await addressesOf(lb), ['10.0.1.250/24', '10.0.1.99/32'], 'the foreign address stays');
  assert.doesNotMatch(await inNetns(lb, 'iptables-save', []), /VIPMESH/);
  assert.equal(cleaned.state.addresses, undefined);
});
