// `vipmesh agent` as operators run it, a real child process on throwaway
// namespaces, measured four ways (issue 11):
//  1. network programming latency: single catalog changes (a local task removed
//     and added back, a remote task added and removed), from the rename of the
//     catalog file to the pass that programmed it and DNS answering;
//  2. DNS while the agent works: dnsperf at a fixed rate against one task
//     namespace's 127.0.0.11 while full passes of a 10 000-service catalog run
//     back to back, against the same with the agent idle;
//  3. the idle agent's cost with a tcp probe on every task;
//  4. the DNS outage of a restart (SIGTERM, then a new agent).
// IPVS: this kernel has none, so by default the agent runs with IPVS kept in
// memory (ipvs-in-memory.ts), as bench/reconcile.ts does; `--ipvs none` runs it
// against the bare kernel (every pass then fails `no_ipvs` in the namespaces
// that need IPVS, and changed-only passes re-read all of them).
//   sudo node dist/bench/agent.js [--quick] [--parts latency,dns,idle,restart] [--ipvs memory|none]
import type dgram from 'node:dgram';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import dnsPacket from 'dns-packet';
import { execa } from 'execa';
import { spawnWithIpc } from '../src/kernel/exec.js';
import { bindInNamespace } from '../src/kernel/netns-sockets.js';
import { type AgentProcess, type Cleanup, type LogLine, processTree, startAgentProcess } from '../test/helpers/agent.js';
import { CLI } from '../test/helpers/paths.js';
import { counts, dnsperf, latency, requireTools, type Latency } from './dnsperf.js';
import { createLab, machine, median, requireRoot, type Lab } from './lab.js';
import { NODE, syntheticCatalog, type SyntheticCatalog } from './synthetic.js';

const SELF = fileURLToPath(import.meta.url);
const IPVS_HOOK = pathToFileURL(fileURLToPath(new URL('./ipvs-in-memory.js', import.meta.url))).href;
const LISTEN_HELPER = fileURLToPath(new URL('./listen-helper.js', import.meta.url));

export const PARTS = ['latency', 'dns', 'idle', 'restart'] as const;
export type Part = (typeof PARTS)[number];
export type IpvsMode = 'memory' | 'none';

export interface AgentBenchOptions {
  readonly quick?: boolean;
  readonly parts?: readonly Part[];
  readonly ipvs?: IpvsMode;
}

interface Shape {
  readonly services: number;
  readonly tasksPerService: number;
  readonly networks: number;
}

interface Scale {
  readonly namespaces: number;
  readonly shape: Shape;
  readonly changes: number;
  readonly dnsShape: Shape;
  readonly dnsSeconds: number;
  readonly qps: number;
  readonly idleSeconds: number;
  readonly restartSizes: readonly number[];
  readonly restarts: number;
}

const FULL: Scale = {
  namespaces: 200, shape: { services: 1000, tasksPerService: 10, networks: 10 }, changes: 50,
  dnsShape: { services: 10_000, tasksPerService: 3, networks: 100 }, dnsSeconds: 10, qps: 20_000,
  idleSeconds: 60, restartSizes: [20, 200], restarts: 3,
};
const QUICK: Scale = {
  namespaces: 20, shape: { services: 100, tasksPerService: 10, networks: 10 }, changes: 8,
  dnsShape: { services: 1000, tasksPerService: 3, networks: 10 }, dnsSeconds: 4, qps: 20_000,
  idleSeconds: 10, restartSizes: [20], restarts: 1,
};

const PROBE_PORT = 8080;
/** Long enough for a first pass from empty at the largest scale; only catches a hang. */
const START_MS = 300_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);

/** Things to undo, last first, also when a part fails. */
export class Undo implements Cleanup {
  private readonly steps: (() => unknown)[] = [];
  after(fn: () => unknown): void {
    this.steps.push(fn);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        process.stderr.write(`agent bench: cleaning up: ${(error as Error).message}\n`);
      }
    }
  }
}

/** A node in throwaway namespaces: host, ingress sandbox and K task namespaces, and its catalog file. */
interface BenchNode {
  readonly lab: Lab;
  readonly catalogPath: string;
  readonly runDir: string;
  /** /run/netns paths of the task namespaces, local task k in tasks[k]. */
  readonly tasks: readonly string[];
  raw: SyntheticCatalog;
  /** Writes the catalog next to the file and renames it over; Date.now() at the rename. */
  write(raw: SyntheticCatalog): number;
}

type Healthcheck = { tcp: number; interval: string; timeout: string; retries: number };

async function inEach(paths: readonly string[], args: (name: string, k: number) => string[][]): Promise<void> {
  for (let i = 0; i < paths.length; i += 16) {
    await Promise.all(paths.slice(i, i + 16).map(async (path, j) => {
      const name = path.slice('/run/netns/'.length);
      for (const argv of args(name, i + j)) await execa('ip', ['-n', name, ...argv]);
    }));
  }
}

async function createNode(undo: Undo, k: number, shape: Shape, healthcheck?: Healthcheck): Promise<BenchNode> {
  const lab = createLab('vba');
  undo.after(() => lab.close());
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-agentbench-'));
  undo.after(() => rmSync(dir, { recursive: true, force: true }));
  const [host, sbox, ...tasks] = await lab.add(['host', 'sbox', ...Array.from({ length: k }, (_, i) => `t${i}`)]);
  const raw = syntheticCatalog({ ...shape, localTasks: k, hostNetns: host!, sandboxNetns: sbox!, localNetns: (i) => tasks[i]! });
  if (healthcheck !== undefined) for (const service of Object.values(raw.services)) Object.assign(service, { healthcheck });
  // lo up everywhere (127.0.0.11 is unreachable otherwise); probed tasks also get their address, on lo.
  const local = Object.values(raw.tasks).filter((t) => t.node === NODE);
  const addressOf = new Map(local.map((t) => [t.netns, Object.values(t.addresses)[0]!]));
  await inEach([host!, sbox!, ...tasks], (name) => [
    ['link', 'set', 'lo', 'up'],
    ...(healthcheck !== undefined && addressOf.has(`/run/netns/${name}`) ? [['addr', 'add', `${addressOf.get(`/run/netns/${name}`)}/32`, 'dev', 'lo']] : []),
  ]);
  const catalogPath = join(dir, 'catalog.json');
  const node: BenchNode = {
    lab, catalogPath, runDir: join(dir, 'run'), tasks, raw,
    write(next) {
      node.raw = next;
      writeFileSync(`${catalogPath}.new`, JSON.stringify(next));
      const at = Date.now();
      renameSync(`${catalogPath}.new`, catalogPath);
      return at;
    },
  };
  node.write(raw);
  return node;
}

function startAgent(undo: Undo, node: BenchNode, ipvs: IpvsMode): AgentProcess {
  const env: Record<string, string> = { VIPMESH_RUN_DIR: node.runDir, NODE_OPTIONS: ipvs === 'memory' ? `--import=${IPVS_HOOK}` : '' };
  const agent = startAgentProcess(undo, [
    '-c', node.catalogPath, '--node', NODE, '--listen', '127.0.0.1:0', '--sync-period', '30s', '--min-sync-period', '1s', '--upstream', '127.0.0.1:9',
  ], env);
  return agent;
}

const isPass = (l: LogLine) => l.event === 'pass';
/** When the agent wrote the line (pino's ISO time), as Date.now() counts. */
const timeOf = (l: LogLine) => Date.parse(String(l['time']));
const ready = (agent: AgentProcess) => agent.line('the agent ready', (l) => l.event === 'ready', 0, START_MS);
const netnsName = (path: string) => path.slice('/run/netns/'.length);

async function stopAgent(agent: AgentProcess): Promise<void> {
  if (agent.child.exitCode !== null || agent.child.signalCode !== null) return;
  agent.child.kill('SIGTERM');
  await agent.exited;
}

async function probeCounts(agent: AgentProcess): Promise<{ pass: number; fail: number }> {
  const text = await (await fetch(`${await agent.url()}/metrics`)).text();
  const count = (result: string) => Number(new RegExp(`^vipmesh_probe_results_total\\{result="${result}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { pass: count('pass'), fail: count('fail') };
}

async function metric(agent: AgentProcess, name: string): Promise<number> {
  const text = await (await fetch(`${await agent.url()}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
}

function failuresOf(line: LogLine): { kind: string }[] {
  return (line['failures'] as { kind: string }[] | undefined) ?? [];
}

// ---------------------------------------------------------------- 1. programming latency

type ChangeKind = 'local task removed' | 'local task added' | 'remote task added' | 'remote task removed';
const KINDS: readonly ChangeKind[] = ['local task removed', 'local task added', 'remote task added', 'remote task removed'];

interface Change {
  readonly kind: ChangeKind;
  readonly apply: (raw: SyntheticCatalog) => SyntheticCatalog;
  /** Where to ask, what, and the address that must be there (or not) once done. */
  readonly querier: string;
  readonly name: string;
  readonly address: string;
  readonly present: boolean;
}

interface Programmed {
  readonly kind: ChangeKind;
  readonly ms: number;
  readonly rulesMs: number;
  readonly dnsMs: number;
  readonly passMs: number;
  readonly written: number;
  readonly failures: number;
}

function networkOf(task: SyntheticCatalog['tasks'][string]): string {
  return Object.keys(task.addresses).find((n) => n !== 'ingress')!;
}

/** Change i of a run on `raw`: kinds in turn, each pair (removed then added, added then removed) on its own task. */
function changeAt(raw: SyntheticCatalog, i: number): Change {
  const kind = KINDS[i % KINDS.length]!;
  const p = Math.floor(i / KINDS.length);
  const local = Object.entries(raw.tasks).filter(([, t]) => t.node === NODE);
  const querierOn = (network: string, not: string) => local.find(([name, t]) => name !== not && networkOf(t) === network)![1].netns;
  if (kind.startsWith('local')) {
    const [name, task] = local[(p * 37 + 5) % local.length]!;
    const network = networkOf(task);
    const common = { kind, querier: querierOn(network, name), name: `tasks.${task.service}`, address: task.addresses[network]! };
    return kind === 'local task removed'
      ? { ...common, present: false, apply: (r) => ({ ...r, tasks: Object.fromEntries(Object.entries(r.tasks).filter(([n]) => n !== name)) }) }
      : { ...common, present: true, apply: (r) => ({ ...r, tasks: { ...r.tasks, [name]: task } }) };
  }
  const services = Object.keys(raw.services);
  const service = services[(p * 53 + 11) % services.length]!;
  const network = Object.keys(raw.services[service]!.vips)[0]!;
  const second = Number(network.slice('net-'.length)) + 1;
  const name = `${service}.99.bench${p}`;
  const address = `10.${second}.200.${(p % 250) + 1}`;
  // A task of a service that publishes a port has an ingress address too (the catalog requires it).
  const published = (raw.services[service]!.ports ?? []).length > 0;
  const addresses = { [network]: address, ...(published ? { ingress: `10.255.200.${(p % 250) + 1}` } : {}) };
  const task = { service, node: 'node-3', netns: `/run/netns/remote-bench-${p}`, addresses };
  const common = { kind, querier: querierOn(network, ''), name: `tasks.${service}`, address };
  return kind === 'remote task added'
    ? { ...common, present: true, apply: (r) => ({ ...r, tasks: { ...r.tasks, [name]: task } }) }
    : { ...common, present: false, apply: (r) => ({ ...r, tasks: Object.fromEntries(Object.entries(r.tasks).filter(([n]) => n !== name)) }) };
}

interface LatencyResult {
  readonly results: readonly Programmed[];
  readonly firstPassMs: number;
  /** vipmesh_network_programming_duration_seconds over the run: the agent's own view (from the change seen). */
  readonly agentMeanMs: number;
  readonly ipvsFailures: number;
}

async function measureLatency(s: Scale, ipvs: IpvsMode): Promise<LatencyResult> {
  const undo = new Undo();
  try {
    const node = await createNode(undo, s.namespaces, s.shape);
    const agent = startAgent(undo, node, ipvs);
    await ready(agent);
    const firstPass = agent.lines.find(isPass)!;
    await sleep(1500);
    const sum0 = await metric(agent, 'vipmesh_network_programming_duration_seconds_sum');
    const count0 = await metric(agent, 'vipmesh_network_programming_duration_seconds_count');
    const results: Programmed[] = [];
    const base = node.raw;
    for (let i = 0; i < s.changes; i++) {
      // Every pair of changes leaves the catalog as it was: each is planned on the first one.
      const change = changeAt(base, i);
      const dig = await poll(undo, change.querier, change.name);
      await dig.until(0, (answers) => answers.includes(change.address) !== change.present);
      const from = agent.lines.length;
      const at = node.write(change.apply(node.raw));
      const dns = dig.until(at, (answers) => answers.includes(change.address) === change.present, 120_000);
      dns.catch(() => {}); // awaited below; a failure must not end the process before the cleanup
      const pass = await agent.line(`the pass of change ${i}`, (l) => isPass(l) && (l['triggers'] as string[]).includes('catalog'), from, 120_000);
      const dnsAt = await dns;
      dig.stop();
      const rulesAt = timeOf(pass);
      results.push({
        kind: change.kind, ms: Math.max(rulesAt, dnsAt) - at, rulesMs: rulesAt - at, dnsMs: dnsAt - at,
        passMs: Number(pass['durationMs']), written: (pass['changed'] as string[]).length, failures: failuresOf(pass).length,
      });
      process.stderr.write(`agent bench: ${change.kind}: ${ms(results.at(-1)!.ms)}\n`);
      if (process.env['VIPMESH_BENCH_DEBUG'] === '1') process.stderr.write(agent.lines.slice(from).map((l) => JSON.stringify(l)).join('\n') + '\n');
      // The runner allows a burst of 2 passes, then one per --min-sync-period: a change a second stays single.
      await sleep(1100);
    }
    const sum = (await metric(agent, 'vipmesh_network_programming_duration_seconds_sum')) - sum0;
    const count = (await metric(agent, 'vipmesh_network_programming_duration_seconds_count')) - count0;
    await stopAgent(agent);
    return {
      results, firstPassMs: Number(firstPass['durationMs']), agentMeanMs: (sum / count) * 1000,
      ipvsFailures: failuresOf(firstPass).filter((f) => f.kind === 'no_ipvs').length,
    };
  } finally {
    await undo.run();
  }
}

export function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function latencyTable(s: Scale, r: LatencyResult, ipvs: IpvsMode): string[] {
  const rows = [...KINDS.map((kind) => [kind, r.results.filter((x) => x.kind === kind)] as const), ['**all**', r.results] as const];
  const out = [
    `${r.results.length} single changes, one a second, to a ${s.shape.services.toLocaleString('en')}-service catalog (${s.shape.services * s.shape.tasksPerService} tasks over ${s.shape.networks} networks, `
      + `every 10th service publishing a port) on a node with ${s.namespaces} task namespaces; the agent with \`--sync-period 30s --min-sync-period 1s\`. `
      + 'Each change is a new JSON catalog renamed over the old one; the time runs from the rename to the later of: the log line of the pass that programmed it '
      + '(its `time`), and another task namespace on the same network getting `tasks.<service>` answered with the task\'s address added or gone '
      + '(a query every 5 ms from a UDP socket inside it, through its 127.0.0.11:53 redirect, held by the benchmark: no fork per query). '
      + `${ipvs === 'memory' ? 'IPVS kept in memory (this kernel has none): iptables, the DNS redirect and the resolver are real; IPVS costs here what the fake costs, not `ipvsadm`' : 'IPVS: none on this kernel, every namespace that needs it fails `no_ipvs` and is re-read by every pass'}.`,
    '',
    '| change | n | p50 | p99 | max | rules programmed (p50) | DNS answering (p50) | pass itself (p50) | namespaces written (p50) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [kind, list] of rows) {
    if (list.length === 0) continue;
    const p = (f: (x: Programmed) => number, q: number) => percentile(list.map(f), q);
    out.push(`| ${kind} | ${list.length} | ${ms(p((x) => x.ms, 0.5))} | ${ms(p((x) => x.ms, 0.99))} | ${ms(Math.max(...list.map((x) => x.ms)))} | `
      + `${ms(p((x) => x.rulesMs, 0.5))} | ${ms(p((x) => x.dnsMs, 0.5))} | ${ms(p((x) => x.passMs, 0.5))} | ${p((x) => x.written, 0.5)} |`);
  }
  const p99 = percentile(r.results.map((x) => x.ms), 0.99);
  const failures = r.results.reduce((n, x) => n + x.failures, 0);
  out.push('', `p99 **${ms(p99)}** against the target < 1 s (kube-proxy's 100-node test: p99 6.8 s). `
    + `The agent's own \`vipmesh_network_programming_duration_seconds\` (from the change seen, after the watch's 100 ms quiet time) averaged ${ms(r.agentMeanMs)}. `
    + `The first pass from empty took ${ms(r.firstPassMs)}${r.ipvsFailures > 0 ? ` (${r.ipvsFailures} namespaces failed \`no_ipvs\`)` : ''}; failures in the changes' passes: ${failures}.`);
  return out;
}

// ---------------------------------------------------------------- 2. DNS while passes run

interface DnsRow {
  readonly what: string;
  readonly passes: number;
  readonly passMs: number;
  readonly latency: Latency;
  readonly sent: number;
  readonly lost: number;
}

interface DnsResult {
  readonly rows: readonly DnsRow[];
  readonly firstPassMs: number;
  readonly names: number;
}

/** Keeps the agent busy until `done`: each pass's end starts the next (`next` asks for it); the passes seen. */
async function keepBusy(agent: AgentProcess, done: Promise<unknown>, next: () => void): Promise<LogLine[]> {
  let over = false;
  void done.finally(() => (over = true));
  const passes: LogLine[] = [];
  while (!over) {
    const from = agent.lines.length;
    next();
    const line = await Promise.race([agent.line('a pass', isPass, from, 120_000), done.then(() => undefined)]);
    if (line !== undefined) passes.push(line);
  }
  return passes;
}

async function measureDns(s: Scale, ipvs: IpvsMode): Promise<DnsResult> {
  await requireTools('the agent benchmark', ['dnsperf']);
  const undo = new Undo();
  try {
    const node = await createNode(undo, s.namespaces, s.dnsShape);
    const agent = startAgent(undo, node, ipvs);
    await ready(agent);
    const firstPassMs = Number(agent.lines.find(isPass)!['durationMs']);
    // The names a task on the first network sees: its services and their task lists.
    const client = node.tasks[0]!;
    const network = Object.keys(Object.values(node.raw.tasks).find((t) => t.netns === client)!.addresses)[0]!;
    const services = Object.entries(node.raw.services).filter(([, svc]) => Object.hasOwn(svc.vips, network)).map(([name]) => name);
    const names = services.flatMap((name) => [`${name} A`, `tasks.${name} A`]);
    const file = join(node.runDir, '..', 'queries.txt');
    writeFileSync(file, names.join('\n') + '\n');
    const target = { name: 'the agent', address: '127.0.0.11', port: 53 };
    const run = () => dnsperf(netnsName(client), target, file, ['-l', String(s.dnsSeconds), '-Q', String(s.qps), '-v']);
    const row = (what: string, out: string, passes: readonly LogLine[]): DnsRow => {
      const c = counts(out);
      return { what, passes: passes.length, passMs: passes.length === 0 ? 0 : median(passes.map((p) => Number(p['durationMs']))), latency: latency(out, what), sent: c.sent, lost: c.lost };
    };
    const rows: DnsRow[] = [];
    await sleep(2000);

    let from = agent.lines.length;
    rows.push(row('idle', await run(), agent.lines.slice(from).filter(isPass)));

    // Full passes back to back: SIGHUP asks for one (passKindFor), each end asks again.
    let out = run();
    let passes = await keepBusy(agent, out, () => agent.child.kill('SIGHUP'));
    rows.push(row('full passes back to back (SIGHUP)', await out, passes));

    // New catalogs back to back: one remote task more or less each time, so the agent
    // loads and validates the file, the resolver rebuilds its records, a changed-only pass runs.
    await sleep(2000);
    let i = 0;
    const base = node.raw;
    out = run();
    passes = await keepBusy(agent, out, () => node.write(i++ % 2 === 0 ? changeAt(base, 2).apply(base) : base));
    rows.push(row('a new catalog file each pass (load, DNS records rebuilt, changed-only pass)', await out, passes));

    from = agent.lines.length;
    await sleep(2000);
    rows.push(row('idle again', await run(), agent.lines.slice(from).filter(isPass)));
    await stopAgent(agent);
    return { rows, firstPassMs, names: names.length };
  } finally {
    await undo.run();
  }
}

function dnsTable(s: Scale, r: DnsResult): string[] {
  const idle = r.rows[0]!.latency.p99;
  const out = [
    `dnsperf at ${s.qps / 1000}k QPS for ${s.dnsSeconds} s (\`-Q ${s.qps} -l ${s.dnsSeconds} -v\`, UDP) from one task namespace to its 127.0.0.11:53 `
      + `(through the agent's DNS redirect to the resolver's port), ${r.names} names (that network's services and their \`tasks.\` names), `
      + `with a ${s.dnsShape.services.toLocaleString('en')}-service catalog (${(s.dnsShape.services * s.dnsShape.tasksPerService).toLocaleString('en')} tasks over ${s.dnsShape.networks} networks; `
      + `each task namespace sees its network's ${s.dnsShape.services / s.dnsShape.networks} VIPs) and ${s.namespaces} task namespaces. `
      + 'During: the agent is kept busy the whole window, each pass\'s end asking for the next. Latency from dnsperf\'s per-query lines; dnsperf, the agent and the programs its passes run share the 2 cores.',
    '',
    '| agent | passes in the window | pass (median) | p50 | p99 | p99 ÷ idle p99 | max | queries sent | lost |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of r.rows) {
    out.push(`| ${row.what} | ${row.passes} | ${row.passes === 0 ? '—' : ms(row.passMs)} | ${row.latency.p50.toFixed(3)} ms | **${row.latency.p99.toFixed(3)} ms** | `
      + `${(row.latency.p99 / idle).toFixed(2)}× | ${row.latency.max.toFixed(1)} ms | ${row.sent.toLocaleString('en')} | ${row.lost} |`);
  }
  out.push('', `Target: p99 during ≤ 2 × idle p99, no query lost. First pass from empty at this size: ${ms(r.firstPassMs)}.`);
  return out;
}

// ---------------------------------------------------------------- 3. idle cost with probes

const TICK = 100; // USER_HZ

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU seconds a live process has run (schedstat: to the nanosecond, all its threads). */
function runtime(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return undefined;
  }
}

/** CPU of the children `pid` has reaped (stat's cutime + cstime). */
function reaped(pid: number): number {
  const f = statFields(pid);
  return f === undefined ? 0 : (Number(f[16 - 3]) + Number(f[17 - 3])) / TICK;
}

function statusKb(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
}

function pssKb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

interface IdleResult {
  readonly seconds: number;
  readonly agentCpu: number;
  readonly liveChildrenCpu: number;
  readonly reapedCpu: number;
  readonly children: number;
  readonly rssMb: number;
  readonly hwmMb: number;
  readonly childrenPssMb: number;
  readonly probes: number;
  readonly passed: number;
  readonly passes: number;
}

/** A TCP server on 0.0.0.0:port, or a UDP socket on any port, bound inside the namespace and handed to this process. */
async function socketInNamespace(netns: string, kind: 'tcp' | 'udp', port = 0): Promise<net.Server | dgram.Socket> {
  const child = spawnWithIpc({ file: process.execPath, args: [LISTEN_HELPER, kind, String(port)], netns, timeoutMs: 15_000, env: { NODE_OPTIONS: '' } });
  let timer: NodeJS.Timeout | undefined;
  const handle = new Promise<net.Server | dgram.Socket>((resolve) => child.onMessage((_message, h) => resolve(h as net.Server | dgram.Socket)));
  const result = await child.exited;
  if (result.exitCode !== 0) throw new Error(`binding in ${netns}: ${result.stderr}`);
  // The handle's message can come after the helper exited (see netns-sockets.ts).
  try {
    return await Promise.race([handle, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`binding in ${netns}: no socket came back`)), 2_000)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function measureIdle(s: Scale, ipvs: IpvsMode): Promise<IdleResult> {
  const undo = new Undo();
  try {
    const node = await createNode(undo, s.namespaces, s.shape, { tcp: PROBE_PORT, interval: '2s', timeout: '1s', retries: 3 });
    const servers: net.Server[] = [];
    undo.after(() => servers.forEach((server) => server.close()));
    for (let i = 0; i < node.tasks.length; i += 8) {
      for (const server of await Promise.all(node.tasks.slice(i, i + 8).map((netns) => socketInNamespace(netns, 'tcp', PROBE_PORT) as Promise<net.Server>))) {
        server.on('connection', (socket) => socket.destroy());
        servers.push(server);
      }
    }
    const agent = startAgent(undo, node, ipvs);
    await ready(agent);
    // Every task healthy (its first probe passed), then one more interval to settle.
    const healthy = () => new Set(agent.lines.filter((l) => l.event === 'probe' && l['verdict'] === 'healthy').map((l) => l['task'])).size;
    while (healthy() < s.namespaces) await agent.line('every task healthy', (l) => l.event === 'probe', agent.lines.length, 60_000);
    await sleep(4000);
    const pid = agent.child.pid!;
    const before = new Map(processTree(pid).map((p) => [p, runtime(p) ?? 0]));
    const reaped0 = reaped(pid);
    const probes0 = await probeCounts(agent);
    const from = agent.lines.length;
    const started = performance.now();
    await sleep(s.idleSeconds * 1000);
    const seconds = (performance.now() - started) / 1000;
    const tree = processTree(pid);
    let agentCpu = 0;
    let liveChildrenCpu = 0;
    for (const p of tree) {
      const delta = (runtime(p) ?? before.get(p) ?? 0) - (before.get(p) ?? 0);
      if (p === pid) agentCpu += delta;
      else liveChildrenCpu += delta;
    }
    const probes = await probeCounts(agent);
    const result: IdleResult = {
      seconds, agentCpu, liveChildrenCpu, reapedCpu: reaped(pid) - reaped0, children: tree.length - 1,
      rssMb: statusKb(pid, 'VmRSS') / 1024, hwmMb: statusKb(pid, 'VmHWM') / 1024,
      childrenPssMb: tree.filter((p) => p !== pid).reduce((n, p) => n + pssKb(p), 0) / 1024,
      probes: probes.pass + probes.fail - probes0.pass - probes0.fail,
      passed: probes.pass - probes0.pass,
      passes: agent.lines.slice(from).filter(isPass).length,
    };
    await stopAgent(agent);
    return result;
  } finally {
    await undo.run();
  }
}

function idleTable(s: Scale, r: IdleResult): string[] {
  const pct = (cpu: number) => `${((cpu / r.seconds) * 100).toFixed(1)} %`;
  const total = r.agentCpu + r.liveChildrenCpu + r.reapedCpu;
  return [
    `${s.namespaces} task namespaces, a ${s.shape.services.toLocaleString('en')}-service catalog whose every service has \`healthcheck: { tcp: ${PROBE_PORT}, interval: 2s, timeout: 1s, retries: 3 }\` `
      + `(${(s.namespaces / 2).toFixed(0)} probes/s; each task's address on its namespace's lo, the servers probed held by the benchmark, outside the agent), `
      + `every probe passing; measured over ${r.seconds.toFixed(0)} s once all tasks were healthy, the agent otherwise idle (\`--sync-period 30s\`: its periodic full passes fall in the window). `
      + 'CPU is user + system time as a share of one core: the agent process (every thread, the resolver\'s included, from /proc/PID/schedstat), '
      + 'its live children (the probe shells, from their schedstat) and the children it reaped in the window (the passes\' programs, /proc/PID/stat cutime + cstime).',
    '',
    '| probes/s | passed | passes in window | agent process | live children | reaped children | **CPU total** | agent RSS (peak) | children PSS | live children |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${(r.probes / r.seconds).toFixed(1)} | ${r.passed}/${r.probes} | ${r.passes} | ${pct(r.agentCpu)} | ${pct(r.liveChildrenCpu)} | ${pct(r.reapedCpu)} | **${pct(total)}** | `
      + `**${r.rssMb.toFixed(0)} MB** (${r.hwmMb.toFixed(0)} MB) | ${r.childrenPssMb.toFixed(0)} MB | ${r.children} |`,
    '',
    `Targets: < 3 % of one core (**${pct(total)}**) and < 200 MB (agent RSS **${r.rssMb.toFixed(0)} MB**, ${(r.rssMb + r.childrenPssMb).toFixed(0)} MB with its children's PSS).`,
  ];
}

// ---------------------------------------------------------------- 4. restart

interface Poller {
  /** Date.now() at each answer, and the addresses it held (queries left unanswered leave no sample). */
  readonly samples: { at: number; answers: string[] }[];
  /** Resolves with the first answer from `since` on that `holds`; rejects after `waitMs`. */
  until(since: number, holds: (answers: readonly string[]) => boolean, waitMs?: number): Promise<number>;
  stop(): void;
}

/**
 * Asks 127.0.0.11 for `name` every `everyMs` from a UDP socket inside `netns`
 * (through the DNS redirect, as a task asks), from this process: no fork per
 * query, so polling this often does not load the machine it measures.
 */
async function poll(undo: Undo, netns: string, name: string, everyMs = 5): Promise<Poller> {
  const socket = await socketInNamespace(netns, 'udp') as dgram.Socket;
  const samples: Poller['samples'] = [];
  const waiters = new Set<() => void>();
  let id = 0;
  socket.on('message', (message) => {
    const at = Date.now();
    let answers: string[];
    try {
      answers = (dnsPacket.decode(message).answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data] : [])).sort();
    } catch {
      return;
    }
    samples.push({ at, answers });
    for (const wake of [...waiters]) wake();
  });
  socket.on('error', () => {}); // a refused query (nothing bound behind the redirect) is only a missing sample
  const timer = setInterval(() => {
    id = (id + 1) & 0xffff;
    const query = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
    socket.send(query, 53, '127.0.0.11', () => {});
  }, everyMs);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    socket.close();
  };
  undo.after(stop);
  return {
    samples, stop,
    until(since, holds, waitMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timeout = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name} in ${netns}: not so after ${waitMs} ms; last answer: ${samples.at(-1)?.answers.join(' ')}`));
        }, waitMs);
        function check(): void {
          const found = samples.find((x) => x.at >= since && holds(x.answers));
          if (found === undefined) return;
          clearTimeout(timeout);
          waiters.delete(check);
          resolve(found.at);
        }
        waiters.add(check);
        check();
      });
    },
  };
}

/** The last answer before `exited` (the old agent's) and the first after it (the new one's). */
function outage(p: Poller, exited: number): { down: number; up: number } | undefined {
  const last = p.samples.filter((x) => x.at < exited && x.answers.length > 0).at(-1);
  const up = p.samples.find((x) => x.at >= exited && x.answers.length > 0);
  return last === undefined || up === undefined ? undefined : { down: last.at, up: up.at };
}

interface Restart {
  readonly k: number;
  /** Milliseconds from SIGTERM. */
  readonly exited: number;
  readonly started: number;
  readonly firstAnswer: number;
  readonly lastAnswer: number;
  readonly firstPass: number;
  readonly firstPassWritten: number;
}

interface RestartResult {
  readonly rows: readonly Restart[];
  readonly nodeStartMs: number;
  readonly bindMs: number;
}

async function measureRestart(s: Scale, ipvs: IpvsMode): Promise<RestartResult> {
  const undo = new Undo();
  try {
    const rows: Restart[] = [];
    let bindMs = Number.NaN;
    for (const k of s.restartSizes) {
      const node = await createNode(undo, k, s.shape);
      let agent = startAgent(undo, node, ipvs);
      await ready(agent);
      if (Number.isNaN(bindMs)) {
        // One bind helper on its own (Node started under nsenter, both sockets back), as the resolver binds each namespace.
        const times: number[] = [];
        for (let i = 0; i < 5; i++) {
          const sockets = await bindInNamespace(node.tasks[0]!);
          times.push(sockets.durationMs);
          sockets.udp.close();
          sockets.tcp.close();
        }
        bindMs = median(times);
      }
      // The service of each polled namespace's own task: a name its network sees.
      const serviceIn = (netns: string) => Object.values(node.raw.tasks).find((t) => t.netns === netns)!.service;
      const polled = [node.tasks[0]!, node.tasks[k - 1]!];
      const pollers = await Promise.all(polled.map((netns) => poll(undo, netns, serviceIn(netns)!)));
      for (let round = 0; round < s.restarts; round++) {
        await sleep(1500);
        if (pollers.some((p) => (p.samples.at(-1)?.answers.length ?? 0) === 0 || p.samples.at(-1)!.at < Date.now() - 100)) throw new Error('restart: DNS was not answering before SIGTERM');
        const term = Date.now();
        agent.child.kill('SIGTERM');
        await agent.exited;
        const exited = Date.now();
        agent = startAgent(undo, node, ipvs);
        await ready(agent);
        await sleep(300);
        const outages = pollers.map((p) => outage(p, exited));
        if (outages.some((o) => o === undefined)) throw new Error('restart: a namespace got no answer before or after the restart');
        const start = agent.lines.find((l) => l.event === 'start')!;
        const pass = agent.lines.find(isPass)!;
        rows.push({
          k, exited: exited - term, started: timeOf(start) - term,
          firstAnswer: Math.min(...outages.map((o) => o!.up)) - term, lastAnswer: Math.max(...outages.map((o) => o!.up)) - term,
          firstPass: timeOf(pass) - term, firstPassWritten: (pass['changed'] as string[]).length,
        });
        process.stderr.write(`agent bench: restart at ${k}: DNS back after ${ms(rows.at(-1)!.lastAnswer)}\n`);
      }
      pollers.forEach((p) => p.stop());
      await stopAgent(agent);
    }
    const nodeStart: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await execa(process.execPath, [CLI, '--version']);
      nodeStart.push(performance.now() - t);
    }
    return { rows, nodeStartMs: median(nodeStart), bindMs };
  } finally {
    await undo.run();
  }
}

function restartTable(s: Scale, r: RestartResult): string[] {
  const out = [
    `SIGTERM to the agent, then a new agent started as soon as the old one exited (as \`systemctl restart\` does), on a ${s.shape.services.toLocaleString('en')}-service catalog; `
      + 'a DNS query every 5 ms to 127.0.0.11:53 from inside two task namespaces, the first and the last the catalog lists (UDP sockets bound there, held by the benchmark). '
      + `Times from SIGTERM; "DNS back" is the first answer after the old agent exited; median of ${s.restarts} restarts.`,
    '',
    '| task namespaces | old agent exited | new agent\'s start line | DNS back: first namespace | **DNS back: last namespace** | first pass done | namespaces written by it |',
    '|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const k of s.restartSizes) {
    const rows = r.rows.filter((x) => x.k === k);
    const m = (f: (x: Restart) => number) => ms(median(rows.map(f)));
    out.push(`| ${k} | ${m((x) => x.exited)} | ${m((x) => x.started)} | ${m((x) => x.firstAnswer)} | **${m((x) => x.lastAnswer)}** | ${m((x) => x.firstPass)} | ${median(rows.map((x) => x.firstPassWritten))} |`);
  }
  out.push('', `Target: < 1 s. Where it goes: the old agent stopping; then the new one's Node start and module loading (\`node bin.js --version\` alone: ${ms(r.nodeStartMs)}), `
    + 'loading and validating the catalog, the lock, the resolver worker and HTTP (all before its start line); then binding 127.0.0.11 again in every task namespace, '
    + `8 at a time, each through a bind helper, a Node process started under \`nsenter\` (one alone: ${ms(r.bindMs)}). A namespace answers once its own bind is done, `
    + 'on the same port as before, so the DNS redirect programmed by the old agent leads to it again before any pass. '
    + 'With IPVS in memory the new agent starts with none, so its first pass writes IPVS in every namespace; on a kernel with IPVS it would write nothing.');
  return out;
}

// ---------------------------------------------------------------- the section

/** The 1-minute load average: the machine may be shared, and these are wall-clock numbers. */
async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!;
}

export async function runAgentBench(options: AgentBenchOptions = {}): Promise<{ markdown: string }> {
  requireRoot('the agent benchmark');
  await requireTools('the agent benchmark', ['dig', 'nsenter']);
  const s = options.quick === true ? QUICK : FULL;
  const ipvs = options.ipvs ?? 'memory';
  const parts = options.parts ?? PARTS;
  const out: string[] = [];
  const part = async (key: Part, title: string, body: () => Promise<string[]>) => {
    if (!parts.includes(key)) return;
    process.stderr.write(`agent bench: ${key}...\n`);
    const load = await loadAverage();
    const measured = await body();
    const lines = [`### ${title}`, '', ...measured, '', `Load average (1 min) before and after: ${load}, ${await loadAverage()} (the machine may be shared; these are wall-clock numbers).`, ''];
    process.stderr.write(`${lines.join('\n')}\n`);
    out.push(...lines);
  };
  await part('latency', 'Network programming latency', async () => latencyTable(s, await measureLatency(s, ipvs), ipvs));
  await part('dns', 'DNS while the agent works', async () => dnsTable(s, await measureDns(s, ipvs)));
  await part('idle', 'Idle cost with a tcp probe on every task', async () => idleTable(s, await measureIdle(s, ipvs)));
  await part('restart', 'Restart: the DNS outage', async () => restartTable(s, await measureRestart(s, ipvs)));
  const flags = [options.quick === true ? '--quick' : '', ipvs === 'none' ? '--ipvs none' : '', options.parts ? `--parts ${parts.join(',')}` : ''].filter((f) => f !== '').join(' ');
  out.push(`Machine: ${await machine()}, Node ${process.version}. ${ipvs === 'memory' ? 'IPVS and its vs.* sysctls kept in memory in the agent (this kernel has none; bench/ipvs-in-memory.ts). ' : ''}`
    + 'Reproduce with:', '', '```sh', `npm run build && sudo node dist/bench/agent.js${flags === '' ? '' : ` ${flags}`}`, '```');
  return { markdown: out.join('\n') };
}

function option(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at < 0 ? undefined : argv[at + 1];
}

if (process.argv[1] === SELF) {
  const argv = process.argv.slice(2);
  const parts = option(argv, '--parts')?.split(',').filter((p): p is Part => (PARTS as readonly string[]).includes(p));
  const ipvs = option(argv, '--ipvs');
  if (ipvs !== undefined && ipvs !== 'memory' && ipvs !== 'none') throw new Error('--ipvs memory|none');
  const { markdown } = await runAgentBench({
    quick: argv.includes('--quick') || process.env['VIPMESH_BENCH_QUICK'] === '1',
    ...(parts === undefined ? {} : { parts }),
    ...(ipvs === undefined ? {} : { ipvs }),
  });
  process.stdout.write(markdown + '\n');
}
