// The kernel adapters against this machine's kernel, in throwaway namespaces
// (root). Where the kernel has IPVS (an ordinary Debian host, the kernel lane's guest,
// which runs this file too) its state is read back; where it lacks IPVS, vipmesh says so.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import test from 'node:test';
import { createRunner } from '../../src/kernel/exec.js';
import { createKernel, detectBackend } from '../../src/kernel/index.js';
import { KernelError, type Kernel, type ObservedService } from '../../src/kernel/types.js';
import { inNetns, kernelHasIpvs, netns, run } from '../helpers/netns.js';

const path = (name: string): string => `/run/netns/${name}`;

async function kernelWithRunner() {
  const runner = createRunner();
  const kernel: Kernel = createKernel(runner, { backend: await detectBackend(runner) });
  return { runner, kernel };
}

const RESTORE = [
  '*nat',
  ':VIPMESH-POSTROUTING - [0:0]',
  '-I POSTROUTING -j VIPMESH-POSTROUTING',
  '-A VIPMESH-POSTROUTING -m mark --mark 0x56900001 -m comment --comment "whoami on appnet" -j SNAT --to-source 10.0.1.3',
  'COMMIT',
  '',
].join('\n');

test('detects the host backend from iptables --version', async () => {
  const version = await run('iptables', ['--version']);
  assert.equal(await detectBackend(createRunner()), version.includes('(nf_tables)') ? 'nft' : 'legacy');
});

test('a restored chain and jump read back exactly, foreign chains and rules ignored, in one spawn', async (t) => {
  const name = await netns(t);
  await inNetns(name, 'iptables', ['-t', 'nat', '-N', 'DOCKER']);
  await inNetns(name, 'iptables', ['-t', 'nat', '-A', 'DOCKER', '-j', 'RETURN']);
  await inNetns(name, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '172.17.0.0/16', '-j', 'MASQUERADE']);
  const { runner, kernel } = await kernelWithRunner();
  await kernel.restoreIptables(path(name), 4, RESTORE);
  const before = runner.stats.spawns;
  const observed = await kernel.readIptables(path(name), 4);
  assert.equal(runner.stats.spawns - before, 1);
  assert.deepEqual([...observed.nat.chains], [
    ['VIPMESH-POSTROUTING', ['-m mark --mark 0x56900001 -m comment --comment "whoami on appnet" -j SNAT --to-source 10.0.1.3']],
  ]);
  assert.deepEqual(observed.nat.jumps, [{ from: 'POSTROUTING', spec: '-j VIPMESH-POSTROUTING' }]);
  assert.equal(observed.mangle.chains.size + observed.filter.chains.size, 0);
  assert.deepEqual([...observed.mangle.jumps, ...observed.filter.jumps], []);
});

test('a rejected restore quotes the failing input line and the restore\'s stderr', async (t) => {
  const name = await netns(t);
  const { kernel } = await kernelWithRunner();
  const bad = '-A VIPMESH-X -p tcp --no-such-option 1 -j RETURN';
  const text = ['*filter', ':VIPMESH-X - [0:0]', '-A VIPMESH-X -j RETURN', bad, '-A VIPMESH-X -j ACCEPT', 'COMMIT', ''].join('\n');
  await assert.rejects(kernel.restoreIptables(path(name), 4, text), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.equal(e.kind, 'rejected');
    assert.match(e.message, /--no-such-option/);
    assert.match(e.message, /line: 4|line 4 failed/);
    assert.ok(e.message.includes(`> 4 | ${bad}`), e.message);
    assert.ok(e.message.includes('  2 | :VIPMESH-X - [0:0]'), e.message);
    assert.ok(e.message.includes('  6 | COMMIT'), e.message);
    return true;
  });
  // The transaction is atomic: nothing of it is left behind.
  assert.equal((await kernel.readIptables(path(name), 4)).filter.chains.size, 0);
});

test('reading a namespace that vanished is a no-namespace error', async (t) => {
  const name = await netns(t);
  await run('ip', ['netns', 'delete', name]);
  const { kernel } = await kernelWithRunner();
  assert.equal(await kernel.namespaceExists(path(name)), false);
  await assert.rejects(kernel.readIptables(path(name), 4), (e: unknown) =>
    e instanceof KernelError && e.kind === 'no-namespace' && e.message === `namespace ${path(name)} does not exist`);
  await assert.rejects(kernel.restoreIptables(path(name), 4, RESTORE), (e: unknown) => e instanceof KernelError && e.kind === 'no-namespace');
});

const MARK = 0x56900001;

test('IPVS services read back as ipvsadm wrote them, in their namespace only; without IPVS, reading says so and applying fails as no-ipvs', async (t) => {
  const name = await netns(t);
  const { kernel } = await kernelWithRunner();
  if (!(await kernelHasIpvs())) {
    t.diagnostic('this kernel lacks IPVS');
    const observed = await kernel.readIpvs(path(name));
    assert.equal(observed.available, false);
    assert.match(observed.available ? '' : observed.reason, /lacks IPVS/);
    await assert.rejects(kernel.applyIpvs(path(name), [{ kind: 'add-service', fwmark: MARK, scheduler: 'rr', persistence: 0 }]), (e: unknown) =>
      e instanceof KernelError && e.kind === 'no-ipvs' && /lacks IPVS/.test(e.message));
    return;
  }
  t.diagnostic('this kernel has IPVS');
  // IPVS refuses a real server whose address the namespace does not type as unicast,
  // and with no local address (lo down) it types every one as broadcast: netns() brings lo up.
  const ipvsadm = (...args: string[]) => inNetns(name, 'ipvsadm', args);
  await ipvsadm('-A', '-f', String(MARK), '-s', 'wrr', '-p', '30');
  await ipvsadm('-a', '-f', String(MARK), '-r', '10.0.1.3:0', '-m', '-w', '2');
  await ipvsadm('-a', '-f', String(MARK), '-r', '10.0.1.4:0', '-m', '-w', '0');
  await ipvsadm('-A', '-f', '100', '-s', 'rr'); // someone else's: read too, the caller keeps vipmesh's by mark
  const realServer = (address: string, weight: number) =>
    ({ address, port: 0, weight, forward: 'Masq', activeConnections: 0, inactiveConnections: 0 });
  const ours = { fwmark: MARK, scheduler: 'wrr', persistence: 30, realServers: [realServer('10.0.1.3', 2), realServer('10.0.1.4', 0)] };
  const sorted = (services: readonly ObservedService[]) => [...services]
    .map((s) => ({ ...s, realServers: [...s.realServers].sort((a, b) => a.address.localeCompare(b.address)) }))
    .sort((a, b) => a.fwmark - b.fwmark);

  const all = await kernel.readIpvs(path(name));
  assert.ok(all.available, 'the namespace has IPVS');
  assert.deepEqual(sorted(all.services), [{ fwmark: 100, scheduler: 'rr', persistence: 0, realServers: [] }, ours]);
  const some = await kernel.readIpvs(path(name), [MARK, MARK + 1]);
  assert.deepEqual(some.available ? sorted(some.services) : some.reason, [ours], 'only the marks asked for, a missing one simply absent');
  const own = await kernel.readIpvs(null);
  assert.ok(own.available, 'the agent\'s own namespace has IPVS too');
  assert.ok(!own.services.some((s) => s.fwmark === MARK), 'services stay in the namespace that holds them');
});

test('sysctls are written and read inside the namespace only; IPVS ones exist where IPVS does', async (t) => {
  const ipvs = await kernelHasIpvs(); // first: the probe loads ip_vs where the module exists
  const name = await netns(t);
  const { runner, kernel } = await kernelWithRunner();
  const hostBefore = await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8');
  // A new namespace may inherit the host's IPv4 settings; it need not start at 0.
  const inside = await kernel.readSysctls(path(name), ['net.ipv4.ip_forward']);
  assert.match(inside.get('net.ipv4.ip_forward') ?? '', /^[01]$/);
  await kernel.writeSysctls(path(name), [{ name: 'net.ipv4.ip_forward', value: '1' }]);
  const before = runner.stats.spawns;
  const after = await kernel.readSysctls(path(name), ['net.ipv4.ip_forward', 'net.ipv4.vs.conntrack']);
  assert.equal(runner.stats.spawns - before, 1);
  assert.equal(after.get('net.ipv4.ip_forward'), '1');
  assert.equal(after.has('net.ipv4.vs.conntrack'), true);
  // ip_vs, once loaded, gives every namespace its vs.* sysctls.
  if (ipvs) assert.match(after.get('net.ipv4.vs.conntrack') ?? 'missing', /^[01]$/);
  else assert.equal(after.get('net.ipv4.vs.conntrack'), undefined);
  assert.equal(await inNetns(name, 'cat', ['/proc/sys/net/ipv4/ip_forward']), '1');
  assert.equal(await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostBefore);
  const own = await kernel.readSysctls(null, ['net.ipv4.ip_forward']);
  assert.equal(own.get('net.ipv4.ip_forward'), hostBefore.trim());
});

test('a sysctl write the kernel refuses names the sysctl; an IPVS sysctl is written where IPVS is, no-ipvs where not', async (t) => {
  const name = await netns(t);
  const { kernel } = await kernelWithRunner();
  await assert.rejects(kernel.writeSysctls(path(name), [{ name: 'net.ipv4.ip_forward', value: 'yes' }]), (e: unknown) =>
    e instanceof KernelError && e.kind === 'rejected' && e.message.includes('net.ipv4.ip_forward=yes'));
  const conntrack = [{ name: 'net.ipv4.vs.conntrack', value: '1' }];
  if (await kernelHasIpvs()) {
    await kernel.writeSysctls(path(name), conntrack);
    assert.equal(await inNetns(name, 'cat', ['/proc/sys/net/ipv4/vs/conntrack']), '1');
  } else {
    await assert.rejects(kernel.writeSysctls(path(name), conntrack), (e: unknown) =>
      e instanceof KernelError && e.kind === 'no-ipvs');
  }
});

test('IPv6 rules round-trip through ip6tables, apart from IPv4', async (t) => {
  const name = await netns(t);
  const { kernel } = await kernelWithRunner();
  const text = [
    '*filter',
    ':VIPMESH-FORWARD - [0:0]',
    '-I FORWARD -j VIPMESH-FORWARD',
    '-A VIPMESH-FORWARD -d fd00:1::5/128 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT',
    'COMMIT',
    '',
  ].join('\n');
  await kernel.restoreIptables(path(name), 6, text);
  const v6 = await kernel.readIptables(path(name), 6);
  assert.deepEqual([...v6.filter.chains], [
    ['VIPMESH-FORWARD', ['-d fd00:1::5/128 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT']],
  ]);
  assert.deepEqual(v6.filter.jumps, [{ from: 'FORWARD', spec: '-j VIPMESH-FORWARD' }]);
  const v4 = await kernel.readIptables(path(name), 4);
  assert.equal(v4.filter.chains.size, 0);
});
