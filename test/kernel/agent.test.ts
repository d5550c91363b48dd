// `vipmesh agent` as systemd runs it: a real child process against real
// namespaces (test/helpers/cluster.ts), a python3 listener on NOTIFY_SOCKET,
// dig inside a task's namespace, iptables-save in every namespace. This kernel
// has no IPVS: its failures are counted, and the rest of the node converges.
// Every wait is bounded only to catch a hang (helpers/agent.ts HANG_MS).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { type AgentProcess, HANG_MS, eventually, startAgentProcess, type World, world } from '../helpers/agent.js';
import { vipmesh } from '../helpers/cli.js';
import { type Cluster, ours, save } from '../helpers/cluster.js';
import { netns, run } from '../helpers/netns.js';
import { expectedSaveLines, splitPlanText } from '../helpers/plan-text.js';
import { requireTool } from '../helpers/tools.js';

const NOTIFY_LISTENER = `
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({'listening': True}), flush=True)
while True:
    data, ancillary, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(64))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for fd in [int.from_bytes(payload[i:i + 4], 'little') for i in range(0, len(payload) - len(payload) % 4, 4)]:
                os.close(fd)
    print(json.dumps({'message': data.decode()}), flush=True)
`;

async function notifyListener(t: TestContext): Promise<{ socket: string; messages: string[]; next: (m: (s: string) => boolean) => Promise<string> }> {
  const python = await requireTool('python3');
  await requireTool('systemd-notify');
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-agent-notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'notify');
  const child = spawn(python, ['-c', NOTIFY_LISTENER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    child.kill();
  });
  const messages: string[] = [];
  let listening = false;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const parsed = JSON.parse(line) as { listening?: true; message?: string };
    if (parsed.listening) listening = true;
    if (parsed.message !== undefined) messages.push(parsed.message);
  });
  await eventually('the notify listener to bind', async () => assert.ok(listening));
  return {
    socket, messages,
    next: (match) => eventually('a notify message', async () => {
      const found = messages.find(match);
      assert.ok(found !== undefined, `got ${JSON.stringify(messages)}`);
      return found;
    }),
  };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(HANG_MS) });
  return { status: response.status, body: await response.text() };
}

async function dig(ns: string, name: string): Promise<string[]> {
  const result = await execa('ip', ['netns', 'exec', ns, 'dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', name], { reject: false });
  assert.equal(result.exitCode, 0, `dig ${name}: ${result.stdout}${result.stderr}`);
  return result.stdout.split('\n').filter((l) => l !== '').sort();
}

/** Each namespace's vipmesh rules equal what `vipmesh plan` prints for it now. */
async function atPlan(c: Cluster, names: readonly string[]): Promise<void> {
  const plan = await vipmesh(['plan', '-c', c.catalog, '--node', 'node-1'], { VIPMESH_RUN_DIR: c.runDir });
  assert.equal(plan.exitCode, 0, plan.stderr);
  const byPath = new Map(splitPlanText(plan.stdout).map((s) => [s.key, expectedSaveLines(s.iptables)]));
  for (const name of names) {
    const want = (byPath.get(c.path(name)) ?? []).sort();
    const have = ours(await save(name)).filter((l) => l.startsWith('-A ')).sort();
    assert.deepEqual(have, want, `namespace ${name} holds its plan`);
  }
}

const metric = (text: string, name: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(`${name} `))?.slice(name.length + 1);

async function started(t: TestContext, w: World, env: Record<string, string> = {}): Promise<{ agent: AgentProcess; url: string }> {
  const agent = startAgentProcess(t, w.args, { ...w.env, ...env });
  w.agents.push(agent);
  await agent.line('ready', (l) => l.event === 'ready');
  return { agent, url: await agent.url() };
}

test('start: READY=1 after the first pass, /healthz and /livez 200, metrics, and DNS answers in a task namespace', async (t) => {
  const w = await world(t);
  const notify = await notifyListener(t);
  const { url } = await started(t, w, { NOTIFY_SOCKET: notify.socket });
  assert.match(await notify.next((m) => m.startsWith('READY=1')), /^READY=1\nSTATUS=/);
  assert.equal((await get(`${url}/healthz`)).status, 200);
  assert.equal((await get(`${url}/livez`)).status, 200);
  const metrics = (await get(`${url}/metrics`)).body;
  assert.match(metrics, /^vipmesh_sync_duration_seconds_count\{pass="full"\} [1-9]/m);
  assert.equal(metric(metrics, 'vipmesh_catalog_valid'), '1');
  assert.deepEqual(await dig(w.c.ns.client, 'api'), ['10.0.1.3']);
  assert.deepEqual(await dig(w.c.ns.client, 'tasks.web'), ['10.0.1.11']);
  await atPlan(w.c, Object.values(w.c.ns));
});

test('catalog edits converge rules and DNS without a restart: a task added and removed, a service added by mv', async (t) => {
  const w = await world(t);
  const api2 = await netns(t, 'vma');
  await w.c.plumbing.etcNetns(api2);
  await started(t, w);

  const withApi2 = (y: string) => `${y}  api.2.cccc: { service: api, node: node-1, netns: ${w.c.path(api2)}, addresses: { appnet: 10.0.1.22 } }\n`;
  w.c.write(withApi2);
  await eventually('tasks.api lists the new task', async () => assert.deepEqual(await dig(w.c.ns.client, 'tasks.api'), ['10.0.1.21', '10.0.1.22']));
  await eventually('the new task namespace holds its plan', () => atPlan(w.c, [api2, w.c.ns.client]));
  assert.ok(ours(await save(api2)).some((l) => l.includes('VIPMESH-DNS-')), 'the DNS redirect reaches the new task');

  w.c.write();
  await eventually('tasks.api drops the task', async () => assert.deepEqual(await dig(w.c.ns.client, 'tasks.api'), ['10.0.1.21']));
  await eventually('the removed task keeps no datapath state', async () =>
    assert.deepEqual(ours(await save(api2)).filter((l) => !l.includes('VIPMESH-DNS-')), []));

  const next = join(dirname(w.c.catalog), 'catalog.yaml.new');
  writeFileSync(next, readFileSync(w.c.catalog, 'utf8').replace('services:\n', 'services:\n  db:\n    vips: { appnet: 10.0.1.4 }\n'));
  renameSync(next, w.c.catalog);
  await eventually('the new service answers', async () => assert.deepEqual(await dig(w.c.ns.client, 'db'), ['10.0.1.4']));
  await eventually('every namespace holds the new plan', () => atPlan(w.c, Object.values(w.c.ns)));
});

test('with --sync-period 3s a chain deleted by hand comes back with no trigger', async (t) => {
  const w = await world(t, ['--sync-period', '3s']);
  await started(t, w);
  const ipt = (...args: string[]) => run('ip', ['netns', 'exec', w.c.ns.web, 'iptables', ...args]);
  await ipt('-t', 'mangle', '-D', 'OUTPUT', '-j', 'VIPMESH-OUTPUT');
  await ipt('-t', 'mangle', '-F', 'VIPMESH-OUTPUT');
  await ipt('-t', 'mangle', '-X', 'VIPMESH-OUTPUT');
  assert.ok(!ours(await save(w.c.ns.web)).some((l) => l.includes('VIPMESH-OUTPUT')), 'the chain is gone');
  await eventually('the chain is back', async () => assert.ok(ours(await save(w.c.ns.web)).some((l) => l.startsWith('-A OUTPUT -j VIPMESH-OUTPUT'))));
  await atPlan(w.c, [w.c.ns.web]);
});

test('an invalid catalog is logged and ignored: rules and DNS stay, vipmesh_catalog_valid 0 until fixed', async (t) => {
  const w = await world(t);
  const { agent, url } = await started(t, w);
  const before = new Map(await Promise.all(Object.values(w.c.ns).map(async (n) => [n, await save(n)] as const)));
  const from = agent.lines.length;
  w.c.write((y) => y.replace('subnet: 10.0.1.0/24', 'subnet: not-a-subnet').replace('service: api,', 'service: nosuch,'));
  const logged = await agent.line('the invalid catalog', (l) => l.event === 'catalog' && l['valid'] === false, from);
  assert.ok((logged['problems'] as string[]).length >= 2, `every problem is logged: ${JSON.stringify(logged['problems'])}`);
  assert.equal(metric((await get(`${url}/metrics`)).body, 'vipmesh_catalog_valid'), '0');
  assert.deepEqual(await dig(w.c.ns.client, 'api'), ['10.0.1.3'], 'DNS still answers from the last good catalog');
  for (const [name, lines] of before) assert.deepEqual(await save(name), lines, `${name} is untouched`);

  w.c.write((y) => y.replace('vips: { appnet: 10.0.1.3 }', 'vips: { appnet: 10.0.1.5 }'));
  await eventually('the fixed catalog is in force', async () => assert.deepEqual(await dig(w.c.ns.client, 'api'), ['10.0.1.5']));
  assert.equal(metric((await get(`${url}/metrics`)).body, 'vipmesh_catalog_valid'), '1');
  await eventually('the rules follow', () => atPlan(w.c, Object.values(w.c.ns)));
});

test('SIGTERM: exit 0, STOPPING=1, every rule left; a restart re-binds the same ports and its first pass writes nothing', async (t) => {
  const w = await world(t);
  const notify = await notifyListener(t);
  const { agent } = await started(t, w, { NOTIFY_SOCKET: notify.socket });
  const ports = JSON.parse(readFileSync(join(w.c.runDir, 'resolver.json'), 'utf8')) as { namespaces: unknown };
  const before = new Map(await Promise.all(Object.values(w.c.ns).map(async (n) => [n, await save(n)] as const)));
  agent.child.kill('SIGTERM');
  const exit = await Promise.race([agent.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the agent hung on SIGTERM')), HANG_MS))]);
  assert.deepEqual(exit, { code: 0, signal: null }, agent.stderr());
  await notify.next((m) => m.startsWith('STOPPING=1'));
  for (const [name, lines] of before) assert.deepEqual(await save(name), lines, `${name} keeps every rule`);

  const again = startAgentProcess(t, w.args, w.env);
  w.agents.push(again);
  const first = await again.line('the first pass', (l) => l.event === 'pass');
  assert.deepEqual(first['written'], { iptables: 0, ipvs: 0, sysctl: 0, conntrack: 0 }, 'nothing changed, nothing written');
  assert.deepEqual((JSON.parse(readFileSync(join(w.c.runDir, 'resolver.json'), 'utf8')) as { namespaces: unknown }).namespaces, ports.namespaces);
});

test('reconcile while the agent runs exits 2 naming its pid and how to ask it for a pass', async (t) => {
  const w = await world(t);
  const { agent } = await started(t, w);
  const result = await vipmesh(['reconcile', '-c', w.c.catalog, '--node', 'node-1'], w.env);
  assert.equal(result.exitCode, 2, result.stderr);
  assert.match(result.stderr, new RegExp(`pid ${agent.child.pid}\\b`));
  assert.match(result.stderr, new RegExp(`kill -HUP ${agent.child.pid} or systemctl reload vipmesh`));
});

test('watchdog: WATCHDOG=1 while passes run; a pass stuck past the watchdog (test hook) stops the pings and /livez', async (t) => {
  const w = await world(t, ['--sync-period', '2s']);
  const notify = await notifyListener(t);
  // VIPMESH_TEST_HANG_PASS=1 (test only): every pass after the first waits until the agent stops.
  const { agent, url } = await started(t, w, { NOTIFY_SOCKET: notify.socket, WATCHDOG_USEC: '1000000', VIPMESH_TEST_HANG_PASS: '1' });
  await notify.next((m) => m === 'WATCHDOG=1');
  await eventually('/livez says the runner is stuck', async () => assert.equal((await get(`${url}/livez`)).status, 503));
  const pings = (): number => notify.messages.filter((m) => m === 'WATCHDOG=1').length;
  const stuckAt = pings();
  // Four ping intervals: a live pinger would send about four. One already on its way may still land.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  assert.equal((await get(`${url}/livez`)).status, 503, 'still stuck');
  assert.ok(pings() - stuckAt <= 1, `no pings while stuck: ${pings() - stuckAt} more came`);
  agent.child.kill('SIGTERM');
  assert.deepEqual(await agent.exited, { code: 0, signal: null }, 'the stuck pass still ends on SIGTERM');
});
