import assert from 'node:assert/strict';
import test from 'node:test';
import { ipvsUnavailableReason, parseIpvsadmList } from '../../../src/kernel/parse-ipvsadm.js';

// In the layout of ipvsadm.c's print_service_entry (`  -> %-28s %-7s %-6d %-10u %-10u`,
// trailing padding included): fwmark services with and without persistence, a
// TCP and a UDP service (skipped), an IPv6 fwmark service (skipped), a mark above
// 2^31 that %d prints negative, scheduler flags and `ops` after the scheduler.
const LISTING = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.56.11:8080 wlc
  -> 10.0.1.5:80                  Masq    1      0          0         
FWM  1452277761 rr
  -> 10.0.1.3:0                   Masq    1      2          7         
  -> 10.0.1.4:0                   Masq    0      0          1         
FWM  1452277762 sh persistent 300 mask 255.255.255.0
  -> 10.0.1.6:0                   Masq    3      12345      0         
FWM  1452277763 wrr
FWM  1452277764 lc persistent 30
  -> [fd00::1]:80                 Masq    1      0          4         
FWM  5 IPv6 rr
  -> [fd00::9]:0                  Masq    1      0          0         
UDP  [fd00::53]:53 rr
  -> [fd00::54]:53                Route   1      0          0         
FWM  -2147483647 sh (sh-fallback,sh-port) persistent 60 ops
  -> 10.255.0.7:80                Masq    2      0          0         
`;

const EMPTY = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
`;

test('fwmark services come with scheduler, persistence and real servers with counters', () => {
  const services = parseIpvsadmList(LISTING);
  assert.deepEqual(services.map((s) => s.fwmark), [1452277761, 1452277762, 1452277763, 1452277764, 2147483649]);
  assert.deepEqual(services[0], {
    fwmark: 1452277761, scheduler: 'rr', persistence: 0,
    realServers: [
      { address: '10.0.1.3', port: 0, weight: 1, forward: 'Masq', activeConnections: 2, inactiveConnections: 7 },
      { address: '10.0.1.4', port: 0, weight: 0, forward: 'Masq', activeConnections: 0, inactiveConnections: 1 },
    ],
  });
});

test('persistence is read past the mask, scheduler flags and ops', () => {
  const services = parseIpvsadmList(LISTING);
  assert.equal(services[1]!.scheduler, 'sh');
  assert.equal(services[1]!.persistence, 300);
  assert.deepEqual(services[1]!.realServers.map((r) => r.activeConnections), [12345]);
  assert.equal(services[4]!.scheduler, 'sh');
  assert.equal(services[4]!.persistence, 60);
});

test('a service without real servers has an empty list', () => {
  const services = parseIpvsadmList(LISTING);
  assert.deepEqual(services[2], { fwmark: 1452277763, scheduler: 'wrr', persistence: 0, realServers: [] });
});

test('an IPv6 real server prints in brackets and parses without them', () => {
  const services = parseIpvsadmList(LISTING);
  assert.deepEqual(services[3]!.realServers, [
    { address: 'fd00::1', port: 80, weight: 1, forward: 'Masq', activeConnections: 0, inactiveConnections: 4 },
  ]);
});

test('TCP, UDP and IPv6 fwmark services and their real servers are not reported', () => {
  const all = parseIpvsadmList(LISTING).flatMap((s) => s.realServers.map((r) => r.address));
  assert.deepEqual(all, ['10.0.1.3', '10.0.1.4', '10.0.1.6', 'fd00::1', '10.255.0.7']);
});

test('a table with only the headers has no services', () => {
  assert.deepEqual(parseIpvsadmList(EMPTY), []);
  assert.deepEqual(parseIpvsadmList(''), []);
});

test('unrecognised lines are refused rather than dropped', () => {
  assert.throws(() => parseIpvsadmList(EMPTY + 'something else\n'), /line 4: unrecognised/);
  assert.throws(() => parseIpvsadmList(EMPTY + '  -> 10.0.1.3:0                   Masq    1      0          0\n'), /before any service/);
  assert.throws(() => parseIpvsadmList('FWM  7 rr persistent\n'), /persistent without a timeout/);
});

test('the kernel without IPVS is recognised from ipvsadm\'s stderr', () => {
  const stderr = "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n";
  assert.equal(ipvsUnavailableReason(stderr), 'the kernel lacks IPVS (ip_vs is not available: Protocol not available)');
  const withModprobe = 'modprobe: FATAL: Module ip_vs not found in directory /lib/modules/6.1.0\n' + stderr;
  assert.match(ipvsUnavailableReason(withModprobe) ?? '', /lacks IPVS/);
  assert.equal(ipvsUnavailableReason("Can't initialize ipvs: Permission denied (you must be root)\n"), undefined);
  assert.equal(ipvsUnavailableReason('Memory allocation problem\n'), undefined);
});
