// The adapters' decisions that need no kernel: backend detection, binary choice,
// how sysctl names and values and IPVS changes reach their programs, timeouts,
// namespace identity. A fake runner records commands.
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import type { Command, ExecResult, Runner, RunnerStats } from '../../../src/kernel/exec.js';
import { createKernel, detectBackend } from '../../../src/kernel/index.js';
import { iptablesProgram } from '../../../src/kernel/iptables.js';
import { renderIpvsOps } from '../../../src/kernel/ipvs.js';
import { KernelError, type IpvsOp } from '../../../src/kernel/types.js';

function fakeRunner(answer: (command: Command) => Partial<ExecResult>): Runner & { commands: Command[] } {
  const stats: RunnerStats = { spawns: 0, commands: 0, bytesWritten: 0 };
  const commands: Command[] = [];
  return {
    stats,
    commands,
    async run(command) {
      stats.spawns++;
      commands.push(command);
      return { command: command.file, exitCode: 0, stdout: '', stderr: '', durationMs: 0, ...answer(command) };
    },
  };
}

// Always a namespace file, whoever runs the tests.
const SELF = '/proc/self/ns/net';

test('the backend comes from the version line of the host\'s iptables', async () => {
  const versions: [string, string][] = [
    ['iptables v1.8.9 (nf_tables)\n', 'nft'],
    ['iptables v1.8.7 (legacy)\n', 'legacy'],
    ['iptables v1.6.1\n', 'legacy'],
  ];
  for (const [stdout, backend] of versions) {
    const runner = fakeRunner(() => ({ stdout }));
    assert.equal(await detectBackend(runner), backend);
    assert.deepEqual(runner.commands, [{ file: 'iptables', args: ['--version'] }]);
  }
});

test('no iptables at all, or an unreadable version, is a backend error', async () => {
  const missing = fakeRunner(() => ({ exitCode: -1, failure: 'could not be run (spawn iptables ENOENT)' }));
  await assert.rejects(detectBackend(missing), (e: unknown) => e instanceof KernelError && e.kind === 'backend' && /ENOENT/.test(e.message));
  const odd = fakeRunner(() => ({ stdout: 'iptables v2.0 (something)\n' }));
  await assert.rejects(detectBackend(odd), (e: unknown) => e instanceof KernelError && e.kind === 'backend');
});

test('the binary of the detected backend is required, and a missing one is named', async () => {
  const only = (...names: string[]) => async (name: string) => (names.includes(name) ? `/usr/sbin/${name}` : undefined);
  assert.equal(await iptablesProgram('nft', 6, 'restore', only('ip6tables-nft-restore')), '/usr/sbin/ip6tables-nft-restore');
  await assert.rejects(
    iptablesProgram('nft', 4, 'save', only('iptables-save', 'iptables-legacy-save')),
    (e: unknown) => e instanceof KernelError && e.kind === 'backend'
      && e.message === "the host's iptables uses the nf_tables backend, but iptables-nft-save is not installed",
  );
  await assert.rejects(
    iptablesProgram('legacy', 4, 'save', only('iptables-save', 'iptables-nft-save')),
    (e: unknown) => e instanceof KernelError && /legacy backend, but iptables-legacy-save/.test(e.message),
  );
  // iptables before 1.8: only the plain names, which are legacy.
  assert.equal(await iptablesProgram('legacy', 4, 'save', only('iptables-save')), '/usr/sbin/iptables-save');
});

test('sysctls are read in one spawn, names passed as arguments, missing ones undefined', async () => {
  const runner = fakeRunner(() => ({ stdout: '/proc/sys/net/ipv4/ip_forward=1\n' }));
  const kernel = createKernel(runner, { backend: 'nft' });
  const values = await kernel.readSysctls(SELF, ['net.ipv4.ip_forward', 'net.ipv4.vs.conntrack']);
  assert.deepEqual([...values], [['net.ipv4.ip_forward', '1'], ['net.ipv4.vs.conntrack', undefined]]);
  assert.equal(runner.stats.spawns, 1);
  const [command] = runner.commands;
  assert.equal(command?.file, 'sh');
  assert.equal(command?.netns, SELF);
  assert.deepEqual(command?.args.slice(2), ['sh', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv4/vs/conntrack']);
});

test('sysctl values never become script text, and bad names never reach the shell', async () => {
  const runner = fakeRunner(() => ({}));
  const kernel = createKernel(runner, { backend: 'nft' });
  const value = '1; touch /tmp/pwned';
  await kernel.writeSysctls(SELF, [{ name: 'net.ipv4.ip_forward', value }]);
  const script = runner.commands[0]?.args[1] ?? '';
  assert.equal(script.includes(value), false);
  assert.deepEqual(runner.commands[0]?.args.slice(2), ['sh', '/proc/sys/net/ipv4/ip_forward', value]);
  for (const name of ['net/ipv4/ip_forward', 'net.ipv4.$(id)', 'Net.IPv4.x', 'net..ipv4', '']) {
    await assert.rejects(kernel.readSysctls(SELF, [name]), (e: unknown) => e instanceof KernelError, name);
  }
  assert.equal(runner.stats.spawns, 1);
});

test('a failed sysctl write names the sysctl, and a missing IPVS sysctl says IPVS is lacking', async () => {
  const failing = fakeRunner(() => ({
    exitCode: 1,
    stderr: 'sh: 1: printf: printf: I/O error\nvipmesh-sysctl:failed:/proc/sys/net/ipv4/ip_forward\n',
  }));
  await assert.rejects(
    createKernel(failing, { backend: 'nft' }).writeSysctls(SELF, [{ name: 'net.ipv4.ip_forward', value: 'x' }]),
    (e: unknown) => e instanceof KernelError && e.kind === 'rejected' && /net\.ipv4\.ip_forward=x/.test(e.message) && /I\/O error/.test(e.message),
  );
  const missing = fakeRunner(() => ({ exitCode: 3, stderr: 'vipmesh-sysctl:missing:/proc/sys/net/ipv4/vs/conntrack\n' }));
  await assert.rejects(
    createKernel(missing, { backend: 'nft' }).writeSysctls(SELF, [{ name: 'net.ipv4.vs.conntrack', value: '1' }]),
    (e: unknown) => e instanceof KernelError && e.kind === 'no-ipvs' && /lacks IPVS/.test(e.message),
  );
});

test('an empty IPVS change list spawns nothing; a field with a newline is refused', async () => {
  const runner = fakeRunner(() => ({}));
  const kernel = createKernel(runner, { backend: 'nft' });
  await kernel.applyIpvs(SELF, []);
  assert.equal(runner.stats.spawns, 0);
  await assert.rejects(kernel.applyIpvs(SELF, [{ kind: 'add-service', fwmark: 1, scheduler: 'rr\n-C', persistence: 0 }]), KernelError);
  assert.equal(runner.stats.spawns, 0);
});

test('IPVS changes reach ipvsadm -R as one batch of the lines ipvsadm-save prints', async () => {
  const runner = fakeRunner(() => ({}));
  const kernel = createKernel(runner, { backend: 'nft' });
  const ops: IpvsOp[] = [
    { kind: 'add-service', fwmark: 1452277761, scheduler: 'rr', persistence: 0 },
    { kind: 'edit-service', fwmark: 1452277762, scheduler: 'sh', persistence: 300 },
    { kind: 'delete-service', fwmark: 1452277763 },
    { kind: 'add-real-server', fwmark: 1452277761, address: '10.0.1.3', port: 0, weight: 1 },
    { kind: 'edit-real-server', fwmark: 1452277762, address: '10.0.1.4', port: 80, weight: 0 },
    { kind: 'delete-real-server', fwmark: 1452277762, address: '10.0.1.5', port: 80 },
  ];
  await kernel.applyIpvs(SELF, ops);
  assert.equal(runner.stats.spawns, 1);
  assert.deepEqual(runner.commands[0]?.args, ['-R']);
  assert.equal(runner.commands[0]?.input, [
    '-A -f 1452277761 -s rr',
    '-E -f 1452277762 -s sh -p 300',
    '-D -f 1452277763',
    '-a -f 1452277761 -r 10.0.1.3:0 -m -w 1',
    '-e -f 1452277762 -r 10.0.1.4:80 -m -w 0',
    '-d -f 1452277762 -r 10.0.1.5:80',
    '',
  ].join('\n'));
  assert.equal(renderIpvsOps(ops), runner.commands[0]?.input);
});

test('a command that runs out of time fails the call as a timeout, naming the command', async () => {
  const runner = fakeRunner(() => ({ exitCode: -1, failure: 'timed out after 30000 ms' }));
  const kernel = createKernel(runner, { backend: 'nft' });
  await assert.rejects(kernel.applyIpvs(SELF, [{ kind: 'delete-service', fwmark: 1452277763 }]), (e: unknown) =>
    e instanceof KernelError && e.kind === 'timeout' && /timed out after 30000 ms/.test(e.message));
  await assert.rejects(kernel.forgetDnsFlows(SELF), (e: unknown) => e instanceof KernelError && e.kind === 'timeout');
  await assert.rejects(kernel.writeSysctls(SELF, [{ name: 'net.ipv4.ip_forward', value: '1' }]), (e: unknown) =>
    e instanceof KernelError && e.kind === 'timeout');
  const refused = fakeRunner(() => ({ exitCode: 2, stderr: 'Memory allocation problem' }));
  await assert.rejects(createKernel(refused, { backend: 'nft' }).applyIpvs(SELF, [{ kind: 'delete-service', fwmark: 1 }]), (e: unknown) =>
    e instanceof KernelError && e.kind === 'rejected');
});

test('one namespace spelled two ways has one identity; a missing path has none', async (t) => {
  const kernel = createKernel(fakeRunner(() => ({})), { backend: 'nft' });
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-nsid-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await symlink('/proc/self/ns/net', join(dir, 'link'));
  const own = await kernel.namespaceId(null);
  assert.ok(own !== undefined);
  assert.equal(await kernel.namespaceId(SELF), own);
  assert.equal(await kernel.namespaceId('/proc//self/ns/../ns/net'), own);
  assert.equal(await kernel.namespaceId(join(dir, 'link')), own);
  assert.notEqual(await kernel.namespaceId('/proc/self/status'), own);
  assert.equal(await kernel.namespaceId('/run/netns/vipmesh-no-such-namespace'), undefined);
});

test('a path that is not a namespace does not exist; null (the agent\'s own) always does', async () => {
  const kernel = createKernel(fakeRunner(() => ({})), { backend: 'nft' });
  assert.equal(await kernel.namespaceExists(null), true);
  assert.equal(await kernel.namespaceExists(SELF), true);
  assert.equal(await kernel.namespaceExists('/run/netns/vipmesh-no-such-namespace'), false);
  assert.equal(await kernel.namespaceExists('/proc/self/status'), false);
  await assert.rejects(
    kernel.readSysctls('/run/netns/vipmesh-no-such-namespace', ['net.ipv4.ip_forward']),
    (e: unknown) => e instanceof KernelError && e.kind === 'no-namespace' && e.message === 'namespace /run/netns/vipmesh-no-such-namespace does not exist',
  );
});
