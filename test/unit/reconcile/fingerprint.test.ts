import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';
import type { Chain, RealServer, VirtualService } from '../../../src/plan/types.js';
import { fingerprint } from '../../../src/reconcile/fingerprint.js';
import type { DesiredNamespace } from '../../../src/reconcile/types.js';

// The digest as state.json has always stored it: of the whole JSON text.
const whole = (d: DesiredNamespace, manageDns: boolean, chains: readonly Chain[]) => {
  const addresses = d.addresses ?? [];
  const text = JSON.stringify(addresses.length === 0 ? [manageDns, chains, d.ipvs, d.sysctls] : [manageDns, chains, d.ipvs, d.sysctls, addresses]);
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
};

const dns: Chain = { family: 4, table: 'nat', name: 'VIPMESH-DNS-OUTPUT', group: 'dns', jumps: [{ from: 'OUTPUT', match: '' }], rules: ['-j RETURN'] };
const marks: Chain = { family: 4, table: 'mangle', name: 'VIPMESH-OUTPUT', group: 'datapath', jumps: [{ from: 'OUTPUT', match: '' }], rules: ['-j MARK --set-xmark 0x1/0xffffffff'] };
const servers: RealServer[] = [{ address: '10.0.1.11', port: 0, weight: 1, task: 'web.1 "quoted" ü' }, { address: '10.0.1.12', port: 80, weight: 2, task: 'web.2' }];
const vs = (fwmark: number, realServers: readonly RealServer[], label = 'web/appnet'): VirtualService => ({
  balances: { kind: 'vip', service: 'web', network: 'appnet' }, label, fwmark, scheduler: 'rr', persistence: 0, drainTimeout: 60, realServers,
});

test('the fingerprint is the digest of the whole plan text, with real-server lists shared or not, and addresses only when present', () => {
  const cases: DesiredNamespace[] = [
    { chains: [], ipvs: [], sysctls: [] },
    { chains: [dns, marks], ipvs: [vs(1, servers), vs(2, servers), vs(3, [], 'x"realServers":0 "realServers":0')], sysctls: [{ name: 'net.ipv4.vs.conntrack', value: '1' }] },
    { chains: [marks], ipvs: [vs(1, [...servers])], sysctls: [], addresses: [] },
    { chains: [marks], ipvs: [vs(1, servers)], sysctls: [], addresses: [{ address: '10.0.1.2', prefixLength: 32, anchor: '10.0.1.250', service: 'web', network: 'appnet' }] },
  ];
  for (const d of cases) {
    assert.equal(fingerprint(d, true), whole(d, true, d.chains));
    assert.equal(fingerprint(d, false), whole(d, false, d.chains.filter((c) => !c.name.startsWith('VIPMESH-DNS-'))));
  }
  // Twice, the second time from the spelled lists: the same digest.
  assert.equal(fingerprint(cases[1]!, true), whole(cases[1]!, true, cases[1]!.chains));
  assert.notEqual(fingerprint(cases[1]!, true), fingerprint({ ...cases[1]!, ipvs: [vs(1, servers.slice(1)), vs(2, servers), vs(3, [])] }, true));
});
