import assert from 'node:assert/strict';
import test from 'node:test';
import { renderRestore, renderTable, renderTableChanges } from '../../../src/render/iptables.js';
import { deleteRealServerLine, deleteServiceLine, realServerLine, renderIpvs, serviceLine } from '../../../src/render/ipvs.js';
import { type Chain } from '../../../src/plan/types.js';

const chains: Chain[] = [
  { family: 4, table: 'nat', name: 'VIPMESH-POSTROUTING', group: 'datapath', jumps: [{ from: 'POSTROUTING', match: '' }], rules: ['-m mark --mark 0x56900001 -j SNAT --to-source 10.0.1.3'] },
  { family: 4, table: 'nat', name: 'VIPMESH-PORTS', group: 'datapath', jumps: [{ from: 'OUTPUT', match: '-m addrtype --dst-type LOCAL' }, { from: 'PREROUTING', match: '-m addrtype --dst-type LOCAL' }], rules: ['-p tcp -m tcp --dport 80 -j DNAT --to-destination 10.255.0.2:80'] },
  { family: 4, table: 'mangle', name: 'VIPMESH-OUTPUT', group: 'datapath', jumps: [{ from: 'OUTPUT', match: '' }], rules: ['-d 10.0.1.2/32 -j MARK --set-xmark 0x56900001/0xffffffff'] },
  { family: 6, table: 'filter', name: 'VIPMESH-FORWARD', group: 'datapath', jumps: [{ from: 'FORWARD', match: '' }], rules: ['-j ACCEPT'] },
];

test('a table declares its chains sorted, inserts jumps in built-in chain order, then appends rules', () => {
  assert.equal(renderTable('nat', chains), [
    '*nat',
    ':VIPMESH-PORTS - [0:0]',
    ':VIPMESH-POSTROUTING - [0:0]',
    '-I PREROUTING -m addrtype --dst-type LOCAL -j VIPMESH-PORTS',
    '-I OUTPUT -m addrtype --dst-type LOCAL -j VIPMESH-PORTS',
    '-I POSTROUTING -j VIPMESH-POSTROUTING',
    '-A VIPMESH-PORTS -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.255.0.2:80',
    '-A VIPMESH-POSTROUTING -m mark --mark 0x56900001 -j SNAT --to-source 10.0.1.3',
    'COMMIT',
    '',
  ].join('\n'));
});

test('a change transaction flushes, drops stale jumps, deletes chains, then adds jumps and rules', () => {
  const text = renderTableChanges('nat', {
    write: [chains[0]!],
    addJumps: [{ from: 'POSTROUTING', spec: '-j VIPMESH-POSTROUTING' }],
    deleteJumps: [{ from: 'OUTPUT', spec: '-m addrtype --dst-type LOCAL -j VIPMESH-OLD' }],
    deleteChains: ['VIPMESH-OLD'],
  });
  assert.equal(text, [
    '*nat',
    ':VIPMESH-OLD - [0:0]',
    ':VIPMESH-POSTROUTING - [0:0]',
    '-D OUTPUT -m addrtype --dst-type LOCAL -j VIPMESH-OLD',
    '-X VIPMESH-OLD',
    '-I POSTROUTING -j VIPMESH-POSTROUTING',
    '-A VIPMESH-POSTROUTING -m mark --mark 0x56900001 -j SNAT --to-source 10.0.1.3',
    'COMMIT',
    '',
  ].join('\n'));
  assert.equal(renderTableChanges('nat', { write: [], addJumps: [], deleteJumps: [], deleteChains: [] }), '');
});

test('tables of one family come in a fixed order; other families are left out', () => {
  const text = renderRestore(chains, 4);
  assert.deepEqual(text.split('\n').filter((l) => l.startsWith('*')), ['*mangle', '*nat']);
  assert.equal(renderRestore(chains, 6).split('\n')[0], '*filter');
  assert.equal(renderTable('filter', chains.filter((c) => c.family === 4)), '');
});

test('IPVS state renders in ipvsadm-save -n syntax', () => {
  assert.equal(renderIpvs([
    {
      balances: { kind: 'vip', service: 'a', network: 'n' }, fwmark: 1452277761, scheduler: 'rr', persistence: 0, drainTimeout: 60,
      label: 'a', realServers: [{ address: '10.0.1.3', port: 0, weight: 1, task: 't' }],
    },
    {
      balances: { kind: 'port', service: 'b', protocol: 'tcp', port: 80 }, fwmark: 1443241872, scheduler: 'wlc', persistence: 300, drainTimeout: 60,
      label: 'b', realServers: [],
    },
  ]), [
    '-A -f 1452277761 -s rr',
    '-a -f 1452277761 -r 10.0.1.3:0 -m -w 1',
    '-A -f 1443241872 -s wlc -p 300',
    '',
  ].join('\n'));
});

test('the IPVS change lines: add or edit a service or real server, delete either', () => {
  const service = { fwmark: 1452277761, scheduler: 'wlc', persistence: 30 };
  const server = { address: '10.0.1.3', port: 0, weight: 2 };
  assert.deepEqual(
    [
      serviceLine(service), serviceLine(service, '-E'), deleteServiceLine(service.fwmark),
      realServerLine(service.fwmark, server), realServerLine(service.fwmark, server, '-e'), deleteRealServerLine(service.fwmark, server),
    ],
    [
      '-A -f 1452277761 -s wlc -p 30', '-E -f 1452277761 -s wlc -p 30', '-D -f 1452277761',
      '-a -f 1452277761 -r 10.0.1.3:0 -m -w 2', '-e -f 1452277761 -r 10.0.1.3:0 -m -w 2', '-d -f 1452277761 -r 10.0.1.3:0',
    ],
  );
});
