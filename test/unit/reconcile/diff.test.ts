import assert from 'node:assert/strict';
import test from 'node:test';
import type { IpvsOp, ObservedIptables, ObservedIpvs, ObservedService, ObservedTable } from '../../../src/kernel/types.js';
import { ipvsadmLine } from '../../../src/kernel/ipvs.js';
import { type Chain, type VirtualService } from '../../../src/plan/types.js';
import { diffNamespace } from '../../../src/reconcile/diff.js';
import { drainKey } from '../../../src/reconcile/diff-ipvs.js';
import type { DiffOptions, ObservedNamespace } from '../../../src/reconcile/types.js';

const dns: Chain = {
  family: 4, table: 'nat', name: 'VIPMESH-DNS-OUTPUT', group: 'dns', jumps: [{ from: 'OUTPUT', match: '-d 127.0.0.11/32' }],
  rules: ['-d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40000'],
};
const marks: Chain = {
  family: 4, table: 'mangle', name: 'VIPMESH-OUTPUT', group: 'datapath', jumps: [{ from: 'OUTPUT', match: '' }],
  rules: ['-d 10.0.1.2/32 -m comment --comment "web/appnet" -j MARK --set-xmark 0x56900001/0xffffffff'],
};

function table(chains: Record<string, string[]> = {}, jumps: { from: string; spec: string }[] = []): ObservedTable {
  return { chains: new Map(Object.entries(chains)), jumps };
}
function tables(parts: Partial<Record<'mangle' | 'nat' | 'filter', ObservedTable>>): ObservedIptables {
  return { mangle: parts.mangle ?? table(), nat: parts.nat ?? table(), filter: parts.filter ?? table() };
}
function observed(ipt: ObservedIptables, ipvs: ObservedIpvs = { available: true, services: [] }, sysctls: Record<string, string> = {}): ObservedNamespace {
  return { iptables: new Map([[4, ipt]]), ipvs, sysctls: new Map(Object.entries(sysctls)) };
}
const options = (over: Partial<DiffOptions> = {}): DiffOptions => ({
  manageDns: true, now: 1_000_000, drainStarted: new Map(), taskRunning: () => true, ...over,
});
const vs = (over: Partial<VirtualService> = {}): VirtualService => ({
  balances: { kind: 'vip', service: 'web', network: 'appnet' }, label: 'web/appnet', fwmark: 0x56900001, scheduler: 'rr', persistence: 0, drainTimeout: 60,
  realServers: [{ address: '10.0.1.11', port: 0, weight: 1, task: 'web.1' }], ...over,
});
const rs = (address: string, weight: number, active = 0, inactive = 0) => ({
  address, port: 0, weight, forward: 'Masq', activeConnections: active, inactiveConnections: inactive,
});
/** The IPVS changes as the `ipvsadm -R` lines they become. */
const lines = (ops: readonly IpvsOp[]) => ops.map(ipvsadmLine);
const svc = (over: Partial<ObservedService> = {}): ObservedService => ({
  fwmark: 0x56900001, scheduler: 'rr', persistence: 0, realServers: [rs('10.0.1.11', 1)], ...over,
});

test('from nothing: every chain declared and filled, every jump inserted', () => {
  const result = diffNamespace({ chains: [dns, marks], ipvs: [], sysctls: [] }, observed(tables({})), options());
  assert.equal(result.restore.get(4), [
    '*mangle', ':VIPMESH-OUTPUT - [0:0]', '-I OUTPUT -j VIPMESH-OUTPUT', `-A VIPMESH-OUTPUT ${marks.rules[0]}`, 'COMMIT',
    '*nat', ':VIPMESH-DNS-OUTPUT - [0:0]', '-I OUTPUT -d 127.0.0.11/32 -j VIPMESH-DNS-OUTPUT', `-A VIPMESH-DNS-OUTPUT ${dns.rules[0]}`, 'COMMIT', '',
  ].join('\n'));
  assert.ok(result.changes.every((c) => c.drift));
});

test('nothing to do when the kernel matches the plan', () => {
  const now = tables({
    mangle: table({ 'VIPMESH-OUTPUT': [...marks.rules] }, [{ from: 'OUTPUT', spec: '-j VIPMESH-OUTPUT' }]),
  });
  const result = diffNamespace({ chains: [marks], ipvs: [], sysctls: [] }, observed(now), options());
  assert.equal(result.restore.size, 0);
  assert.deepEqual(result.changes, []);
});

test('a changed chain is rewritten alone; a missing jump is added without rewriting the chain', () => {
  const now = tables({ mangle: table({ 'VIPMESH-OUTPUT': ['-d 10.0.1.9/32 -j MARK --set-xmark 0x1/0xffffffff'] }, []) });
  const text = diffNamespace({ chains: [marks], ipvs: [], sysctls: [] }, observed(now), options()).restore.get(4)!;
  assert.match(text, /^:VIPMESH-OUTPUT - \[0:0\]$/m);
  assert.match(text, /^-I OUTPUT -j VIPMESH-OUTPUT$/m);
  const onlyJump = tables({ mangle: table({ 'VIPMESH-OUTPUT': [...marks.rules] }, []) });
  const jumpText = diffNamespace({ chains: [marks], ipvs: [], sysctls: [] }, observed(onlyJump), options()).restore.get(4)!;
  assert.equal(jumpText, '*mangle\n-I OUTPUT -j VIPMESH-OUTPUT\nCOMMIT\n');
});

test('a stale chain loses its jump and goes; a duplicate jump goes; foreign state is never named', () => {
  const now = tables({
    mangle: table(
      { 'VIPMESH-OUTPUT': [...marks.rules], 'VIPMESH-OLD': ['-j RETURN'] },
      [{ from: 'OUTPUT', spec: '-j VIPMESH-OUTPUT' }, { from: 'OUTPUT', spec: '-j VIPMESH-OUTPUT' }, { from: 'PREROUTING', spec: '-j VIPMESH-OLD' }],
    ),
  });
  const result = diffNamespace({ chains: [marks], ipvs: [], sysctls: [] }, observed(now), options());
  assert.equal(result.restore.get(4), [
    '*mangle', ':VIPMESH-OLD - [0:0]', '-D OUTPUT -j VIPMESH-OUTPUT', '-D PREROUTING -j VIPMESH-OLD', '-X VIPMESH-OLD', 'COMMIT', '',
  ].join('\n'));
});

test('without an agent the DNS chains are neither added, changed nor removed', () => {
  const stale = tables({ nat: table({ 'VIPMESH-DNS-OUTPUT': ['-j RETURN'] }, [{ from: 'OUTPUT', spec: '-j VIPMESH-DNS-OUTPUT' }]) });
  const result = diffNamespace({ chains: [dns], ipvs: [], sysctls: [] }, observed(stale), options({ manageDns: false }));
  assert.equal(result.restore.size, 0);
  const gone = diffNamespace({ chains: [], ipvs: [], sysctls: [] }, observed(stale), options({ manageDns: false }));
  assert.equal(gone.restore.size, 0);
  const managed = diffNamespace({ chains: [], ipvs: [], sysctls: [] }, observed(stale), options());
  assert.match(managed.restore.get(4)!, /-X VIPMESH-DNS-OUTPUT/);
});

test('IPVS: new, edited and stale services; foreign services are left alone', () => {
  const foreign = svc({ fwmark: 100 });
  const fresh = diffNamespace({ chains: [], ipvs: [vs()], sysctls: [] }, observed(tables({}), { available: true, services: [foreign] }), options());
  assert.deepEqual(lines(fresh.ipvs), ['-A -f 1452277761 -s rr', '-a -f 1452277761 -r 10.0.1.11:0 -m -w 1']);
  const edited = diffNamespace({ chains: [], ipvs: [vs({ scheduler: 'wlc', persistence: 30 })], sysctls: [] },
    observed(tables({}), { available: true, services: [svc(), foreign] }), options());
  assert.deepEqual(lines(edited.ipvs), ['-E -f 1452277761 -s wlc -p 30']);
  const stale = diffNamespace({ chains: [], ipvs: [], sysctls: [] }, observed(tables({}), { available: true, services: [svc(), foreign] }), options());
  assert.deepEqual(lines(stale.ipvs), ['-D -f 1452277761']);
  const weight = diffNamespace({ chains: [], ipvs: [vs({ realServers: [{ address: '10.0.1.11', port: 0, weight: 4, task: 't' }] })], sysctls: [] },
    observed(tables({}), { available: true, services: [svc()] }), options());
  assert.deepEqual(lines(weight.ipvs), ['-e -f 1452277761 -r 10.0.1.11:0 -m -w 4']);
});

test('IPVS change lines read the same whether the service is new or had real servers; a non-masquerading one is edited', () => {
  const two = vs({ realServers: [{ address: '10.0.1.11', port: 0, weight: 1, task: 'web.1' }, { address: '10.0.1.12', port: 0, weight: 2, task: 'web.2' }] });
  const texts = (r: { changes: readonly { text: string }[] }) => r.changes.map((c) => c.text);
  const fresh = diffNamespace({ chains: [], ipvs: [two], sysctls: [] }, observed(tables({})), options());
  assert.deepEqual(texts(fresh), [
    '+ ipvs fwmark 1452277761 rr (web/appnet)',
    '+ ipvs fwmark 1452277761 real server 10.0.1.11:0 weight 1 (web.1)',
    '+ ipvs fwmark 1452277761 real server 10.0.1.12:0 weight 2 (web.2)',
  ]);
  const one = diffNamespace({ chains: [], ipvs: [two], sysctls: [] }, observed(tables({}), { available: true, services: [svc()] }), options());
  assert.deepEqual(texts(one), ['+ ipvs fwmark 1452277761 real server 10.0.1.12:0 weight 2 (web.2)']);
  const routed = diffNamespace({ chains: [], ipvs: [vs()], sysctls: [] },
    observed(tables({}), { available: true, services: [svc({ realServers: [{ ...rs('10.0.1.11', 1), forward: 'Route' }] })] }), options());
  assert.deepEqual(lines(routed.ipvs), ['-e -f 1452277761 -r 10.0.1.11:0 -m -w 1']);
  const same = diffNamespace({ chains: [], ipvs: [two], sysctls: [] },
    observed(tables({}), { available: true, services: [svc({ realServers: [rs('10.0.1.11', 1), rs('10.0.1.12', 2)] })] }), options());
  assert.deepEqual(texts(same), []);
});

test('a leaving real server with connections drains at weight 0, then goes when idle or timed out', () => {
  const want = vs();
  const have = (weight: number, active: number) => observed(tables({}), { available: true, services: [svc({ realServers: [rs('10.0.1.11', 1), rs('10.0.1.12', weight, active, 1)] })] });
  const key = drainKey(want.fwmark, '10.0.1.12', 0);

  const start = diffNamespace({ chains: [], ipvs: [want], sysctls: [] }, have(1, 3), options());
  assert.deepEqual(lines(start.ipvs), ['-e -f 1452277761 -r 10.0.1.12:0 -m -w 0']);
  assert.equal(start.draining.get(key), 1_000_000);
  assert.ok(start.changes.some((c) => c.drift));

  const waiting = diffNamespace({ chains: [], ipvs: [want], sysctls: [] }, have(0, 3), options({ now: 1_030_000, drainStarted: new Map([[key, 1_000_000]]) }));
  assert.deepEqual(lines(waiting.ipvs), []);
  assert.equal(waiting.draining.get(key), 1_000_000);
  assert.ok(waiting.changes.every((c) => !c.drift), 'a drain in progress is not drift');

  const timedOut = diffNamespace({ chains: [], ipvs: [want], sysctls: [] }, have(0, 3), options({ now: 1_060_000, drainStarted: new Map([[key, 1_000_000]]) }));
  assert.deepEqual(lines(timedOut.ipvs), ['-d -f 1452277761 -r 10.0.1.12:0']);

  const idle = observed(tables({}), { available: true, services: [svc({ realServers: [rs('10.0.1.11', 1), rs('10.0.1.12', 0, 0, 0)] })] });
  assert.deepEqual(lines(diffNamespace({ chains: [], ipvs: [want], sysctls: [] }, idle, options()).ipvs), ['-d -f 1452277761 -r 10.0.1.12:0']);
});

test('a real server whose task stopped, or of a UDP port service, is deleted at once', () => {
  const busy = (label: string) => observed(tables({}), { available: true, services: [svc({ realServers: [rs('10.0.1.11', 1), rs('10.0.1.12', 1, 5, 5)] })] });
  const stopped = diffNamespace({ chains: [], ipvs: [vs()], sysctls: [] }, busy(''), options({ taskRunning: (a) => a !== '10.0.1.12' }));
  assert.deepEqual(lines(stopped.ipvs), ['-d -f 1452277761 -r 10.0.1.12:0']);
  const port = (protocol: 'tcp' | 'udp', label: string) => vs({ balances: { kind: 'port', service: 'dns', protocol, port: 53 }, label });
  const udp = diffNamespace({ chains: [], ipvs: [port('udp', 'dns')], sysctls: [] }, busy(''), options());
  assert.deepEqual(lines(udp.ipvs), ['-d -f 1452277761 -r 10.0.1.12:0']);
  // What it balances decides, never the label people read.
  const tcp = diffNamespace({ chains: [], ipvs: [port('tcp', 'dns 53/udp')], sysctls: [] }, busy(''), options());
  assert.deepEqual(lines(tcp.ipvs), ['-e -f 1452277761 -r 10.0.1.12:0 -m -w 0']);
});

test('sysctls are written only where they differ', () => {
  const result = diffNamespace({ chains: [], ipvs: [], sysctls: [{ name: 'net.ipv4.ip_forward', value: '1' }, { name: 'net.ipv4.vs.conntrack', value: '1' }] },
    observed(tables({}), undefined, { 'net.ipv4.ip_forward': '1' }), options());
  assert.deepEqual(result.sysctls, [{ name: 'net.ipv4.vs.conntrack', value: '1' }]);
});
