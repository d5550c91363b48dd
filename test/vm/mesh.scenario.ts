// Guest-only scenarios (kernel lane): the routing mesh on two nodes, each a
// namespace playing the host with its own ingress sandbox, and a host-mode port.
//
//   outside 192.0.2.100 ── underlay ── node1 192.0.2.11 ─ veth ─ sbox1 ─┐
//                                   └─ node2 192.0.2.12 ─ veth ─ sbox2 ─┤ ingress 10.255.0.0/16
//                                                          web.1, web.2 ┘ (both on node-1)
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { Lab, inNs, reconcileAndCheck, tally } from './helpers/lab.js';

async function node(lab: Lab, n: number, underlay: string, ingress: string): Promise<{ host: string; sbox: string }> {
  const host = await lab.ns(`node${n}`);
  const sbox = await lab.ns(`sbox${n}`);
  await lab.plug(host, underlay, 'eth0', `192.0.2.1${n}/24`);
  await lab.wire(host, 'sb0', `172.18.${n}.1/24`, sbox, 'gw0', `172.18.${n}.2/24`);
  await lab.plug(sbox, ingress, 'eth1', `10.255.0.${1 + n}/16`);
  // The node reaches its sandbox's ingress address over the veth; the sandbox
  // answers clients through the node, as docker_gwbridge does.
  await lab.route(host, `10.255.0.${1 + n}/32`, 'via', `172.18.${n}.2`);
  await lab.route(sbox, 'default', 'via', `172.18.${n}.1`);
  return { host, sbox };
}

test('scenario 4: routing mesh: published 8080 on either node lands on the tasks (port 80), also from the node itself', async (t) => {
  const lab = new Lab(t);
  const underlay = await lab.segment('under');
  const ingress = await lab.segment('ingress');
  const appnet = await lab.segment('appnet');
  const outside = await lab.ns('outside');
  await lab.plug(outside, underlay, 'eth0', '192.0.2.100/24');
  const n1 = await node(lab, 1, underlay, ingress);
  const n2 = await node(lab, 2, underlay, ingress);
  const tasks: string[] = [];
  for (const i of [1, 2]) {
    const ns = await lab.ns(`web${i}`);
    await lab.plug(ns, ingress, 'ing0', `10.255.0.1${i}/16`);
    await lab.plug(ns, appnet, 'eth0', `10.0.1.1${i}/24`);
    await lab.server(ns, `web.${i}`, 80);
    tasks.push(ns);
  }
  const catalog = lab.catalog(`version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1: { address: 192.0.2.11, netns: /run/netns/${n1.host}, ingressSandbox: { netns: /run/netns/${n1.sbox}, address: 10.255.0.2 } }
  node-2: { address: 192.0.2.12, netns: /run/netns/${n2.host}, ingressSandbox: { netns: /run/netns/${n2.sbox}, address: 10.255.0.3 } }
services:
  web:
    vips: { appnet: 10.0.1.2 }
    ports: [{ target: 80, published: 8080 }]
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/${tasks[0]}, addresses: { appnet: 10.0.1.11, ingress: 10.255.0.11 } }
  web.2: { service: web, node: node-1, netns: /run/netns/${tasks[1]}, addresses: { appnet: 10.0.1.12, ingress: 10.255.0.12 } }
`);
  for (const name of ['node-1', 'node-2']) {
    await reconcileAndCheck(join(lab.dir, name), catalog, name);
  }
  for (const address of ['192.0.2.11', '192.0.2.12']) {
    const lines = await lab.client(outside, 'tcp', address, '8080', '10');
    assert.deepEqual(tally(lines), { 'web.1': 5, 'web.2': 5 }, `via ${address}:\n${lines.join('\n')}`);
    // The routing mesh hides the client: tasks see the sandbox's address.
    assert.ok(lines.every((l) => /^web\.\d 10\.255\.0\.[23]$/.test(l)), lines.join('\n'));
  }
  const self = await lab.client(n2.host, 'tcp', '192.0.2.12', '8080', '4');
  assert.deepEqual(Object.keys(tally(self)).sort(), ['web.1', 'web.2'], `node-2 reaches its own published port:\n${self.join('\n')}`);
  const loopback = await lab.client(n1.host, 'tcp', '127.0.0.1', '8080', '2');
  assert.ok(loopback.every((l) => l.startsWith('web.')), `127.0.0.1:8080 on node-1:\n${loopback.join('\n')}`);
});

test('scenario 5: a host-mode port reaches the local task with the real client address', async (t) => {
  const lab = new Lab(t);
  const underlay = await lab.segment('under');
  const appnet = await lab.segment('appnet');
  const outside = await lab.ns('outside');
  await lab.plug(outside, underlay, 'eth0', '192.0.2.100/24');
  const host = await lab.ns('node1');
  await lab.plug(host, underlay, 'eth0', '192.0.2.11/24');
  await lab.plug(host, appnet, 'app0', '10.0.1.254/24');
  const task = await lab.ns('hm1');
  await lab.plug(task, appnet, 'eth0', '10.0.1.21/24');
  await lab.route(task, 'default', 'via', '10.0.1.254');
  await lab.server(task, 'hm.1', 80);
  const catalog = lab.catalog(`version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
  node-1: { address: 192.0.2.11, netns: /run/netns/${host} }
services:
  hm:
    vips: { appnet: 10.0.1.3 }
    ports: [{ target: 80, published: 9090, mode: host }]
tasks:
  hm.1: { service: hm, node: node-1, netns: /run/netns/${task}, addresses: { appnet: 10.0.1.21 } }
`);
  await reconcileAndCheck(join(lab.dir, 'run'), catalog, 'node-1');
  const lines = await lab.client(outside, 'tcp', '192.0.2.11', '9090', '3');
  assert.deepEqual(lines, ['hm.1 192.0.2.100', 'hm.1 192.0.2.100', 'hm.1 192.0.2.100']);
  // Hairpin: the task reaches its own published port through the node's address.
  const hairpin = await lab.client(task, 'tcp', '192.0.2.11', '9090', '1');
  assert.ok(hairpin[0]?.startsWith('hm.1 '), hairpin.join('\n'));
  await inNs(host, 'iptables', ['-t', 'nat', '-C', 'VIPMESH-PORTS', '-p', 'tcp', '-m', 'tcp', '--dport', '9090',
    '-m', 'comment', '--comment', 'hm 9090/tcp', '-j', 'DNAT', '--to-destination', '10.0.1.21:80']);
});
