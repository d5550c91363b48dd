// The kernel adapters against this machine's kernel, in throwaway namespaces
// (root). This machine: iptables with the nf_tables backend, no IPVS.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import test from 'node:test';
import { createRunner } from '../../src/kernel/exec.js';
import { createKernel, detectBackend } from '../../src/kernel/index.js';
import { KernelError, type Kernel } from '../../src/kernel/types.js';
import { inNetns, netns, run } from '../helpers/netns.js';

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

test('without IPVS in the kernel, reading says so and applying fails as no-ipvs', async (t) => {
  const name = await netns(t);
  const { kernel } = await kernelWithRunner();
  const observed = await kernel.readIpvs(path(name));
  assert.equal(observed.available, false);
  assert.match(observed.available ? '' : observed.reason, /lacks IPVS/);
  await assert.rejects(kernel.applyIpvs(path(name), [{ kind: 'add-service', fwmark: 1452277761, scheduler: 'rr', persistence: 0 }]), (e: unknown) =>
    e instanceof KernelError && e.kind === 'no-ipvs' && /lacks IPVS/.test(e.message));
});

test('sysctls are written and read inside the namespace only', async (t) => {
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
  assert.equal(after.get('net.ipv4.vs.conntrack'), undefined);
  assert.equal(await inNetns(name, 'cat', ['/proc/sys/net/ipv4/ip_forward']), '1');
  assert.equal(await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostBefore);
  const own = await kernel.readSysctls(null, ['net.ipv4.ip_forward']);
  assert.equal(own.get('net.ipv4.ip_forward'), hostBefore.trim());
});

test('a sysctl write the kernel refuses names the sysctl', async (t) => {
  const name = await netns(t);
  const { kernel } = await kernelWithRunner();
  await assert.rejects(kernel.writeSysctls(path(name), [{ name: 'net.ipv4.ip_forward', value: 'yes' }]), (e: unknown) =>
    e instanceof KernelError && e.kind === 'rejected' && e.message.includes('net.ipv4.ip_forward=yes'));
  await assert.rejects(kernel.writeSysctls(path(name), [{ name: 'net.ipv4.vs.conntrack', value: '1' }]), (e: unknown) =>
    e instanceof KernelError && e.kind === 'no-ipvs');
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
