// The fake kernel the reconcile tests and the benchmark stand on: it must take
// what the real one takes, refuse what the real one refuses, and change nothing
// when it refuses.
import assert from 'node:assert/strict';
import test from 'node:test';
import { KernelError } from '../../../src/kernel/types.js';
import { createFakeKernel } from '../../fakes/kernel.js';

const NS = '/run/netns/t';

test('restore text applies with --noflush: declared chains flush, built-in chains keep foreign rules', async () => {
  const kernel = createFakeKernel({ namespaces: [NS] });
  await kernel.restoreIptables(NS, 4, '*nat\n-A OUTPUT -j DNAT --to-destination 10.9.9.9\nCOMMIT\n');
  await kernel.restoreIptables(NS, 4, [
    '*nat', ':VIPMESH-A - [0:0]', '-I OUTPUT -j VIPMESH-A', '-A VIPMESH-A -j RETURN', '-A VIPMESH-A -p tcp -j ACCEPT', 'COMMIT', '',
  ].join('\n'));
  assert.deepEqual(kernel.rules(NS, 4, 'nat').get('OUTPUT'), ['-j VIPMESH-A', '-j DNAT --to-destination 10.9.9.9']);
  await kernel.restoreIptables(NS, 4, '*nat\n:VIPMESH-A - [0:0]\n-A VIPMESH-A -j ACCEPT\nCOMMIT\n');
  const seen = await kernel.readIptables(NS, 4);
  assert.deepEqual([...seen.nat.chains], [['VIPMESH-A', ['-j ACCEPT']]]);
  assert.deepEqual(seen.nat.jumps, [{ from: 'OUTPUT', spec: '-j VIPMESH-A' }], 'foreign rules are not vipmesh\'s');
  assert.deepEqual(kernel.vipmeshChains(NS, 6), [], 'families are apart');
});

test('a rejected restore changes nothing, in any table of it', async () => {
  const kernel = createFakeKernel({ namespaces: [NS] });
  const bad = [
    ['*mangle', ':VIPMESH-M - [0:0]', '-I OUTPUT -j VIPMESH-M', 'COMMIT', '*nat', '-A OUTPUT -j VIPMESH-NOPE', 'COMMIT'],
    ['*nat', '-D OUTPUT -j VIPMESH-NOT-THERE', 'COMMIT'],
    ['*nat', ':VIPMESH-A - [0:0]'],
    ['*raw-ish', 'COMMIT'],
  ];
  for (const lines of bad) {
    await assert.rejects(kernel.restoreIptables(NS, 4, lines.join('\n') + '\n'), (e: unknown) => e instanceof KernelError && e.kind === 'rejected', lines.join(' | '));
  }
  assert.deepEqual(kernel.vipmeshChains(NS), []);
  assert.deepEqual(kernel.rules(NS, 4, 'mangle').get('OUTPUT'), []);
  await kernel.restoreIptables(NS, 4, '*nat\n:VIPMESH-A - [0:0]\n-I OUTPUT -j VIPMESH-A\n-A VIPMESH-A -j RETURN\nCOMMIT\n');
  await assert.rejects(kernel.restoreIptables(NS, 4, '*nat\n-X VIPMESH-A\nCOMMIT\n'), KernelError, 'a referenced, non-empty chain stays');
  await kernel.restoreIptables(NS, 4, '*nat\n:VIPMESH-A - [0:0]\n-D OUTPUT -j VIPMESH-A\n-X VIPMESH-A\nCOMMIT\n');
  assert.deepEqual(kernel.vipmeshChains(NS), []);
});

test('an IPVS batch applies whole or not at all', async () => {
  const kernel = createFakeKernel({ namespaces: [NS] });
  await kernel.applyIpvs(NS, [
    { kind: 'add-service', fwmark: 7, scheduler: 'rr', persistence: 0 },
    { kind: 'add-real-server', fwmark: 7, address: '10.0.0.1', port: 0, weight: 1 },
  ]);
  const before = kernel.ipvsServices(NS);
  await assert.rejects(kernel.applyIpvs(NS, [
    { kind: 'edit-service', fwmark: 7, scheduler: 'wlc', persistence: 30 },
    { kind: 'delete-real-server', fwmark: 7, address: '10.0.0.1', port: 0 },
    { kind: 'add-real-server', fwmark: 8, address: '10.0.0.2', port: 0, weight: 1 },
  ]), (e: unknown) => e instanceof KernelError && e.kind === 'rejected' && /No such service/.test(e.message));
  assert.deepEqual(kernel.ipvsServices(NS), before);
  await assert.rejects(kernel.applyIpvs(NS, [{ kind: 'add-service', fwmark: 7, scheduler: 'rr', persistence: 0 }]), /already exists/);
  await kernel.applyIpvs(NS, [
    { kind: 'edit-real-server', fwmark: 7, address: '10.0.0.1', port: 0, weight: 0 },
    { kind: 'edit-service', fwmark: 7, scheduler: 'wlc', persistence: 30 },
  ]);
  const read = await kernel.readIpvs(NS, [7, 8]);
  assert.ok(read.available);
  assert.equal(read.services.length, 1);
  const [service] = read.services;
  assert.equal(service?.scheduler, 'wlc');
  assert.equal(service?.realServers[0]?.weight, 0);
  await kernel.applyIpvs(NS, [{ kind: 'delete-service', fwmark: 7 }]);
  assert.deepEqual(kernel.ipvsServices(NS), []);
});

test('without IPVS: reads say so, writes fail as no-ipvs, and the vs.* sysctls do not exist', async () => {
  const kernel = createFakeKernel({ namespaces: [NS], ipvs: false });
  const seen = await kernel.readIpvs(NS);
  assert.equal(seen.available, false);
  await assert.rejects(kernel.applyIpvs(NS, [{ kind: 'delete-service', fwmark: 1 }]), (e: unknown) => e instanceof KernelError && e.kind === 'no-ipvs');
  const values = await kernel.readSysctls(NS, ['net.ipv4.vs.conntrack', 'net.ipv4.ip_forward']);
  assert.deepEqual([...values], [['net.ipv4.vs.conntrack', undefined], ['net.ipv4.ip_forward', '0']]);
  await assert.rejects(
    kernel.writeSysctls(NS, [{ name: 'net.ipv4.ip_forward', value: '1' }, { name: 'net.ipv4.vs.conntrack', value: '1' }]),
    (e: unknown) => e instanceof KernelError && e.kind === 'no-ipvs',
  );
  assert.equal(kernel.sysctl(NS, 'net.ipv4.ip_forward'), '0', 'a refused sysctl batch changes nothing');
});

test('namespaces: spellings of one path are one namespace; a removed one is gone with its state', async () => {
  const kernel = createFakeKernel({ namespaces: [NS] });
  await kernel.writeSysctls('/var/run/netns//t', [{ name: 'net.ipv4.ip_forward', value: '1' }]);
  assert.equal(kernel.sysctl(NS, 'net.ipv4.ip_forward'), '1');
  assert.equal(await kernel.namespaceId('/run/netns/x/../t'), await kernel.namespaceId(NS));
  assert.notEqual(await kernel.namespaceId(null), await kernel.namespaceId(NS));
  kernel.removeNamespace(NS);
  assert.equal(await kernel.namespaceExists(NS), false);
  assert.equal(await kernel.namespaceId(NS), undefined);
  await assert.rejects(kernel.readIptables(NS, 4), (e: unknown) => e instanceof KernelError && e.kind === 'no-namespace');
  kernel.addNamespace(NS);
  assert.equal(kernel.sysctl(NS, 'net.ipv4.ip_forward'), '0', 'a new namespace of the same name starts afresh');
});

test('an injected failure hits the matching call once, and changes nothing', async () => {
  const kernel = createFakeKernel({ namespaces: [NS, '/run/netns/u'] });
  kernel.fail('writeSysctls', { netns: NS, error: new KernelError('slow', 'timeout') });
  await kernel.writeSysctls('/run/netns/u', [{ name: 'net.ipv4.ip_forward', value: '1' }]);
  await assert.rejects(kernel.writeSysctls(NS, [{ name: 'net.ipv4.ip_forward', value: '1' }]), (e: unknown) => e instanceof KernelError && e.kind === 'timeout');
  assert.equal(kernel.sysctl(NS, 'net.ipv4.ip_forward'), '0');
  await kernel.writeSysctls(NS, [{ name: 'net.ipv4.ip_forward', value: '1' }]);
  assert.equal(kernel.sysctl(NS, 'net.ipv4.ip_forward'), '1');
});
