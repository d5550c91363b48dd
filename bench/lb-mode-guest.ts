// Load-balancer mode against per-task mode (issue 13), run inside the kernel
// lane's guest (this machine's kernel has no IPVS):
// `VIPMESH_LANE_RUN=dist/bench/lb-mode-guest.js test/lane/run.sh`, or through
// bench/lb-mode.ts, which also pulls the table out of the console.
//
// For each K and mode: K task namespaces, the node's host namespace and one
// load-balancer namespace (an interface on a bridge in the host namespace), and a
// synthetic catalog (bench/synthetic.ts) of S services × T tasks on one overlay
// network, K of the tasks local; load-balancer mode is the same catalog plus
// `loadBalancers` for that network on the node. A fake agent's resolver.json
// holds ports for every local task, so the DNS redirect is programmed too, as
// under a running agent. Each pass is runPass (src/reconcile/pass.ts: what
// `vipmesh reconcile` and the agent run, state file included) in a child process
// of its own, as a one-shot runs, with its own VIPMESH_RUN_DIR:
//   - from empty: time, the kernel memory it left (meminfo, slabinfo, once the
//     process is gone), the IPVS services and real servers it added;
//   - one service added (T tasks, one local in a fresh namespace): the agent's
//     changed-only pass (scope "changed"), then another service through a full
//     pass (scope "all", what `vipmesh reconcile` does: reads every namespace):
//     namespaces read and written, time.
// Not the CLI itself: the kernel adapter gives each program 30 s, and under TCG
// on a loaded host eight `ipvsadm -R` of 11,000 lines at once take longer, so
// per-task mode fails there (seen at K=10). The child stretches that limit
// (PROGRAM_LIMIT_MS) and changes nothing else; it also prints no change lines.
// Per-task mode at a K whose straight-line projection from the smaller Ks would
// not fit the time budget or the guest's memory is not run; the projection is
// printed as such.
//
// Sizes from the environment (the kernel command line; bench/lb-mode.ts sets them):
//   vipmesh_lb_sizes (10,20,50,200), vipmesh_lb_services (1000), vipmesh_lb_tasks (10),
//   vipmesh_lb_budget (25: minutes one per-task reconcile from empty may take).
// Progress on stderr; the markdown between BENCH-BEGIN lb-mode / BENCH-END lb-mode.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { execa } from 'execa';
import { parseCatalog } from '../src/catalog/load.js';
import { createKernel, detectBackend } from '../src/kernel/index.js';
import type { Runner } from '../src/kernel/exec.js';
import { createPooledRunner } from '../src/kernel/session.js';
import { DEFAULT_CONCURRENCY, runPass } from '../src/reconcile/pass.js';
import { linearAt } from './extrapolate.js';
import { bytesText, memoryDelta, readMemory, settledMemory, type Memory, type MemoryDelta } from './kernel-memory.js';
import { createLab, type Lab } from './lab.js';
import { createTally, tallyLine } from './reconcile-output.js';
import { NODE, syntheticCatalog, withLoadBalancer, withService, type SyntheticCatalog } from './synthetic.js';

export const BEGIN = 'BENCH-BEGIN lb-mode';
export const END = 'BENCH-END lb-mode';
const NETWORK = 'net-0';
const LB_ADDRESS = '10.1.255.250'; // inside net-0's 10.1.0.0/16, above what the synthetic catalog fills
/** Each program's time limit in the passes here; the product's is 30 s (src/kernel/exec.ts). */
const PROGRAM_LIMIT_MS = 10 * 60_000;
const SELF = fileURLToPath(import.meta.url);

export type Mode = 'per-task' | 'load-balancer';

export interface Options {
  readonly sizes: readonly number[];
  readonly services: number;
  readonly tasks: number;
  readonly budgetMin: number;
}

function envList(name: string, fallback: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return [...fallback];
  const list = raw.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${name}=${raw}: not a list of whole numbers`);
  return list;
}

const envNumber = (name: string, fallback: number) => envList(name, [fallback])[0]!;

// This process's own garbage (the catalogs it just built) must not land in the
// MemAvailable difference: collect it before each reading. init starts us as
// plain `node FILE`, so the flag is set from here.
let gc: (() => void) | undefined;
function collect(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
const started = performance.now();

function log(message: string): void {
  process.stderr.write(`lb-bench +${((performance.now() - started) / 1000).toFixed(0)}s: ${message}\n`);
}

async function sh(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await execa(file, args, { reject: false, ...(input === undefined ? {} : { input }) });
  if (r.exitCode !== 0) throw new Error(`${r.command} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

// --- one child process, measured -------------------------------------------------------

interface Run {
  readonly ms: number;
  /** VmHWM of the process, polled while it ran. */
  readonly peakRss: number;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly timedOut: boolean;
  readonly stderr: string;
}

/** Runs `node ARGS`, streaming its stdout lines to `onLine`, polling its peak RSS. */
async function measured(args: readonly string[], env: Record<string, string>, timeoutMs: number, onLine: (line: string) => void): Promise<Run> {
  const t = performance.now();
  const child = execa('node', args, { env, reject: false, buffer: { stdout: false, stderr: true }, timeout: timeoutMs, stdin: 'ignore' });
  let peakRss = 0;
  const poll = setInterval(() => {
    void readFile(`/proc/${child.pid}/status`, 'utf8').then((s) => {
      const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(s)?.[1] ?? 0);
      if (kb * 1024 > peakRss) peakRss = kb * 1024;
    }, () => undefined);
  }, 250);
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', onLine);
  const result = await child;
  clearInterval(poll);
  return {
    ms: performance.now() - t, peakRss, exitCode: result.exitCode, signal: result.signal ?? undefined,
    timedOut: result.timedOut, stderr: String(result.stderr ?? '').trim(),
  };
}

function failure(what: string, run: Run): string | undefined {
  if (run.timedOut) return `${what} did not finish within its time limit`;
  if (run.signal !== undefined) return `${what} was killed by ${run.signal}${run.signal === 'SIGKILL' ? ' (the kernel\'s OOM killer?)' : ''}`;
  if (run.exitCode !== 0) return `${what} exited ${run.exitCode}: ${run.stderr.split('\n').slice(-3).join(' | ')}`;
  return undefined;
}

// --- one pass, in a child (`node lb-mode-guest.js pass FILE SCOPE`) -----------------------

interface PassReport {
  readonly ms: number;
  readonly read: number;
  readonly written: number;
  readonly failed: number;
  readonly ipvsServices: number;
  readonly realServers: number;
  readonly errors: readonly string[];
}

/** The runner with a longer limit for every program that sets none. */
function stretched(runner: Runner, timeoutMs: number): Runner {
  return { ...runner, stats: runner.stats, run: (command) => runner.run({ ...command, timeoutMs: command.timeoutMs ?? timeoutMs }) };
}

async function passChild(file: string, scope: 'all' | 'changed'): Promise<void> {
  const loaded = parseCatalog(await readFile(file, 'utf8'));
  if (!loaded.ok) throw new Error(`catalog invalid: ${loaded.problems.slice(0, 3).map((p) => p.message).join('; ')}`);
  const runDir = process.env['VIPMESH_RUN_DIR'];
  if (runDir === undefined) throw new Error('VIPMESH_RUN_DIR is not set');
  // As runPass's own host kernel, but with the longer program limit.
  const runner = stretched(createPooledRunner(DEFAULT_CONCURRENCY), PROGRAM_LIMIT_MS);
  try {
    const kernel = createKernel(runner, { backend: await detectBackend(runner) });
    const t = performance.now();
    const result = await runPass({ catalog: loaded.catalog, node: NODE, mode: 'apply', runDir, scope, kernel });
    const ms = performance.now() - t;
    // Counted as `vipmesh reconcile` would print them (src/reconcile/summary.ts).
    const tally = createTally();
    const live = result.namespaces.filter((ns) => !ns.gone || ns.errors.length > 0);
    for (const ns of live) {
      if (ns.changes.length === 0) continue;
      tallyLine(tally, `# netns ${ns.key}`);
      for (const c of ns.changes) tallyLine(tally, c.text);
    }
    const errors = result.namespaces.flatMap((ns) => ns.errors.map((e) => `${ns.key}: ${e.message}`));
    const report: PassReport = {
      ms, read: live.length, written: tally.written.length, failed: result.namespaces.filter((ns) => ns.errors.length > 0).length,
      ipvsServices: tally.ipvsServices, realServers: tally.realServers, errors: errors.slice(0, 3),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await runner.close?.();
  }
}

/** One pass in a child process: its report, wall time and peak RSS, or why it has none. */
async function pass(file: string, scope: 'all' | 'changed', env: Record<string, string>, limitMs: number, what: string):
  Promise<{ report: PassReport; run: Run } | { why: string; run: Run }> {
  let report: PassReport | undefined;
  const run = await measured([SELF, 'pass', file, scope], env, limitMs, (l) => {
    if (l.startsWith('{')) report = JSON.parse(l) as PassReport;
  });
  const why = failure(what, run) ?? (report === undefined ? `${what} printed no report` : undefined) ??
    (report!.failed > 0 ? `${what}: ${report!.failed} namespace(s) failed: ${report!.errors.join(' | ')}` : undefined);
  return why === undefined ? { report: report!, run } : { why, run };
}

// --- one K in one mode ----------------------------------------------------------------------

export interface FromEmpty {
  /** The pass in its process. */
  readonly ms: number;
  /** The child process's wall time, start and catalog load included. */
  readonly wallMs: number;
  readonly peakRss: number;
  readonly namespaces: number;
  readonly written: number;
  readonly ipvsServices: number;
  readonly realServers: number;
  readonly memory: MemoryDelta;
  /** One namespace read back with ipvsadm: what it holds. */
  readonly sample: string;
}

export interface Change {
  /** The pass in its process. */
  readonly ms: number;
  /** The child process's wall time, start and catalog load included. */
  readonly wallMs: number;
  readonly read: number;
  readonly written: number;
}

export type Row =
  | { readonly kind: 'measured'; readonly mode: Mode; readonly k: number; readonly fromEmpty: FromEmpty; readonly changed: Change; readonly full: Change }
  | { readonly kind: 'failed'; readonly mode: Mode; readonly k: number; readonly why: string; readonly fromEmpty?: Partial<FromEmpty> }
  | {
    readonly kind: 'projected'; readonly mode: Mode; readonly k: number; readonly why: string;
    /** How: "the straight line through … K=10 and K=20", or "proportional to … K=10". */
    readonly basis: string;
    readonly ms: number; readonly services: number; readonly realServers: number; readonly peakRss: number;
    readonly memory: { readonly slabObjects: number; readonly sunreclaim: number; readonly percpu: number; readonly availableDrop: number };
  };

function ipvsCounts(listing: string): { services: number; reals: number } {
  const lines = listing.split('\n');
  return { services: lines.filter((l) => /^FWM\s/.test(l)).length, reals: lines.filter((l) => /^\s+->\s+\d/.test(l)).length };
}

async function plumb(lab: Lab, k: number): Promise<{ host: string; lb: string; spares: [string, string]; tasks: string[] }> {
  const [host, lb, spare1, spare2, ...tasks] = await lab.add(['host', 'lb', 'spare1', 'spare2', ...Array.from({ length: k }, (_, i) => `t${i}`)]);
  const name = (path: string) => path.slice('/run/netns/'.length);
  // lo up everywhere, as in any container; ip -batch takes no -n, so one ip per namespace.
  const all = [host!, lb!, spare1!, spare2!, ...tasks];
  for (let i = 0; i < all.length; i += 8) {
    await Promise.all(all.slice(i, i + 8).map((p) => sh('ip', ['-n', name(p), 'link', 'set', 'lo', 'up'])));
  }
  // The load balancer's leg on the overlay: a veth into a bridge in the host namespace.
  const h = name(host!);
  await sh('ip', ['-n', h, 'link', 'add', 'br0', 'type', 'bridge']);
  await sh('ip', ['-n', h, 'link', 'add', 'lbv', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name(lb!)]);
  await sh('ip', ['-n', h, 'link', 'set', 'lbv', 'master', 'br0', 'up']);
  await sh('ip', ['-n', h, 'link', 'set', 'br0', 'up']);
  await sh('ip', ['-n', name(lb!), 'addr', 'add', `${LB_ADDRESS}/16`, 'dev', 'eth0']);
  await sh('ip', ['-n', name(lb!), 'link', 'set', 'eth0', 'up']);
  return { host: host!, lb: lb!, spares: [spare1!, spare2!], tasks };
}

async function waitForTeardown(baseline: Memory): Promise<void> {
  // Deleting namespaces frees their IPVS and rules in a workqueue, after `ip` returns.
  const base = baseline.meminfo.get('SUnreclaim') ?? 0;
  for (let i = 0; i < 90; i++) {
    const now = readMemory().meminfo.get('SUnreclaim') ?? 0;
    if (now - base < 8 * 1024) return;
    await sleep(2000);
  }
  log(`teardown: SUnreclaim still ${bytesText(((readMemory().meminfo.get('SUnreclaim') ?? 0) - base) * 1024)} above where it started`);
}

async function oneRun(mode: Mode, k: number, o: Options): Promise<Row> {
  const lab = createLab('lbm');
  const dir = await mkdtemp(join(tmpdir(), 'lbm-'));
  const baseline = await settledMemory(500);
  try {
    log(`${mode}, K=${k}: ${k + 4} namespaces`);
    const ns = await plumb(lab, k);
    const runDir = join(dir, 'run');
    await mkdir(runDir);
    // A live agent's resolver ports (this process's pid is alive): the DNS redirect is managed.
    const ports = Object.fromEntries([...ns.tasks, ...ns.spares].map((p, i) => [p, { udp: 20000 + i, tcp: 40000 + i }]));
    await writeFile(join(runDir, 'resolver.json'), JSON.stringify({ pid: process.pid, namespaces: ports }));

    let base: SyntheticCatalog = syntheticCatalog({
      services: o.services, tasksPerService: o.tasks, networks: 1, localTasks: k, publishEvery: 0,
      hostNetns: ns.host, localNetns: (i) => ns.tasks[i]!,
    });
    if (mode === 'load-balancer') base = withLoadBalancer(base, NETWORK, { netns: ns.lb, address: LB_ADDRESS });
    const one = withService(base, { index: o.services, network: NETWORK, tasks: o.tasks, localNetns: [ns.spares[0]], block: 250 });
    const two = withService(one, { index: o.services + 1, network: NETWORK, tasks: o.tasks, localNetns: [ns.spares[1]], block: 251 });
    const files = [base, one, two].map((_, i) => join(dir, `catalog-${i}.json`));
    await Promise.all([base, one, two].map((c, i) => writeFile(files[i]!, JSON.stringify(c))));
    const env = { VIPMESH_RUN_DIR: runDir };
    const limitMs = o.budgetMin * 60_000 * 2;

    // From empty.
    // 3 s: under TCG, RCU and exited processes take a while to give memory back.
    collect();
    const m0 = await settledMemory(3000);
    log(`${mode}, K=${k}: reconcile from empty`);
    const first = await pass(files[0]!, 'all', env, limitMs, 'the reconcile from empty');
    collect();
    const m1 = await settledMemory(3000);
    const memory = memoryDelta(m0, m1);
    const partial = { ms: first.run.ms, wallMs: first.run.ms, peakRss: first.run.peakRss, memory };
    if ('why' in first) return { kind: 'failed', mode, k, why: first.why, fromEmpty: partial };
    const r0 = first.report;
    const sampleNs = mode === 'load-balancer' ? ns.lb : ns.tasks[0]!;
    const sampled = ipvsCounts(await sh('nsenter', [`--net=${sampleNs}`, 'ipvsadm', '-Ln']));
    const inTask = mode === 'load-balancer' ? ipvsCounts(await sh('nsenter', [`--net=${ns.tasks[0]!}`, 'ipvsadm', '-Ln'])) : sampled;
    if (sampled.services !== o.services || sampled.reals !== o.services * o.tasks) {
      throw new Error(`${sampleNs} holds ${sampled.services} services and ${sampled.reals} real servers, not ${o.services} and ${o.services * o.tasks}`);
    }
    if (mode === 'load-balancer' && inTask.services !== 0) throw new Error(`a task namespace holds ${inTask.services} IPVS services in load-balancer mode`);
    const sample = mode === 'load-balancer'
      ? `the load balancer ${sampled.services} services, ${sampled.reals} real servers; a task 0`
      : `a task ${sampled.services} services, ${sampled.reals} real servers`;
    const fromEmpty: FromEmpty = {
      ...partial, ms: r0.ms, namespaces: r0.read, written: r0.written, ipvsServices: r0.ipvsServices, realServers: r0.realServers, sample,
    };
    log(`${mode}, K=${k}: from empty ${(r0.ms / 1000).toFixed(1)} s, ${r0.written} namespaces written, ` +
      `${r0.ipvsServices} services, ${r0.realServers} real servers, SUnreclaim +${bytesText(memory.sunreclaim)}`);

    // One service added: the agent's changed-only pass.
    log(`${mode}, K=${k}: one service added, changed-only pass`);
    const second = await pass(files[1]!, 'changed', env, limitMs, 'the changed-only pass');
    if ('why' in second) return { kind: 'failed', mode, k, why: second.why, fromEmpty };
    const changed: Change = { ms: second.report.ms, wallMs: second.run.ms, read: second.report.read, written: second.report.written };

    // Another service added: a full pass, as `vipmesh reconcile`.
    log(`${mode}, K=${k}: another service added, full pass`);
    const third = await pass(files[2]!, 'all', env, limitMs, 'the full pass');
    if ('why' in third) return { kind: 'failed', mode, k, why: third.why, fromEmpty };
    const full: Change = { ms: third.report.ms, wallMs: third.run.ms, read: third.report.read, written: third.report.written };
    log(`${mode}, K=${k}: changed-only ${changed.written}/${changed.read} written in ${(changed.ms / 1000).toFixed(1)} s; ` +
      `full ${full.written}/${full.read} in ${(full.ms / 1000).toFixed(1)} s`);
    return { kind: 'measured', mode, k, fromEmpty, changed, full };
  } finally {
    await lab.close();
    await rm(dir, { recursive: true, force: true });
    await waitForTeardown(baseline);
  }
}

// --- the projection for a per-task K too large to try -----------------------------------

function projection(rows: readonly Row[], mode: Mode, k: number, o: Options): Extract<Row, { kind: 'projected' }> | undefined {
  const done = rows.filter((r): r is Extract<Row, { kind: 'measured' }> => r.kind === 'measured' && r.mode === mode);
  if (done.length === 0) return undefined;
  const at = (y: (r: (typeof done)[number]) => number) => linearAt(done.map((r) => ({ x: r.k, y: y(r) })), k);
  const used = done.map((r) => r.k).sort((a, b) => a - b).slice(-2);
  const basis = used.length === 2
    ? `the straight line through ${mode} mode's measurements at K=${used[0]} and K=${used[1]}`
    : `proportional to K from ${mode} mode's one measurement, at K=${used[0]}`;
  const ms = at((r) => r.fromEmpty.ms);
  const m = (pick: (d: MemoryDelta) => number) => at((r) => pick(r.fromEmpty.memory));
  const memory = {
    slabObjects: m((d) => d.slabObjects ?? 0), sunreclaim: m((d) => d.sunreclaim), percpu: m((d) => d.percpu), availableDrop: m((d) => d.availableDrop),
  };
  const peakRss = at((r) => r.fromEmpty.peakRss);
  const available = (readMemory().meminfo.get('MemAvailable') ?? 0) * 1024;
  const reasons: string[] = [];
  if (ms > o.budgetMin * 60_000) reasons.push(`its reconcile from empty is projected at ${(ms / 60_000).toFixed(0)} min, over the ${o.budgetMin} min budget`);
  // The kernel state and the reconciling process must fit together, with room for the rest.
  const margin = 256 * 1024 * 1024;
  if (memory.availableDrop + peakRss + margin > available) {
    reasons.push(`${bytesText(memory.availableDrop)} of state plus vipmesh's ${bytesText(peakRss)} (projected) do not fit the guest's ${bytesText(available)} available with a ${bytesText(margin)} margin`);
  }
  return {
    kind: 'projected', mode, k, why: reasons.join('; '), basis, ms, memory, peakRss,
    services: at((r) => r.fromEmpty.ipvsServices), realServers: at((r) => r.fromEmpty.realServers),
  };
}

// --- the table -------------------------------------------------------------------------------

function fmt(ms: number): string {
  if (ms >= 120_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 1000).toFixed(2)} s`;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

export function render(rows: readonly Row[], o: Options, heapLimit: number, totalMemory: number): string {
  const out: string[] = [];
  out.push(`Load-balancer mode against per-task mode in the kernel lane: a QEMU TCG guest (Linux ${release()}, ${cpus().length} vCPUs, ` +
    `${bytesText(totalMemory)} of memory; emulated, so read the ratios and the growth, not the absolute times). ` +
    `Catalog (bench/synthetic.ts): ${int(o.services)} services × ${o.tasks} tasks on one overlay network over 10 nodes, K of the tasks local ` +
    `to the node (one namespace each); load-balancer mode is the same catalog plus \`loadBalancers\` for that network on the node ` +
    `(one more namespace, an interface on a bridge). A live agent's resolver ports are on file, so each task namespace also gets the DNS redirect. ` +
    `Every pass is vipmesh's own runPass (what \`vipmesh reconcile\` and the agent run, state file included), each in a process of its own ` +
    `with its own run directory, with one difference: each program (\`ipvsadm -R\`, \`iptables-restore\`, …) may take ${PROGRAM_LIMIT_MS / 60_000} min instead of the product's 30 s, ` +
    `which eight concurrent \`ipvsadm -R\` of 11,000 lines exceed in per-task mode under TCG on a busy host. Time: the pass in its process ` +
    `(in brackets: the process, Node start and catalog load included). The changed-only pass is scope "changed", as the agent runs it between full passes; ` +
    `the full pass reads every namespace, as \`vipmesh reconcile\` does. One run per cell. Kernel memory: after − before the reconcile from empty, once its process was gone; slab objects = ` +
    `active objects × size over every /proc/slabinfo cache, the rest from /proc/meminfo (MemAvailable also counts user memory and the run directory's files on tmpfs).`);
  out.push('');
  out.push('Reconcile from empty:');
  out.push('');
  out.push('| K | mode | namespaces written | IPVS services | real servers | time (process) | slab objects Δ | SUnreclaim Δ | Percpu Δ | MemAvailable ↓ | vipmesh peak RSS |');
  out.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.kind === 'measured') {
      const f = r.fromEmpty;
      out.push(`| ${r.k} | ${r.mode} | ${f.written} of ${f.namespaces} | ${int(f.ipvsServices)} | ${int(f.realServers)} | ${fmt(f.ms)} (${fmt(f.wallMs)}) | ` +
        `${f.memory.slabObjects === undefined ? 'n/a' : bytesText(f.memory.slabObjects)} | ${bytesText(f.memory.sunreclaim)} | ${bytesText(f.memory.percpu)} | ` +
        `${bytesText(f.memory.availableDrop)} | ${bytesText(f.peakRss)} |`);
    } else if (r.kind === 'failed') {
      const f = r.fromEmpty;
      out.push(`| ${r.k} | ${r.mode} | **failed:** ${r.why} | ${f?.ipvsServices === undefined ? '' : int(f.ipvsServices)} | ${f?.realServers === undefined ? '' : int(f.realServers)} | ` +
        `${f?.ms === undefined ? '' : fmt(f.ms)} | | ${f?.memory ? bytesText(f.memory.sunreclaim) : ''} | ${f?.memory ? bytesText(f.memory.percpu) : ''} | ` +
        `${f?.memory ? bytesText(f.memory.availableDrop) : ''} | ${f?.peakRss === undefined ? '' : bytesText(f.peakRss)} |`);
    } else {
      const p = r.memory;
      out.push(`| ${r.k} | ${r.mode}, **extrapolated, not measured** | (${r.k}) | ~${int(r.services)} | ~${int(r.realServers)} | ~${fmt(r.ms)} | ` +
        `~${bytesText(p.slabObjects)} | ~${bytesText(p.sunreclaim)} | ~${bytesText(p.percpu)} | ~${bytesText(p.availableDrop)} | ~${bytesText(r.peakRss)} |`);
    }
  }
  out.push('');
  out.push(`One service added (${o.tasks} tasks: one local, in a namespace of its own, the rest on other nodes), on the node converged above: ` +
    'first through the changed-only pass, then a second one through a full pass:');
  out.push('');
  out.push('| K | mode | changed-only pass: namespaces read | written | time (process) | full pass: namespaces read | written | time (process) |');
  out.push('|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.kind !== 'measured') continue;
    out.push(`| ${r.k} | ${r.mode} | ${r.changed.read} | ${r.changed.written} | ${fmt(r.changed.ms)} (${fmt(r.changed.wallMs)}) | ${r.full.read} | ${r.full.written} | ${fmt(r.full.ms)} (${fmt(r.full.wallMs)}) |`);
  }
  for (const r of rows) {
    if (r.kind === 'projected') {
      out.push('');
      out.push(`${r.mode} mode at K=${r.k} was not run: ${r.why}. Its row is extrapolated, ${r.basis}: a projection, not a measurement.`);
    } else if (r.kind === 'failed') {
      out.push('');
      out.push(`${r.mode} at K=${r.k} failed: ${r.why}.`);
    }
  }
  const samples = rows.filter((r): r is Extract<Row, { kind: 'measured' }> => r.kind === 'measured');
  if (samples.length > 0) {
    out.push('');
    out.push(`Read back with \`ipvsadm -Ln\` after each reconcile from empty: ${[...new Set(samples.map((r) => `${r.mode}: ${r.fromEmpty.sample}`))].join('; ')}. ` +
      `vipmesh's own heap limit in the guest (Node's default): ${bytesText(heapLimit)}.`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === 'pass') {
    await passChild(process.argv[3]!, process.argv[4] === 'all' ? 'all' : 'changed');
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('the load-balancer benchmark needs root: it creates network namespaces');
  const o: Options = {
    sizes: envList('vipmesh_lb_sizes', [10, 20, 50, 200]).sort((a, b) => a - b),
    services: envNumber('vipmesh_lb_services', 1000),
    tasks: envNumber('vipmesh_lb_tasks', 10),
    budgetMin: envNumber('vipmesh_lb_budget', 25),
  };
  const totalMemory = (readMemory().meminfo.get('MemTotal') ?? 0) * 1024;
  log(`sizes ${o.sizes.join(', ')}; ${o.services} services × ${o.tasks} tasks; budget ${o.budgetMin} min; ${bytesText(totalMemory)}`);
  const rows: Row[] = [];
  for (const k of o.sizes) {
    rows.push(await oneRun('load-balancer', k, o));
    const projected = projection(rows, 'per-task', k, o);
    if (projected !== undefined && projected.why !== '') {
      log(`per-task, K=${k}: not run: ${projected.why}`);
      rows.push(projected);
    } else {
      rows.push(await oneRun('per-task', k, o));
    }
    // Each step's table, so a guest that dies later still shows what it measured.
    process.stderr.write(`${render(rows, o, getHeapStatistics().heap_size_limit, totalMemory)}\n`);
  }
  process.stdout.write(`${BEGIN}\n${render(rows, o, getHeapStatistics().heap_size_limit, totalMemory)}\n${END}\n`);
}

if (process.argv[1] === SELF) {
  await main().catch((error: unknown) => {
    log(`failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
