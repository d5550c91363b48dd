// Agents on a cluster catalog in etcd (SPEC §6), acceptance: a real 3-member
// etcd on loopback, two agents as real child processes each playing one node
// (test/helpers/cluster-agents.ts). What a node serves is checked where it
// shows: dig inside a task namespace of that node, and the node's IPVS plan.
// This kernel has no IPVS, so the plan is read from the agent's own account of
// what it programmed — vipmesh_ipvs_real_servers{state="active"}, which the
// agent computes with the planner from the very catalog it handed the pass —
// and compared with what the planner gives for the tasks that should serve.
// Every wait is bounded only to catch a hang (helpers/agent.ts HANG_MS).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { objectKey } from '../../src/cluster/layout.js';
import { type AgentProcess, digIn, eventually, httpGet, startAgentProcess, world } from '../helpers/agent.js';
import { type Doc, type NodeName, PREFIX, type TwoNodes, metric, plannedRealServers, scrape, twoNodes, writesSince } from '../helpers/cluster-agents.js';
import { startEtcd } from '../helpers/etcd.js';
import { inNetns } from '../helpers/netns.js';
import { requireTool } from '../helpers/tools.js';

const ALL = ['web.a', 'web.b', 'client.a', 'client.b'];
const ACTIVE = 'vipmesh_ipvs_real_servers{state="active"}';

async function ready(agent: AgentProcess): Promise<void> {
  await agent.line('ready', (l) => l.event === 'ready');
}

async function startBoth(w: TwoNodes, extra: readonly string[] = []): Promise<Record<NodeName, AgentProcess>> {
  const a = w.start('node-a', extra);
  const b = w.start('node-b', extra);
  await Promise.all([ready(a), ready(b)]);
  return { 'node-a': a, 'node-b': b };
}

/** node's agent has programmed the plan in which only `serving` serve, and its DNS names exactly `addresses` for tasks.web. */
async function serves(w: TwoNodes, agent: AgentProcess, node: NodeName, doc: Doc, serving: readonly string[], addresses: readonly string[], probes?: ReadonlyMap<string, boolean>): Promise<void> {
  await eventually(`${node} to serve ${serving.join(', ')}`, async () => {
    assert.deepEqual(await digIn(w.ns[node].client, 'tasks.web'), [...addresses].sort());
    assert.equal(Number(metric(await scrape(agent), ACTIVE)), plannedRealServers(doc, node, serving, probes));
  });
}

/** doc with a task web.a2 on node A, in the namespace kept spare for it. */
const addSpare = (w: TwoNodes, doc: Doc): Doc => ({
  ...doc,
  tasks: { ...doc.tasks, 'web.a2': { service: 'web', node: 'node-a', netns: `/run/netns/${w.ns.spare}`, addresses: { appnet: '10.0.1.13', ingress: '10.255.0.13' } } },
});

/** iptables-save of a namespace without counters: what a pass may change, and traffic may not. */
async function rules(name: string): Promise<string[]> {
  return (await inNetns(name, 'iptables-save', [])).split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, ''));
}

async function allRules(w: TwoNodes): Promise<Record<string, string[]>> {
  const names = [...Object.values(w.ns['node-a']), ...Object.values(w.ns['node-b'])];
  return Object.fromEntries(await Promise.all(names.map(async (name) => [name, await rules(name)] as const)));
}

test('two nodes: a task added for node A reaches node B\'s DNS and IPVS plan; the same push again writes nothing; an invalid object keeps the last good catalog', async (t) => {
  const w = await twoNodes(t);
  const doc = w.base();
  await w.push(doc);
  const agents = await startBoth(w);
  const b = agents['node-b'];
  const a = agents['node-a'];
  await serves(w, b, 'node-b', doc, ALL, ['10.0.1.11', '10.0.1.12']);

  const added = addSpare(w, doc);
  assert.notEqual(plannedRealServers(added, 'node-b', [...ALL, 'web.a2']), plannedRealServers(doc, 'node-b', ALL), 'the plan must differ, or this proves nothing');
  await w.push(added);
  await serves(w, b, 'node-b', added, [...ALL, 'web.a2'], ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
  await serves(w, a, 'node-a', added, [...ALL, 'web.a2'], ['10.0.1.11', '10.0.1.12', '10.0.1.13']);

  // The same catalog again (every key put anew, each at a new revision), then a
  // change no namespace's plan sees, so both agents show they read past it.
  const from = { a: a.lines.length, b: b.lines.length };
  await w.push(added);
  const marker: Doc = { ...added, networks: { ...added.networks, unused: { subnet: '10.0.9.0/24' } } };
  await w.push(marker);
  for (const [agent, start] of [[a, from.a], [b, from.b]] as const) {
    const seen = await agent.line('the marker catalog', (l) => l.event === 'catalog', start);
    const at = agent.lines.indexOf(seen);
    await agent.line('the pass after it', (l) => l.event === 'pass', at);
    assert.equal(agent.lines.slice(start).filter((l) => l.event === 'catalog').length, 1, 'the same catalog again is no change');
    assert.equal(writesSince(agent, start), 0, 'nothing written to the kernel');
  }

  // An invalid object, put behind the CLI's back: every problem logged, the last good catalog kept.
  const bad = objectKey(PREFIX, 'services', 'bad');
  const before = { a: a.lines.length, b: b.lines.length };
  await w.etcd.etcdctl(['put', bad, JSON.stringify({ vips: { nonet: '10.0.1.99' }, ports: [{ target: 0 }] })]);
  for (const [agent, start] of [[a, before.a], [b, before.b]] as const) {
    const line = await agent.line('the invalid catalog', (l) => l.event === 'catalog' && l['valid'] === false, start);
    const problems = line['problems'] as string[];
    assert.ok(problems.length >= 2 && problems.every((p) => p.startsWith('services.bad')), `every problem, each naming the object: ${JSON.stringify(problems)}`);
    assert.equal(metric(await scrape(agent), 'vipmesh_catalog_valid'), '0');
  }
  assert.deepEqual(await digIn(w.ns['node-b'].client, 'tasks.web'), ['10.0.1.11', '10.0.1.12', '10.0.1.13'], 'the last good catalog stays in force');
  assert.deepEqual(await digIn(w.ns['node-b'].client, 'bad'), []);

  await w.etcd.etcdctl(['put', bad, JSON.stringify({ vips: { appnet: '10.0.1.4' } })]);
  for (const [node, agent] of [['node-a', a], ['node-b', b]] as const) {
    await eventually(`${node} to take the fixed catalog`, async () => {
      assert.deepEqual(await digIn(w.ns[node].client, 'bad'), ['10.0.1.4']);
      assert.equal(metric(await scrape(agent), 'vipmesh_catalog_valid'), '1');
    });
  }
});

test('etcd losing members: one of three stopped, pushes converge; all stopped, the node keeps everything and says the source is down; back, a push converges', async (t) => {
  const w = await twoNodes(t);
  const doc = w.base();
  await w.push(doc);
  const { 'node-a': a, 'node-b': b } = await startBoth(w);
  await serves(w, b, 'node-b', doc, ALL, ['10.0.1.11', '10.0.1.12']);

  await w.etcd.stop(0);
  const added = addSpare(w, doc);
  await w.push(added);
  await serves(w, b, 'node-b', added, [...ALL, 'web.a2'], ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
  await serves(w, a, 'node-a', added, [...ALL, 'web.a2'], ['10.0.1.11', '10.0.1.12', '10.0.1.13']);

  const kept = await allRules(w);
  await w.etcd.stop(1);
  await w.etcd.stop(2);
  for (const agent of [a, b]) {
    await eventually('the source to be down', async () => {
      assert.equal(metric(await scrape(agent), 'vipmesh_catalog_source_up'), '0');
      const health = await httpGet(`${await agent.url()}/healthz`);
      const body = JSON.parse(health.body) as { source: { state: string; since?: string; error?: string } };
      assert.equal(body.source.state, 'down');
      assert.ok(typeof body.source.since === 'string' && typeof body.source.error === 'string' && body.source.error !== '', health.body);
      // The last good catalog is programmed and passes still succeed: the node is healthy.
      assert.equal(health.status, 200, health.body);
    });
  }
  // A full pass while etcd is away (SIGHUP) changes nothing either.
  const from = b.lines.length;
  b.child.kill('SIGHUP');
  await b.line('a full pass while etcd is away', (l) => l.event === 'pass' && l['kind'] === 'full', from);
  for (const node of ['node-a', 'node-b'] as const) {
    assert.deepEqual(await digIn(w.ns[node].client, 'tasks.web'), ['10.0.1.11', '10.0.1.12', '10.0.1.13'], `${node}'s DNS keeps answering`);
  }
  assert.deepEqual(await allRules(w), kept, 'no rule removed or added');

  for (const i of [0, 1, 2]) await w.etcd.start(i);
  await w.push(doc);
  await serves(w, b, 'node-b', doc, ALL, ['10.0.1.11', '10.0.1.12']);
  await serves(w, a, 'node-a', doc, ALL, ['10.0.1.11', '10.0.1.12']);
  for (const agent of [a, b]) {
    await eventually('the source to be up', async () => assert.equal(metric(await scrape(agent), 'vipmesh_catalog_source_up'), '1'));
  }
});

test('compaction: an agent stopped through five pushes and a compaction past its revision lists again and converges to the last push', async (t) => {
  // etcd pings its clients every second and drops one silent for a second more: a stopped agent's watch stream ends.
  const w = await twoNodes(t, { etcdArgs: ['--grpc-keepalive-interval', '1s', '--grpc-keepalive-timeout', '1s'] });
  const doc = w.base();
  await w.push(doc);
  const { 'node-a': a, 'node-b': b } = await startBoth(w);
  await serves(w, b, 'node-b', doc, ALL, ['10.0.1.11', '10.0.1.12']);

  b.child.kill('SIGSTOP');
  t.after(() => b.child.kill('SIGCONT'));
  let last = doc;
  for (let i = 1; i <= 5; i++) {
    last = { ...last, services: { ...last.services, [`s${i}`]: { vips: { appnet: `10.0.1.${40 + i}` } } } };
    await w.push(last);
  }
  const revision = (await w.client.get(objectKey(PREFIX, 'services', 's5')).exec()).header.revision;
  await w.etcd.etcdctl(['compact', revision]);
  // B's lease runs out while it is stopped (TTL 3 s, longer than etcd waits on a silent client).
  await a.line('node-b seen gone', (l) => l.event === 'cluster' && (l['nodeDown'] as string[]).includes('web.b'));

  const from = b.lines.length;
  b.child.kill('SIGCONT');
  await b.line('the watch listing again', (l) => l.event === 'watch', from);
  await eventually('node-b to converge to the last push', async () => {
    for (let i = 1; i <= 5; i++) assert.deepEqual(await digIn(w.ns['node-b'].client, `s${i}`), [`10.0.1.${40 + i}`]);
  });
  // And node-b is live again for node-a.
  await serves(w, a, 'node-a', last, ALL, ['10.0.1.11', '10.0.1.12']);
});

test('kill -9 of node B\'s agent: node A drops B\'s tasks from DNS and real servers once its lease runs out; B back, they return', async (t) => {
  const w = await twoNodes(t);
  const doc = w.base();
  await w.push(doc);
  const { 'node-a': a, 'node-b': b } = await startBoth(w);
  await serves(w, a, 'node-a', doc, ALL, ['10.0.1.11', '10.0.1.12']);

  b.child.kill('SIGKILL');
  await b.exited;
  await serves(w, a, 'node-a', doc, ['web.a', 'client.a'], ['10.0.1.11']);

  const again = w.start('node-b');
  await ready(again);
  await serves(w, a, 'node-a', doc, ALL, ['10.0.1.11', '10.0.1.12']);
});

/** A TCP server on port 80 in a namespace (a tcp probe's target); killed when the test ends. */
async function tcpServer(t: TestContext, ns: string): Promise<ChildProcess> {
  const python = await requireTool('python3');
  const child = spawn('ip', ['netns', 'exec', ns, python, '-c', [
    'import socket', 's = socket.socket()', 's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)', "s.bind(('0.0.0.0', 80))", 's.listen(16)',
    'print("listening", flush=True)', 'while True: s.accept()[0].close()',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the TCP server in ${ns} exited ${code}`)));
  });
  return child;
}

test('a probe failing on node B takes that task out of node A\'s real servers and DNS; passing again, it returns', async (t) => {
  const w = await twoNodes(t);
  const doc = w.base();
  doc.services['web'] = { ...doc.services['web'], healthcheck: { tcp: 80, interval: '1s', timeout: '1s', retries: 1 } };
  await tcpServer(t, w.ns['node-a'].web);
  const server = await tcpServer(t, w.ns['node-b'].web);
  await w.push(doc);
  const { 'node-a': a } = await startBoth(w);
  const probes = new Map([['web.a', true]]);
  await serves(w, a, 'node-a', doc, ALL, ['10.0.1.11', '10.0.1.12'], probes);

  server.kill('SIGKILL');
  await serves(w, a, 'node-a', doc, ['web.a', 'client.a', 'client.b'], ['10.0.1.11'], probes);
  const published = JSON.parse((await w.client.get(`${PREFIX}/v1/health/web.b`).string()) ?? '{}') as { node?: string; state?: string };
  assert.deepEqual([published.node, published.state], ['node-b', 'unhealthy']);

  await tcpServer(t, w.ns['node-b'].web);
  await serves(w, a, 'node-a', doc, ALL, ['10.0.1.11', '10.0.1.12'], probes);
});

test('at start: an unreachable etcd is waited for, touching nothing; an invalid catalog exits 2', async (t) => {
  const w = await twoNodes(t);
  const doc = w.base();
  await w.push(doc);
  for (const i of [0, 1, 2]) await w.etcd.stop(i);
  const a = w.start('node-a');
  const waiting = await a.line('waiting for etcd', (l) => l.event === 'source' && l['state'] === 'down');
  assert.match(String(waiting.msg), new RegExp(`waiting for etcd://${w.etcd.endpoints[0]!.replaceAll('.', '\\.')}`));
  assert.equal(a.lines.some((l) => l.event === 'start'), false, 'nothing started while waiting');
  assert.equal(existsSync(join(w.runDir('node-a'), 'lock')), false, 'not even the lock taken');
  for (const i of [0, 1, 2]) await w.etcd.start(i);
  await ready(a);
  await serves(w, a, 'node-a', doc, ['web.a', 'client.a'], ['10.0.1.11']);

  await w.etcd.etcdctl(['put', objectKey(PREFIX, 'services', 'bad'), '{"vips":{"nonet":"10.0.1.99"}}']);
  const b = w.start('node-b');
  const exit = await b.exited;
  assert.equal(exit.code, 2, b.stderr());
  assert.match(b.stderr(), /is not a valid catalog \(1 problem\); nothing was done:\n.*services\.bad/);
  assert.equal(existsSync(join(w.runDir('node-b'), 'lock')), false, 'the lock was never taken');
});

test('a file source is always up: vipmesh_catalog_source_up 1 and /healthz says so', async (t) => {
  const w = await world(t);
  const agent = startAgentProcess(t, w.args, w.env);
  w.agents.push(agent);
  await ready(agent);
  assert.equal(metric(await scrape(agent), 'vipmesh_catalog_source_up'), '1');
  const body = JSON.parse((await httpGet(`${await agent.url()}/healthz`)).body) as { source: unknown };
  assert.deepEqual(body.source, { state: 'up' });
});

test('etcds:// with a CA that did not sign the members: the agent exits 2 naming the endpoint, touching nothing', async (t) => {
  const etcd = await startEtcd(t, { members: 1, tls: true });
  const tls = etcd.tls!;
  const runDir = mkdtempSync(join(tmpdir(), 'vipmesh-tls-run-'));
  t.after(() => rmSync(runDir, { recursive: true, force: true }));
  const agent = startAgentProcess(t, [
    '-c', etcd.source(PREFIX), '--etcd-ca', tls.otherCa, '--etcd-cert', tls.cert, '--etcd-key', tls.key, '--node', 'node-a', '--listen', '127.0.0.1:0',
  ], { VIPMESH_RUN_DIR: runDir });
  const exit = await agent.exited;
  assert.equal(exit.code, 2, agent.stderr());
  assert.match(agent.stderr(), new RegExp(`cannot read the catalog from etcds://.*etcd at ${etcd.endpoints[0]!.replaceAll('.', '\\.')}: .*certificate`, 'i'));
  assert.deepEqual(readdirSync(runDir), [], 'nothing touched');
});
