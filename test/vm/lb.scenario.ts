// Guest-only scenarios (kernel lane): load-balancer mode (SPEC §2). A network's
// VIPs live in its load-balancer namespace — a /32 on its interface, one IPVS
// service per VIP over the tasks of every node — and the task namespaces keep
// no IPVS and no VIP mark. All state programmed by `vipmesh reconcile`.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Lab, inNs, tally, vipmesh } from './helpers/lab.js';
import { LB_ADDRESS, LB_VIP, addressesOn, lbCluster } from './helpers/lb-cluster.js';

const escape = (text: string) => text.replaceAll('.', '\\.');

test('lb 1: a task\'s connections to the VIP spread over the tasks of both nodes, itself included', async (t) => {
  const lab = new Lab(t);
  const c = await lbCluster(lab);
  await c.reconcile();
  const [web1, web2] = c.tasks;
  // web.1 is the client: round robin over web.1 (itself), web.2 (same node) and web.3 (node-2).
  const lines = await lab.client(web1!, 'tcp', LB_VIP, '80', '30');
  assert.deepEqual(tally(lines), { 'web.1': 10, 'web.2': 10, 'web.3': 10 }, lines.join('\n'));
  // SNAT to the load balancer: every backend sees its address.
  assert.ok(lines.every((l) => l.endsWith(` ${LB_ADDRESS}`)), lines.join('\n'));

  assert.deepEqual(await addressesOn(c.lb, 'eth0'), [`${LB_VIP}/32`, `${LB_ADDRESS}/24`]);
  const ipvs = await inNs(c.lb, 'ipvsadm', ['-Ln']);
  assert.equal(ipvs.split('\n').filter((l) => l.startsWith('FWM')).length, 1, ipvs);
  for (const address of ['10.0.1.11', '10.0.1.12', '10.0.1.13']) assert.match(ipvs, new RegExp(`${escape(address)}:0\\s+Masq\\s+1\\s`));
  assert.match(await inNs(c.lb, 'iptables-save', ['-t', 'mangle']), new RegExp(`^-A VIPMESH-INPUT -d ${escape(LB_VIP)}/32 .*-j MARK`, 'm'));
  for (const task of [web1!, web2!]) {
    assert.doesNotMatch(await inNs(task, 'ipvsadm', ['-Ln']), /FWM/, `${task} holds no IPVS service`);
    assert.doesNotMatch(await inNs(task, 'iptables-save', []), /MARK|VIPMESH-OUTPUT/, `${task} holds no VIP mark`);
  }
});

test('lb 2: a task scaled away drains in the load balancer: no new connection, its open one lives, then it goes', async (t) => {
  const lab = new Lab(t);
  const c = await lbCluster(lab);
  const lb = '{ scheduler: rr, drainTimeout: 600 }';
  await c.reconcile([], lb);
  const client = c.tasks[0]!;
  const held = await lab.hold(client, LB_VIP, 80);
  const victim = held.first.split(' ')[0]!;
  const index = Number(victim.split('.')[1]) - 1;
  const victimAddress = `10.0.1.${11 + index}`;

  const out = await c.reconcile([index], lb);
  assert.match(out, new RegExp(`real server ${escape(victimAddress)}:0 weight 1 -> 0 \\(draining`));
  const fresh = await lab.client(client, 'tcp', LB_VIP, '80', '20');
  assert.equal(tally(fresh)[victim], undefined, `no new connection reaches the draining ${victim}:\n${fresh.join('\n')}`);
  assert.equal(fresh.length, 20);
  assert.ok((await held.send('still there?')).startsWith(`${victim} `), 'the open connection keeps working');

  await held.close();
  let deleted = '';
  for (let i = 0; i < 30 && !deleted; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const pass = await c.reconcile([index], lb);
    if (/no connections left/.test(pass)) deleted = pass;
  }
  assert.ok(deleted, 'a reconcile deleted the drained real server once its connection closed');
  assert.doesNotMatch(await inNs(c.lb, 'ipvsadm', ['-Ln']), new RegExp(escape(victimAddress)));
});

test('lb 3: cleanup removes the VIP address and the IPVS service, and leaves a foreign address on the interface', async (t) => {
  const lab = new Lab(t);
  const c = await lbCluster(lab);
  await c.reconcile();
  await inNs(c.lb, 'ip', ['addr', 'add', '10.0.1.99/32', 'dev', 'eth0']);
  const result = await vipmesh(c.runDir, 'cleanup', '-c', c.catalog(), '--node', 'node-1');
  assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`);
  assert.deepEqual(await addressesOn(c.lb, 'eth0'), ['10.0.1.250/24', '10.0.1.99/32']);
  assert.doesNotMatch(await inNs(c.lb, 'ipvsadm', ['-Ln']), /FWM/);
  assert.doesNotMatch(await inNs(c.lb, 'iptables-save', []), /VIPMESH/);
});
