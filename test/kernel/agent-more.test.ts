// `vipmesh agent` acceptance, continued (SPEC §5): probes that drive DNS, a task
// namespace deleted under the agent, rtnetlink as a trigger, the metrics and
// /healthz, and kill -9. Each test runs the agent as a real child process
// against real namespaces (test/helpers/cluster.ts) and removes everything in
// t.after. Every wait is bounded only to catch a hang (helpers/agent.ts HANG_MS).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { type AgentProcess, digIn, eventually, httpGet, processTree, startAgentProcess, type World, world } from '../helpers/agent.js';
import { vipmesh } from '../helpers/cli.js';
import { foreign, save } from '../helpers/cluster.js';
import { run, uniqueName } from '../helpers/netns.js';

async function started(t: TestContext, w: World, env: Record<string, string> = {}): Promise<{ agent: AgentProcess; url: string }> {
  const agent = startAgentProcess(t, w.args, { ...w.env, ...env });
  w.agents.push(agent);
  await agent.line('ready', (l) => l.event === 'ready');
  return { agent, url: await agent.url() };
}

const withHealthcheck = (check: string) => (yaml: string): string =>
  yaml.replace('ports: [{ target: 80, published: 8080 }]', `ports: [{ target: 80, published: 8080 }]\n    healthcheck: { ${check}, interval: 1s, timeout: 1s, retries: 2 }`);

/** The web task's own interface: a veth pair both of whose ends live in its namespace, with its address. */
async function webInterface(w: World): Promise<string> {
  const name = uniqueName('vmp').slice(0, 15);
  await w.c.plumbing.wire(w.c.ns.web, name, '10.0.1.11/24', w.c.ns.web, 'eth9', []);
  return name;
}

const TCP_SERVER = `require('node:net').createServer((s) => s.end()).listen(80, '0.0.0.0', () => console.log('listening'));`;
const HTTP_SERVER = `require('node:http').createServer((q, r) => { r.statusCode = q.url === '/healthz' ? 200 : 404; r.end(); }).listen(80, '0.0.0.0', () => console.log('listening'));`;

/** A node server inside a namespace; resolves once it listens; stop() kills it and waits. */
async function serverIn(t: TestContext, ns: string, program: string): Promise<{ stop: () => Promise<void> }> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let alive = true;
  const stop = async (): Promise<void> => {
    if (!alive) return;
    alive = false;
    child.kill('SIGKILL');
    await exited;
  };
  t.after(stop);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the server in ${ns} exited ${code} before listening`)));
  });
  return { stop };
}

const inDns = (w: World, want: string[]) => eventually(`tasks.web answers ${JSON.stringify(want)}`, async () =>
  assert.deepEqual(await digIn(w.c.ns.client, 'tasks.web'), want));

for (const [kind, check, program] of [
  ['tcp', 'tcp: 80', TCP_SERVER],
  ['http', 'http: { port: 80, path: /healthz }', HTTP_SERVER],
] as const) {
  test(`a ${kind} healthcheck drives DNS: in once probed, out when the server stops, back when it starts`, async (t) => {
    const w = await world(t, [], withHealthcheck(check));
    await webInterface(w);
    let server = await serverIn(t, w.c.ns.web, program);
    const { agent } = await started(t, w);
    await inDns(w, ['10.0.1.11']);
    const from = agent.lines.length;
    await server.stop();
    await inDns(w, []);
    await agent.line('the unhealthy transition', (l) => l.event === 'probe' && l['task'] === 'web.1.aaaa' && l['verdict'] === 'unhealthy', from);
    assert.deepEqual(await digIn(w.c.ns.client, 'tasks.api'), ['10.0.1.21'], 'other services keep answering');
    server = await serverIn(t, w.c.ns.web, program);
    await inDns(w, ['10.0.1.11']);
  });
}

test('an exec healthcheck runs in the task namespace: it checks a link that exists only there', async (t) => {
  // The name is fixed before the catalog is written; the link does not exist in the agent's namespace.
  const name = uniqueName('vmp').slice(0, 15);
  const w = await world(t, [], withHealthcheck(`exec: [ip, link, show, ${name}]`));
  const add = () => w.c.plumbing.wire(w.c.ns.web, name, [], w.c.ns.web, 'eth9', []);
  await add();
  const here = await execa('ip', ['link', 'show', name], { reject: false });
  assert.notEqual(here.exitCode, 0, `${name} must not exist in the agent's own namespace`);
  await started(t, w);
  await inDns(w, ['10.0.1.11']);
  await run('ip', ['-n', w.c.ns.web, 'link', 'delete', name]);
  await inDns(w, []);
  await add();
  await inDns(w, ['10.0.1.11']);
});

/** Where each /proc/net table keeps a socket's inode (0-based field; tcp's header words do not line up with its fields). */
const INODE_FIELD: Readonly<Record<string, number>> = { tcp: 9, tcp6: 9, udp: 9, udp6: 9, raw: 9, raw6: 9, netlink: 9, unix: 6, packet: 8 };

/** Socket inodes of every namespace we can name (ours, the root, and each under /run/netns), or of `only`. */
async function visibleSockets(only?: string): Promise<Set<string>> {
  const inodes = new Set<string>();
  const add = (table: string, text: string): void => {
    for (const line of text.split('\n').slice(1)) {
      const field = line.trim().split(/\s+/)[INODE_FIELD[table]!];
      if (field !== undefined && /^\d+$/.test(field)) inodes.add(field);
    }
  };
  const script = Object.keys(INODE_FIELD).map((x) => `echo "@@${x}"; cat /proc/self/net/${x} 2>/dev/null`).join('; ');
  const outputs = only === undefined ? [(await execa('sh', ['-c', script])).stdout] : [];
  for (const ns of only === undefined ? readdirSync('/run/netns') : [only]) outputs.push((await execa('ip', ['netns', 'exec', ns, 'sh', '-c', script], { reject: false })).stdout);
  for (const output of outputs) {
    for (const section of output.split('@@').slice(1)) {
      const [table, ...rest] = section.split('\n');
      add(table!, rest.join('\n'));
    }
  }
  return inodes;
}

/** Socket inodes among the open files of the agent's process tree. */
function agentSockets(root: number): string[] {
  const sockets: string[] = [];
  for (const pid of processTree(root)) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited meanwhile
    }
    for (const fd of fds) {
      try {
        const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (socket) sockets.push(socket[1]!);
      } catch {
        // closed meanwhile
      }
    }
  }
  return sockets;
}

test('a task namespace deleted while listed running: out of DNS, logged and counted, and no process of the agent holds it', async (t) => {
  const w = await world(t);
  const { agent, url } = await started(t, w);
  assert.deepEqual(await digIn(w.c.ns.client, 'tasks.api'), ['10.0.1.21']);
  const inode = statSync(w.c.path(w.c.ns.api)).ino;
  // The check below means something: the agent holds sockets (its resolver's) in that namespace now.
  const inApi = await visibleSockets(w.c.ns.api);
  assert.ok(agentSockets(agent.child.pid!).some((s) => inApi.has(s)), 'the agent holds a socket in the task namespace before it goes');
  const from = agent.lines.length;
  await run('ip', ['netns', 'delete', w.c.ns.api]);

  await eventually('tasks.api no longer answers', async () => assert.deepEqual(await digIn(w.c.ns.client, 'tasks.api'), []));
  const logged = await agent.line('the namespace-gone line', (l) => l.event === 'namespace-gone' && l['task'] === 'api.1.bbbb', from);
  assert.equal(logged['netns'], w.c.path(w.c.ns.api));
  const counted = (await httpGet(`${url}/metrics`)).body.match(/^vipmesh_tasks_namespace_gone_total (\S+)$/m)?.[1];
  assert.equal(counted, '1');

  await eventually('no process of the agent holds the deleted namespace', async () => {
    const pids = processTree(agent.child.pid!);
    assert.ok(pids.length >= 1);
    const held: string[] = [];
    const sockets: string[] = [];
    for (const pid of pids) {
      const links: string[] = [];
      try {
        links.push(readlinkSync(`/proc/${pid}/ns/net`));
        for (const fd of readdirSync(`/proc/${pid}/fd`)) {
          try {
            links.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
          } catch {
            // closed meanwhile
          }
        }
      } catch {
        continue; // exited meanwhile
      }
      for (const link of links) {
        if (link === `net:[${inode}]`) held.push(`pid ${pid}: ${link}`);
        const socket = /^socket:\[(\d+)\]$/.exec(link);
        if (socket) sockets.push(socket[1]!);
      }
    }
    assert.deepEqual(held, [], 'a namespace file descriptor or a process inside it');
    // A socket keeps its namespace alive too: each of the agent's sockets must live in a namespace still named.
    const visible = await visibleSockets();
    const elsewhere = sockets.filter((s) => !visible.has(s));
    assert.deepEqual(elsewhere, [], 'sockets in no named namespace (the deleted one)');
  });
  assert.deepEqual(await digIn(w.c.ns.client, 'tasks.web'), ['10.0.1.11'], 'the other tasks keep answering');
});

test('a catalog edit that lists a task running in a namespace that does not exist: logged and counted, not in DNS', async (t) => {
  const w = await world(t);
  const { agent, url } = await started(t, w);
  const missing = `/run/netns/${uniqueName('vmx')}`;
  const from = agent.lines.length;
  w.c.write((y) => `${y}  api.2.cccc: { service: api, node: node-1, netns: ${missing}, addresses: { appnet: 10.0.1.22 } }\n`);
  const logged = await agent.line('the namespace-gone line', (l) => l.event === 'namespace-gone' && l['task'] === 'api.2.cccc', from);
  assert.equal(logged['netns'], missing);
  assert.match((await httpGet(`${url}/metrics`)).body, /^vipmesh_tasks_namespace_gone_total 1$/m);
  assert.deepEqual(await digIn(w.c.ns.client, 'tasks.api'), ['10.0.1.21'], 'only the task whose namespace exists answers');
});

test('with --sync-period 600s, deleting a task\'s host-side veth leads to a pass (rtnetlink)', async (t) => {
  const w = await world(t, ['--sync-period', '600s']);
  // A veth into the web task: the host side in the agent's namespace, no address on it.
  const host = uniqueName('vmr').slice(0, 15);
  t.after(() => execa('ip', ['link', 'delete', host], { reject: false }));
  await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', w.c.ns.web]);
  await run('ip', ['link', 'set', host, 'up']);
  const { agent } = await started(t, w);
  const from = agent.lines.length;
  await run('ip', ['link', 'delete', host]);
  // Other tests' namespaces coming and going under /run/netns request passes too: the pass line names what asked for it.
  const pass = await agent.line('a pass the veth going asked for', (l) => l.event === 'pass' && Array.isArray(l['triggers']) && (l['triggers'] as string[]).includes('rtnetlink'), from);
  assert.equal(pass['kind'], 'full', 'an rtnetlink event asks for a full pass');
});

test('with --sync-period 600s, an address of this node going away leads to a pass (rtnetlink)', async (t) => {
  const address = `198.19.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
  const w = await world(t, ['--sync-period', '600s'], (y) => y.replace('address: 192.0.2.11', `address: ${address}`));
  // A veth with both ends here: only the address makes it the node's.
  const host = uniqueName('vmr').slice(0, 15);
  t.after(() => execa('ip', ['link', 'delete', host], { reject: false }));
  await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', `${host.slice(0, 13)}p`]);
  await run('ip', ['address', 'add', `${address}/32`, 'dev', host]);
  await run('ip', ['link', 'set', host, 'up']);
  const { agent } = await started(t, w);
  const from = agent.lines.length;
  await run('ip', ['address', 'delete', `${address}/32`, 'dev', host]);
  const pass = await agent.line('a pass the address going asked for', (l) => l.event === 'pass' && Array.isArray(l['triggers']) && (l['triggers'] as string[]).includes('rtnetlink'), from);
  assert.equal(pass['kind'], 'full', 'an rtnetlink event asks for a full pass');
});

/** Every metric SPEC §5 names, exactly. */
const SPEC_METRICS = [
  'vipmesh_sync_duration_seconds',
  'vipmesh_sync_last_success_timestamp_seconds',
  'vipmesh_sync_failures_total',
  'vipmesh_network_programming_duration_seconds',
  'vipmesh_namespaces',
  'vipmesh_iptables_rules',
  'vipmesh_ipvs_services',
  'vipmesh_ipvs_real_servers',
  'vipmesh_catalog_valid',
  'vipmesh_tasks_serving',
  'vipmesh_dns_queries_total',
  'vipmesh_dns_forward_duration_seconds',
  'vipmesh_probe_results_total',
];

const passCount = (text: string): number =>
  [...text.matchAll(/^vipmesh_sync_duration_seconds_count\{pass="(?:full|changed)"\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);

test('/metrics carries every metric SPEC §5 names, and the pass count moves between scrapes', async (t) => {
  const w = await world(t);
  const { agent, url } = await started(t, w);
  const first = (await httpGet(`${url}/metrics`)).body;
  for (const name of SPEC_METRICS) assert.match(first, new RegExp(`^# TYPE ${name} \\w+$`, 'm'), name);
  for (const series of ['pass="full"', 'pass="changed"']) assert.match(first, new RegExp(`^vipmesh_sync_duration_seconds_count\\{${series}\\} `, 'm'));
  for (const state of ['active', 'draining']) assert.match(first, new RegExp(`^vipmesh_ipvs_real_servers\\{state="${state}"\\} `, 'm'));
  for (const kind of ['task', 'host', 'sandbox']) assert.match(first, new RegExp(`^vipmesh_namespaces\\{kind="${kind}"\\} `, 'm'));
  assert.match(first, /^vipmesh_sync_last_success_timestamp_seconds [1-9]/m, 'a pass whose only failure is no_ipvs is a success');
  const before = passCount(first);
  agent.child.kill('SIGHUP');
  await eventually('the pass count moves', async () => assert.ok(passCount((await httpGet(`${url}/metrics`)).body) > before));
});

test('/healthz is 503 while passes keep failing (iptables-restore fails), and its body says no pass succeeded', async (t) => {
  const stubs = mkdtempSync(join(tmpdir(), 'vipmesh-stubs-'));
  t.after(() => rmSync(stubs, { recursive: true, force: true }));
  // Found first on PATH, before the real ones in the fallback directories (src/kernel/env.ts); the agent
  // runs the backend's own name (iptables-nft-restore), so every name it may pick is stubbed.
  for (const name of ['iptables-restore', 'iptables-nft-restore', 'iptables-legacy-restore']) {
    writeFileSync(join(stubs, name), '#!/bin/sh\necho "iptables-restore: refused by the test stub" >&2\nexit 1\n');
    chmodSync(join(stubs, name), 0o755);
  }
  const w = await world(t);
  const { agent, url } = await started(t, w, { PATH: `${stubs}:${process.env['PATH'] ?? ''}` });
  const failed = await agent.line('a failed pass', (l) => l.event === 'pass' && (l['error'] !== undefined || (Array.isArray(l['failures']) && (l['failures'] as { kind: string }[]).some((f) => f.kind !== 'no_ipvs'))));
  assert.ok(failed);
  const from = agent.lines.length;
  await agent.line('a retried pass', (l) => l.event === 'pass', from); // backoff retries: still failing
  const health = await httpGet(`${url}/healthz`);
  assert.equal(health.status, 503, health.body);
  const body = JSON.parse(health.body) as { lastSuccessfulSync: unknown; currentTime: unknown; catalog: { state: string } };
  assert.equal(body.lastSuccessfulSync, null, 'no pass has succeeded');
  assert.equal(typeof body.currentTime, 'string');
  assert.equal(body.catalog.state, 'valid');
  const metrics = (await httpGet(`${url}/metrics`)).body;
  assert.match(metrics, /^vipmesh_sync_failures_total\{reason="iptables_rejected"\} [1-9]/m);
  assert.match(metrics, /^vipmesh_sync_last_success_timestamp_seconds 0$/m);
});

test('kill -9, then restart: the next agent does not wait on the old lock, converges, and a foreign rule stays', async (t) => {
  const w = await world(t);
  const { agent } = await started(t, w);
  const foreignRule = ['-t', 'nat', '-A', 'OUTPUT', '-d', '192.0.2.99/32', '-j', 'RETURN'];
  await run('ip', ['netns', 'exec', w.c.ns.api, 'iptables', ...foreignRule]);
  agent.child.kill('SIGKILL');
  assert.deepEqual(await agent.exited, { code: null, signal: 'SIGKILL' });

  const again = startAgentProcess(t, w.args, w.env);
  w.agents.push(again);
  await again.line('ready', (l) => l.event === 'ready');
  assert.ok(foreign(await save(w.c.ns.api)).includes('-A OUTPUT -d 192.0.2.99/32 -j RETURN'), 'the foreign rule stays');
  await eventually('vipmesh diff finds nothing to do', async () => {
    const diff = await vipmesh(['diff', '-c', w.c.catalog, '--node', 'node-1'], w.env);
    assert.equal(diff.exitCode, 0, `${diff.stdout}${diff.stderr}`);
  });
  assert.ok(foreign(await save(w.c.ns.api)).includes('-A OUTPUT -d 192.0.2.99/32 -j RETURN'), 'the foreign rule still stays');
});
