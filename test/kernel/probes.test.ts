// Health probes against real namespaces: a task namespace plumbed as a network
// driver would (a veth on a bridge, an address), real servers inside it, and the
// prober's shells entered into it. Every verdict here comes from the kernel.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import type { HealthProbe } from '../../src/catalog/types.js';
import { createRunner, type RunnerStats } from '../../src/kernel/exec.js';
import { createProber, type ProbeOutcome, type Prober } from '../../src/kernel/probe-session.js';
import { inNetns, netns, plumbing, run, uniqueName } from '../helpers/netns.js';

const ADDRESS = '10.0.1.3';
const ADDRESS6 = 'fd00:1::3';

interface Task {
  readonly name: string;
  readonly path: string;
  /** The task's end of its veth, which exists only in its namespace. */
  readonly veth: string;
}

/** A task namespace on a bridge (in a namespace of its own), with an IPv4 and an IPv6 address. */
async function taskNamespace(t: TestContext): Promise<Task> {
  const p = plumbing(t);
  const name = await netns(t, 'vpt');
  const bridgeNs = await p.segment(uniqueName('vpb'));
  const veth = uniqueName('vpe');
  await p.plug(name, bridgeNs, veth, `${ADDRESS}/24`);
  // nodad: usable at once, with no duplicate address detection to wait out (a flag the plumbing's address() has not).
  await run('ip', ['-n', name, '-6', 'addr', 'add', `${ADDRESS6}/64`, 'dev', veth, 'nodad']);
  return { name, path: `/run/netns/${name}`, veth };
}

// Servers a task might run. 8080: HTTP, status by path; 2222: speaks SSH, not
// HTTP; 3333: accepts and never answers. All on every address, v4 and v6. A
// probe closes with the reply partly unread, so the server sees a reset (as
// from HAProxy's checks): a real server shrugs that off, so must these.
const SERVERS = `
const http = require('node:http');
const net = require('node:net');
const status = { '/': 200, '/moved': 301, '/broken': 500 };
const hosts = ['10.0.1.3:8080', '[fd00:1::3]:8080'];
const servers = [
  http.createServer((req, res) => { res.statusCode = req.url === '/host' ? (hosts.includes(req.headers.host) ? 204 : 421) : status[req.url] ?? 404; res.setHeader('Location', '/'); res.end(req.headers.host ?? ''); }).listen(8080, '::'),
  net.createServer((s) => s.on('error', () => {}).end('SSH-2.0-OpenSSH_9.2\\r\\n')).listen(2222, '::'),
  net.createServer((s) => s.on('error', () => {})).listen(3333, '::'),
];
Promise.all(servers.map((s) => new Promise((r) => s.listening ? r() : s.once('listening', r)))).then(() => console.log('ready'));
`;

interface Server {
  stop(): Promise<void>;
}

/** Starts the servers inside the namespace; they are stopped when the test ends, if not before. */
async function startServers(t: TestContext, name: string): Promise<Server> {
  const child = execa('ip', ['netns', 'exec', name, process.execPath, '-e', SERVERS], { reject: false, buffer: false, stdout: 'pipe', stderr: 'inherit' });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGKILL');
    await child;
  };
  t.after(stop);
  child.stdout.setEncoding('utf8');
  let said = '';
  child.stdout.on('data', (chunk: string) => (said += chunk));
  while (!said.includes('ready')) {
    const [done] = await Promise.race([once(child.stdout, 'data'), child.then(() => ['exited'])]);
    if (done === 'exited') throw new Error(`the test servers in ${name} did not start (node exited)`);
  }
  return { stop };
}

function prober(t: TestContext): { prober: Prober; stats: RunnerStats } {
  const stats: RunnerStats = { spawns: 0, commands: 0, bytesWritten: 0 };
  const p = createProber({ runner: createRunner(), stats });
  t.after(() => p.close());
  return { prober: p, stats };
}

/** Our probe shells: their command line names the namespace path. */
async function shellsOf(path: string): Promise<number[]> {
  const found = await execa('pgrep', ['-f', `vipmesh-probe ${path}$`], { reject: false });
  return found.stdout.split('\n').filter(Boolean).map(Number);
}

const probeOf = (p: Prober, netnsPath: string, probe: HealthProbe, timeoutMs = 2000, address = ADDRESS): Promise<ProbeOutcome> =>
  p.probe({ netns: netnsPath, address, probe, timeoutMs });

const tcp = (port: number): HealthProbe => ({ kind: 'tcp', port });
const get = (port: number, path: string): HealthProbe => ({ kind: 'http', port, path });

function assertFail(outcome: ProbeOutcome, pattern: RegExp, what: string): void {
  assert.equal(outcome.result, 'fail', `${what}: ${JSON.stringify(outcome)}`);
  if (outcome.result === 'fail') assert.match(outcome.reason, pattern, what);
}

test('a tcp probe passes while the task listens, fails once it stops, passes when it is back', async (t) => {
  const task = await taskNamespace(t);
  const { prober: p, stats } = prober(t);
  const server = await startServers(t, task.name);
  assert.deepEqual(await probeOf(p, task.path, tcp(8080)), { result: 'pass' });
  assert.deepEqual(await probeOf(p, task.path, tcp(8080), 2000, ADDRESS6), { result: 'pass' }, 'IPv6 addresses too');
  assertFail(await probeOf(p, task.path, tcp(8081)), /cannot connect to 10\.0\.1\.3:8081: Connection refused/, 'a port nobody listens on');

  await server.stop();
  assertFail(await probeOf(p, task.path, tcp(8080)), /Connection refused/, 'the server stopped');
  await startServers(t, task.name);
  assert.deepEqual(await probeOf(p, task.path, tcp(8080)), { result: 'pass' }, 'the server is back');
  assert.equal(stats.spawns, 1, 'every tcp probe went through the one shell of the namespace');
});

test('an http probe passes on 2xx and 3xx and fails on 500, on a reply that is not HTTP, and on no server', async (t) => {
  const task = await taskNamespace(t);
  const { prober: p, stats } = prober(t);
  await startServers(t, task.name);
  assert.deepEqual(await probeOf(p, task.path, get(8080, '/')), { result: 'pass' });
  assert.deepEqual(await probeOf(p, task.path, get(8080, '/moved')), { result: 'pass' }, '301 passes');
  assert.deepEqual(await probeOf(p, task.path, get(8080, '/host')), { result: 'pass' }, 'the Host header names the address and port');
  assert.deepEqual(await probeOf(p, task.path, get(8080, '/host'), 2000, ADDRESS6), { result: 'pass' }, 'IPv6, with a bracketed Host');
  assertFail(await probeOf(p, task.path, get(8080, '/broken')), /GET http:\/\/10\.0\.1\.3:8080\/broken answered 500/, '500');
  assertFail(await probeOf(p, task.path, get(8080, "/it's a path\n")), /answered 404/, 'an odd path is sent encoded, and answered');
  assertFail(await probeOf(p, task.path, get(2222, '/')), /did not answer HTTP: "SSH-2\.0-Open"/, 'an SSH banner');
  assertFail(await probeOf(p, task.path, get(9, '/')), /cannot connect/, 'no server');
  assert.deepEqual(await probeOf(p, task.path, get(8080, '/')), { result: 'pass' }, 'the shell carries on after every failure');
  assert.equal(stats.spawns, 1);
});

test('an exec probe runs in the task\'s namespace: exit 0 passes, anything else fails', async (t) => {
  const task = await taskNamespace(t);
  const elsewhere = await netns(t, 'vpo');
  const { prober: p } = prober(t);
  const showVeth: HealthProbe = { kind: 'exec', argv: ['ip', '-o', 'link', 'show', task.veth] };
  assert.deepEqual(await probeOf(p, task.path, showVeth), { result: 'pass' }, 'the task\'s veth is there');
  assertFail(await probeOf(p, `/run/netns/${elsewhere}`, showVeth), /exited 1/, 'and only there');
  const nap = `29.${randomBytes(3).readUIntBE(0, 3)}`; // a unique command line to look for afterwards
  assertFail(await probeOf(p, task.path, { kind: 'exec', argv: ['sleep', nap] }, 300), /timed out after 300 ms/, 'a timeout fails');
  const left = await execa('pgrep', ['-f', `sleep ${nap}`], { reject: false });
  assert.equal(left.stdout, '', 'and the timed-out program is gone');
  assertFail(await probeOf(p, task.path, { kind: 'exec', argv: ['vipmesh-no-such-program'] }), /vipmesh-no-such-program/, 'a missing program fails');
});

test('a timeout counts as a failure and the namespace\'s shell recovers', async (t) => {
  const task = await taskNamespace(t);
  const { prober: p, stats } = prober(t);
  await startServers(t, task.name);
  // A connect into a DROP rule hangs in SYN retries for minutes: only the agent's timeout ends it.
  await inNetns(task.name, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '8081', '-j', 'DROP']);
  const started = performance.now();
  assertFail(await probeOf(p, task.path, tcp(8081), 300), /no answer from 10\.0\.1\.3:8081 within 300 ms/, 'a blackholed tcp probe');
  // Only catches a hang (the kernel would wait ~2 min), not a timing.
  assert.ok(performance.now() - started < 30_000, 'the probe ended long before the kernel gave up');
  assert.deepEqual(await probeOf(p, task.path, tcp(8080)), { result: 'pass' }, 'the next probe passes');
  assert.equal(stats.spawns, 2, 'the stuck shell was replaced');
  assert.equal((await shellsOf(task.path)).length, 1, 'one shell for the namespace, not a stuck one beside it');

  assertFail(await probeOf(p, task.path, get(3333, '/'), 300), /within 300 ms/, 'a server that accepts and never answers');
  assert.deepEqual(await probeOf(p, task.path, get(8080, '/')), { result: 'pass' }, 'and the next http probe passes');
});

test('a namespace that vanished gives namespace-gone, not a failure, and frees its shell', async (t) => {
  const task = await taskNamespace(t);
  const doomed = await netns(t, 'vpg');
  const path = `/run/netns/${doomed}`;
  const { prober: p } = prober(t);
  assertFail(await probeOf(p, path, tcp(80), 2000, '127.0.0.1'), /Connection refused/, 'the namespace is there, nobody listens');
  assert.equal((await shellsOf(path)).length, 1, 'its shell runs');

  await run('ip', ['netns', 'delete', doomed]);
  assert.deepEqual(await probeOf(p, path, tcp(80), 2000, '127.0.0.1'), { result: 'namespace-gone' });
  assert.deepEqual(await shellsOf(path), [], 'the shell that kept the namespace alive is gone');
  assert.deepEqual(await probeOf(p, path, get(80, '/'), 2000, '127.0.0.1'), { result: 'namespace-gone' });
  assert.deepEqual(await probeOf(p, path, { kind: 'exec', argv: ['true'] }), { result: 'namespace-gone' });
  assert.deepEqual(await probeOf(p, '/run/netns/vipmesh-no-such-namespace', tcp(80)), { result: 'namespace-gone' }, 'never there');
  assert.deepEqual(await probeOf(p, task.path, { kind: 'exec', argv: ['true'] }), { result: 'pass' }, 'other namespaces are unaffected');
});

test('a task restarted under the same namespace name is probed in its new namespace', async (t) => {
  const name = await netns(t, 'vpr');
  const path = `/run/netns/${name}`;
  const { prober: p } = prober(t);
  assertFail(await probeOf(p, path, tcp(8080), 2000, '127.0.0.1'), /Connection refused/, 'the first namespace has no server');
  await run('ip', ['netns', 'delete', name]);
  await plumbing(t).ns(name);
  await startServers(t, name);
  assert.deepEqual(await probeOf(p, path, tcp(8080), 2000, '127.0.0.1'), { result: 'pass' }, 'the new one has');
});

test('retain() and close() leave no shell running', async (t) => {
  const [a, b] = await Promise.all([taskNamespace(t), taskNamespace(t)]);
  const { prober: p } = prober(t);
  await Promise.all([a, b].map((task) => probeOf(p, task.path, tcp(9))));
  assert.equal((await shellsOf(a.path)).length, 1);
  assert.equal((await shellsOf(b.path)).length, 1);
  await p.retain(new Set([b.path]));
  assert.deepEqual(await shellsOf(a.path), [], 'a left: its shell ended');
  assert.equal((await shellsOf(b.path)).length, 1, 'b stays');

  // A close while a probe hangs in connect ends that shell too.
  await inNetns(b.name, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '--dport', '8081', '-j', 'DROP']);
  const hanging = probeOf(p, b.path, tcp(8081), 60_000);
  await p.close();
  assert.equal((await hanging).result, 'fail');
  assert.deepEqual(await shellsOf(b.path), [], 'nothing of ours remains');
  assertFail(await probeOf(p, b.path, tcp(9)), /closed/, 'a closed prober probes no more');
});
