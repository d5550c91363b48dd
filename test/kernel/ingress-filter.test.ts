// The ingress filter (SPEC §2) against this machine's kernel, with real traffic:
// a task on the ingress network (its peer there plays the node's ingress
// sandbox, which is what sends the mesh's traffic to a task's ingress address)
// and on appnet (its peer there plays another task). Through the ingress address
// only the published target ports answer; the task's other ports still answer
// on its appnet address, and to the task itself. reconcile, diff and cleanup
// run through the CLI as an operator would.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { vipmesh } from '../helpers/cli.js';
import { fakeAgentPorts, foreign, ours, save } from '../helpers/cluster.js';
import { inNetns, kernelHasIpvs, netns, plumbing } from '../helpers/netns.js';

const TASK_INGRESS = '10.255.0.11';
const TASK_APP = '10.0.1.11';

// What the task listens on: 80/tcp and 5353/udp are published (through 8080 and 53),
// 8081/tcp and 5354/udp are not; 41000/udp on 127.0.0.11 is where fakeAgentPorts()
// says the resolver is, so the DNS redirect can be followed too. Each answers with
// what it is.
const SERVERS = `
const net = require('node:net');
const dgram = require('node:dgram');
const waits = [];
for (const port of [80, 8081]) {
  const s = net.createServer((c) => c.on('error', () => {}).end('tcp ' + port)).listen(port, '0.0.0.0');
  waits.push(new Promise((r) => s.once('listening', r)));
}
for (const [address, port, name] of [['0.0.0.0', 5353, 'udp 5353'], ['0.0.0.0', 5354, 'udp 5354'], ['127.0.0.11', 41000, 'dns']]) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, from) => s.send(name, from.port, from.address));
  waits.push(new Promise((r) => s.bind(port, address, r)));
}
Promise.all(waits).then(() => console.log('ready'));
`;

// One request; prints the answer, or how it failed. A dropped packet gives no
// answer at all (a refused TCP port would say ECONNREFUSED at once).
const CLIENT = `
const [host, port, proto] = process.argv.slice(1);
const done = (text) => { console.log(text); process.exit(0); };
setTimeout(() => done('no answer'), 1500);
if (proto === 'tcp') {
  let got = '';
  const s = require('node:net').connect(Number(port), host);
  s.on('data', (d) => (got += d));
  s.on('end', () => done(got));
  s.on('error', (e) => done('error ' + e.code));
} else {
  const s = require('node:dgram').createSocket('udp4');
  s.on('message', (m) => done(String(m)));
  s.send('hello', Number(port), host);
}
`;

async function ask(from: string, host: string, port: number, proto: 'tcp' | 'udp'): Promise<string> {
  return (await inNetns(from, process.execPath, ['-e', CLIENT, host, String(port), proto])).trim();
}

async function startServers(t: TestContext, name: string): Promise<void> {
  const child = execa('ip', ['netns', 'exec', name, process.execPath, '-e', SERVERS], { reject: false, buffer: false, stdout: 'pipe', stderr: 'inherit' });
  t.after(async () => {
    child.kill('SIGKILL');
    await child;
  });
  child.stdout.setEncoding('utf8');
  let said = '';
  child.stdout.on('data', (chunk: string) => (said += chunk));
  while (!said.includes('ready')) {
    const [done] = await Promise.race([once(child.stdout, 'data'), child.then(() => ['exited'])]);
    if (done === 'exited') throw new Error(`the test servers in ${name} did not start (node exited)`);
  }
}

/** Packets the DROP rules of a chain have dropped, by protocol number (`-n` prints numbers). */
async function dropped(name: string, chain: string): Promise<Record<string, number>> {
  const listed = await inNetns(name, 'iptables', ['-t', 'filter', '-L', chain, '-v', '-n', '-x']);
  const counts: Record<string, number> = {};
  for (const line of listed.split('\n')) {
    const m = /^\s*(\d+)\s+\d+\s+DROP\s+(\w+)/.exec(line);
    if (m) counts[m[2]!] = Number(m[1]);
  }
  return counts;
}

test('through a task\'s ingress address only its published target ports answer; cleanup lifts the filter', async (t) => {
  const host = await netns(t, 'vmfh');
  const sbox = await netns(t, 'vmfs');
  const task = await netns(t, 'vmft');
  const peer = await netns(t, 'vmfp');
  await plumbing(t).wire(task, 'ing0', `${TASK_INGRESS}/16`, sbox, 'ing0', '10.255.0.2/16');
  await plumbing(t).wire(task, 'app0', `${TASK_APP}/24`, peer, 'app0', '10.0.1.31/24');
  // A foreign rule in the built-in chains the filter jumps from: it must survive.
  await inNetns(task, 'iptables', ['-A', 'INPUT', '-s', '198.51.100.0/24', '-j', 'DROP']);
  await inNetns(task, 'iptables', ['-A', 'OUTPUT', '-d', '198.51.100.0/24', '-j', 'DROP']);
  // Compared as rules: vipmesh's transactions leave the (empty) mangle and nat tables behind.
  const foreignRules = async () => foreign(await save(task)).filter((l) => l.startsWith('-A '));
  const foreignBefore = await foreignRules();
  assert.equal(foreignBefore.length, 2);

  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-filter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const catalog = join(dir, 'catalog.yaml');
  const runDir = join(dir, 'run');
  const path = (name: string) => `/run/netns/${name}`;
  writeFileSync(catalog, `version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1:
    address: 192.0.2.11
    netns: ${path(host)}
    ingressSandbox: { netns: ${path(sbox)}, address: 10.255.0.2 }
services:
  web:
    vips: { appnet: 10.0.1.2 }
    ports:
      - { target: 80, published: 8080 }
      - { target: 5353, published: 53, protocol: udp }
tasks:
  web.1.aaaa: { service: web, node: node-1, netns: ${path(task)}, addresses: { appnet: ${TASK_APP}, ingress: ${TASK_INGRESS} } }
`);
  await execa('mkdir', ['-p', runDir]);
  fakeAgentPorts(runDir, [path(task)]);
  const cli = (verb: string) => vipmesh([verb, '-c', catalog, '--node', 'node-1'], { VIPMESH_RUN_DIR: runDir });
  await startServers(t, task);

  // Without the filter every port answers through the ingress address: what follows can fail.
  assert.equal(await ask(sbox, TASK_INGRESS, 8081, 'tcp'), 'tcp 8081');
  assert.equal(await ask(sbox, TASK_INGRESS, 5354, 'udp'), 'udp 5354');

  const ipvs = await kernelHasIpvs();
  const reconciled = await cli('reconcile');
  // Without IPVS the sandbox and the task's VIP are named as not programmed; the filter is not IPVS.
  assert.equal(reconciled.exitCode, ipvs ? 0 : 3, reconciled.stderr);
  assert.match(reconciled.stdout, /\+ filter VIPMESH-INGRESS-INPUT \(5 rules\)/);
  assert.match(reconciled.stdout, /\+ filter jump OUTPUT -s 10\.255\.0\.11\/32 ! -o lo -j VIPMESH-INGRESS-OUTPUT/);

  assert.equal(await ask(sbox, TASK_INGRESS, 80, 'tcp'), 'tcp 80', 'the published target port answers through the ingress address');
  assert.equal(await ask(sbox, TASK_INGRESS, 5353, 'udp'), 'udp 5353', 'so does the published udp one');
  assert.equal(await ask(sbox, TASK_INGRESS, 8081, 'tcp'), 'no answer', 'a port not published is dropped there, not refused');
  assert.equal(await ask(sbox, TASK_INGRESS, 5354, 'udp'), 'no answer');
  const drops = await dropped(task, 'VIPMESH-INGRESS-INPUT');
  assert.ok((drops['6'] ?? 0) > 0 && (drops['17'] ?? 0) > 0, `the filter's own DROP rules took them: ${JSON.stringify(drops)}`);

  assert.equal(await ask(peer, TASK_APP, 8081, 'tcp'), 'tcp 8081', 'the task\'s other address still serves every port');
  assert.equal(await ask(peer, TASK_APP, 5354, 'udp'), 'udp 5354');
  assert.equal(await ask(task, TASK_INGRESS, 8081, 'tcp'), 'tcp 8081', 'the task reaching its own ingress address is not filtered');
  assert.equal(await ask(task, '127.0.0.11', 53, 'udp'), 'dns', 'the DNS redirect still leads to the resolver\'s port');

  const diff = await cli('diff');
  assert.equal(diff.exitCode, 0, `${diff.stdout}${diff.stderr}`);
  const again = await cli('reconcile');
  assert.match(again.stdout, new RegExp(`reconcile: 3 namespaces, 0 changed, ${ipvs ? 0 : 2} failed`));

  const cleanup = await cli('cleanup');
  assert.equal(cleanup.exitCode, 0, cleanup.stderr);
  assert.deepEqual(ours(await save(task)), [], 'no VIPMESH chain or jump is left in the task');
  assert.deepEqual(await foreignRules(), foreignBefore, 'the foreign rules in INPUT and OUTPUT are intact');
  assert.equal(await ask(sbox, TASK_INGRESS, 8081, 'tcp'), 'tcp 8081', 'with the filter gone the port answers again');
});
