// Guest-only scenarios (kernel lane): load-balancer mode (SPEC §2). A network's
// VIPs live in its load-balancer namespace — a /32 on its interface, one IPVS
// service per VIP over the tasks of every node — and the task namespaces keep
// no IPVS and no VIP mark, only the DNS redirect and the ingress filter. All state
// programmed by `vipmesh reconcile`.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { Lab, inNs, reconcileAndCheck, tally, vipmesh } from './helpers/lab.js';
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

test('lb 4: through a task\'s ingress address only the published target port answers; its other ports answer on appnet', async (t) => {
  const lab = new Lab(t);
  const under = await lab.segment('under');
  const ingress = await lab.segment('ingress');
  const app = await lab.segment('appnet');
  const outside = await lab.ns('outside');
  await lab.plug(outside, under, 'eth0', '192.0.2.100/24');
  // node-1 as in the mesh scenarios: its sandbox behind a veth, on the ingress segment.
  const host = await lab.ns('node1');
  const sbox = await lab.ns('sbox1');
  await lab.plug(host, under, 'eth0', '192.0.2.11/24');
  await lab.wire(host, 'sb0', '172.18.1.1/24', sbox, 'gw0', '172.18.1.2/24');
  await lab.plug(sbox, ingress, 'eth1', '10.255.0.2/16');
  await lab.route(host, '10.255.0.2/32', 'via', '172.18.1.2');
  await lab.route(sbox, 'default', 'via', '172.18.1.1');
  const lb = await lab.ns('lb1');
  await lab.plug(lb, app, 'eth0', `${LB_ADDRESS}/24`);
  const tasks: string[] = [];
  for (const i of [1, 2]) {
    const ns = await lab.ns(`web${i}`);
    await lab.plug(ns, app, 'eth0', `10.0.1.1${i}/24`);
    await lab.plug(ns, ingress, 'ing0', `10.255.0.1${i}/16`);
    // 80 is published (through 8080); 81 is a port the task listens on, not published.
    await lab.server(ns, `web.${i}`, 80);
    await lab.server(ns, `web.${i}:81`, 81);
    tasks.push(ns);
  }
  const [web1, web2] = tasks as [string, string];
  const catalog = lab.catalog(`version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1:
    address: 192.0.2.11
    netns: /run/netns/${host}
    ingressSandbox: { netns: /run/netns/${sbox}, address: 10.255.0.2 }
    loadBalancers: { appnet: { netns: /run/netns/${lb}, address: ${LB_ADDRESS} } }
services:
  web:
    vips: { appnet: ${LB_VIP} }
    ports: [{ target: 80, published: 8080 }]
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/${web1}, addresses: { appnet: 10.0.1.11, ingress: 10.255.0.11 } }
  web.2: { service: web, node: node-1, netns: /run/netns/${web2}, addresses: { appnet: 10.0.1.12, ingress: 10.255.0.12 } }
`);
  await reconcileAndCheck(join(lab.dir, 'run'), catalog, 'node-1');

  // The routing mesh reaches the published target port on the tasks' ingress addresses.
  const mesh = await lab.client(outside, 'tcp', '192.0.2.11', '8080', '4');
  assert.deepEqual(tally(mesh), { 'web.1': 2, 'web.2': 2 }, mesh.join('\n'));
  // Straight at web.1's ingress address from the ingress network: 80/tcp answers;
  // 81/tcp and anything over udp are dropped, not refused.
  const direct = await lab.client(sbox, 'tcp', '10.255.0.11', '80', '1');
  assert.match(direct[0] ?? '', /^web\.1 10\.255\.0\.2$/, direct.join('\n'));
  assert.deepEqual(await lab.client(sbox, 'tcp', '10.255.0.11', '81', '1'), ['error timeout']);
  assert.deepEqual(await lab.client(sbox, 'udp', '10.255.0.11', '80', '1'), ['error timeout']);
  // The same ports on web.1's appnet address answer another task, and the VIP still spreads.
  assert.deepEqual(await lab.client(web2, 'tcp', '10.0.1.11', '81', '1'), ['web.1:81 10.0.1.12']);
  const udp = await lab.client(web2, 'udp', '10.0.1.11', '80', '1');
  assert.match(udp.join('\n'), /^web\.1 10\.0\.1\.12:\d+$/, 'the udp server answers with the client\'s address and port');
  const viaVip = await lab.client(web2, 'tcp', LB_VIP, '80', '4');
  assert.deepEqual(tally(viaVip), { 'web.1': 2, 'web.2': 2 }, viaVip.join('\n'));
  assert.match(await inNs(web1, 'iptables-save', ['-t', 'filter']), /^-A INPUT -d 10\.255\.0\.11\/32 ! -i lo -j VIPMESH-INGRESS-INPUT$/m);
});
