// Guest-only scenarios (kernel lane): VIP load balancing through IPVS inside a
// client task's namespace, all state programmed by `vipmesh reconcile`.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Lab, tally } from './helpers/lab.js';
import { CLIENT_ADDRESS, VIP, vipCluster } from './helpers/vip-cluster.js';

const three = [{}, {}, {}];

test('scenario 1: rr spreads 30 connections 10/10/10 over three tasks; persistence pins one client', async (t) => {
  const lab = new Lab(t);
  const c = await vipCluster(lab, 3);
  await c.reconcile(three);
  const lines = await lab.client(c.client, 'tcp', VIP, '80', '30');
  assert.deepEqual(tally(lines), { 'web.1': 10, 'web.2': 10, 'web.3': 10 }, lines.join('\n'));
  // SNAT to the client's own address: the backend sees the client task.
  assert.ok(lines.every((l) => l.endsWith(` ${CLIENT_ADDRESS}`)), lines.join('\n'));

  await c.reconcile(three, '{ scheduler: rr, persistence: 300 }');
  assert.match(await c.ipvs(), /rr persistent 300/);
  const sticky = await lab.client(c.client, 'tcp', VIP, '80', '12');
  assert.equal(Object.keys(tally(sticky)).length, 1, `one backend for a persistent client:\n${sticky.join('\n')}`);
});

test('scenario 2: a removed task drains: no new connection, its open one lives, then its real server goes', async (t) => {
  const lab = new Lab(t);
  const c = await vipCluster(lab, 3);
  await c.reconcile(three);
  const held = await lab.hold(c.client, VIP, 80);
  const victim = held.first.split(' ')[0]!;
  const index = Number(victim.split('.')[1]) - 1;
  const victimAddress = `10.0.1.${11 + index}`;

  const out = await c.reconcile(three.map((s, i) => (i === index ? { omit: true } : s)), '{ scheduler: rr, drainTimeout: 600 }');
  assert.match(out, new RegExp(`real server ${victimAddress.replaceAll('.', '\\.')}:0 weight 1 -> 0 \\(draining`));
  assert.match(await c.ipvs(), new RegExp(`${victimAddress.replaceAll('.', '\\.')}:0\\s+Masq\\s+0\\s+1\\s`));

  const fresh = await lab.client(c.client, 'tcp', VIP, '80', '20');
  assert.equal(tally(fresh)[victim], undefined, `no new connection reaches the draining ${victim}:\n${fresh.join('\n')}`);
  assert.equal(fresh.length, 20);
  assert.ok((await held.send('still there?')).startsWith(`${victim} `), 'the open connection keeps working');

  await held.close();
  let deleted = '';
  for (let i = 0; i < 30 && !deleted; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const pass = await c.reconcile(three.map((s, j) => (j === index ? { omit: true } : s)), '{ scheduler: rr, drainTimeout: 600 }');
    if (/no connections left/.test(pass)) deleted = pass;
  }
  assert.ok(deleted, 'a reconcile deleted the drained real server once its connection closed');
  assert.doesNotMatch(await c.ipvs(), new RegExp(victimAddress.replaceAll('.', '\\.')));
});

test('scenario 3: unhealthy and stopped tasks get no traffic; a dnsrr service gets no IPVS service', async (t) => {
  const lab = new Lab(t);
  const c = await vipCluster(lab, 3);
  const more = '  peers:\n    endpointMode: dnsrr\n    networks: [appnet]\n';
  await c.reconcile([{}, { extra: 'health: unhealthy' }, { extra: 'state: shutdown' }], '', more);
  const lines = await lab.client(c.client, 'tcp', VIP, '80', '12');
  assert.deepEqual(tally(lines), { 'web.1': 12 }, lines.join('\n'));
  const ipvs = await c.ipvs();
  assert.equal(ipvs.split('\n').filter((l) => l.startsWith('FWM')).length, 1, `one virtual service (web), none for dnsrr:\n${ipvs}`);
});

test('scenario 7: UDP through a VIP; after its task stops, the same flow and new flows reach the others', async (t) => {
  const lab = new Lab(t);
  const c = await vipCluster(lab, 3);
  await c.reconcile(three);
  const first = await lab.client(c.client, 'udp', VIP, '80', '3', '40000');
  assert.equal(new Set(first.map((l) => l.split(' ')[0])).size, 1, `one UDP flow, one backend:\n${first.join('\n')}`);
  assert.ok(first.every((l) => !l.startsWith('error')), first.join('\n'));
  const victim = first[0]!.split(' ')[0]!;
  const index = Number(victim.split('.')[1]) - 1;

  const out = await c.reconcile(three.map((s, i) => (i === index ? { extra: 'state: shutdown' } : s)));
  assert.match(out, /its task stopped/);
  // expire_nodest_conn drops the flow's entry on its next packet; the retry is scheduled anew.
  const same = await lab.client(c.client, 'udp', VIP, '80', '3', '40000');
  const last = same[same.length - 1]!;
  assert.ok(!last.startsWith('error') && !last.startsWith(`${victim} `), `the kept-port flow moved off ${victim}:\n${same.join('\n')}`);
  const fresh = await lab.client(c.client, 'udp', VIP, '80', '1', '40001');
  assert.ok(!fresh[0]!.startsWith('error') && !fresh[0]!.startsWith(`${victim} `), fresh.join('\n'));
});
