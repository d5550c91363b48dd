// Reconcile on this machine's kernel, in real namespaces: vipmesh against two
// floors (the same rule text, one bare iptables-restore per namespace; and an
// iptables-save before it, the read a pass cannot skip either) and against
// Docker's way (one iptables command per rule, as libnetwork does). IPVS and its
// vs.* sysctls come from the tests' fake kernel, in memory and without spawning
// anything (this kernel has none; bench/ipvs.ts measures IPVS in the kernel lane);
// iptables and the other sysctls are the real kernel's.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseCatalog } from '../src/catalog/load.js';
import type { Catalog } from '../src/catalog/types.js';
import { createRunner, type Runner } from '../src/kernel/exec.js';
import { createPooledRunner } from '../src/kernel/session.js';
import { createKernel, detectBackend, type Backend } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/types.js';
import { planNode } from '../src/plan/index.js';
import type { NodeFacts, NodePlan, ResolverPorts } from '../src/plan/types.js';
import { mapLimit, reconcileNode, type Mode, type ReconcileResult } from '../src/reconcile/run.js';
import { renderRestore } from '../src/render/iptables.js';
import { EMPTY_STATE, type StoredState } from '../src/state/store.js';
import { createFakeKernel, withFakeIpvs } from '../test/fakes/kernel.js';
import { createLab, machine, median, requireRoot, type Lab } from './lab.js';
import { NODE, serviceName, syntheticCatalog, taskName, type SyntheticCatalog } from './synthetic.js';

const CONCURRENCY = 8;

export interface ReconcileBenchOptions {
  readonly sizes?: readonly number[];
  readonly services?: number;
  readonly tasksPerService?: number;
  readonly networks?: number;
  readonly rounds?: number;
  /** Docker's way spawns one process per rule; above this many namespaces it runs on a sample. */
  readonly dockerSample?: number;
}

interface Measure {
  readonly ms: number;
  /** Change of the kernel's slab memory over the run (rules live there). */
  readonly slabKiB: number;
  /** Forks of the measuring process (the agent). */
  readonly spawns: number;
  /** Programs run: iptables-save/-restore, sh, … (Docker's way: iptables commands). */
  readonly commands: number;
  readonly bytes: number;
  /** Namespaces that got at least one write. */
  readonly written?: number;
}

function realErrors(result: ReconcileResult): string[] {
  return result.namespaces.flatMap((ns) => ns.errors.map((e) => `${ns.key}: ${e.message}`));
}

async function slabKiB(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8');
  return Number(/^Slab:\s+(\d+) kB$/m.exec(text)?.[1] ?? Number.NaN);
}

async function timed(runner: Runner, fn: () => Promise<number | void>): Promise<Measure> {
  // Cold, as a one-shot `vipmesh reconcile` starts: no shell left from the pass before.
  await runner.close?.();
  const spawns = runner.stats.spawns;
  const commands = runner.stats.commands;
  const bytes = runner.stats.bytesWritten;
  const slab = await slabKiB();
  const started = performance.now();
  const written = await fn();
  const ms = performance.now() - started;
  return {
    ms,
    slabKiB: (await slabKiB()) - slab,
    spawns: runner.stats.spawns - spawns,
    commands: runner.stats.commands - commands,
    bytes: runner.stats.bytesWritten - bytes,
    ...(typeof written === 'number' ? { written } : {}),
  };
}

interface Setup {
  readonly catalog: Catalog;
  readonly raw: SyntheticCatalog;
  readonly facts: NodeFacts;
  readonly spare: string;
}

async function setup(lab: Lab, k: number, o: Required<ReconcileBenchOptions>): Promise<Setup> {
  const tasks = Array.from({ length: k }, (_, i) => `t${i}`);
  const [host, sandbox, spare, ...local] = await lab.add(['host', 'sbox', 'spare', ...tasks]);
  const raw = syntheticCatalog({
    services: o.services, tasksPerService: o.tasksPerService, networks: o.networks, localTasks: k,
    hostNetns: host!, sandboxNetns: sandbox!, localNetns: (i) => local[i]!,
  });
  const catalog = parse(raw);
  // As with a running agent: resolver ports known, so the DNS redirect is programmed too.
  const resolverPorts = new Map<string, ResolverPorts>([...local, spare!].map((p, i) => [p!, { udp: 40000 + i, tcp: 50000 + i }]));
  const facts: NodeFacts = { kernelRelease: release(), resolverPorts, marks: new Map(), probes: new Map() };
  return { catalog, raw, facts, spare: spare! };
}

function parse(raw: SyntheticCatalog): Catalog {
  const loaded = parseCatalog(JSON.stringify(raw));
  if (!loaded.ok) throw new Error(`synthetic catalog invalid: ${loaded.problems.slice(0, 3).map((p) => p.message).join('; ')}`);
  return loaded.catalog;
}

async function reconcile(
  kernel: Kernel, s: Setup, catalog: Catalog, state: StoredState, mode: Mode, scope: 'all' | 'changed' = 'all',
): Promise<{ result: ReconcileResult; written: number }> {
  const result = await reconcileNode({ catalog, node: NODE, kernel, facts: s.facts, state, mode, scope, now: Date.now(), concurrency: CONCURRENCY });
  const errors = realErrors(result);
  if (errors.length > 0) throw new Error(`reconcile (${mode}) failed:\n${errors.slice(0, 5).join('\n')}`);
  const written = result.namespaces.filter((ns) => ns.changes.length > 0).length;
  return { result, written };
}

/** Splits an iptables-save rule into argv, keeping "quoted comments" whole. */
export function ruleArgs(rule: string): string[] {
  const args: string[] = [];
  for (const m of rule.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) args.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return args;
}

/** The restore text as one iptables command line per chain and rule, in order. */
export function dockerCommands(restore: string): string[][] {
  const commands: string[][] = [];
  let table = 'filter';
  for (const line of restore.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':')) commands.push(['-t', table, '-N', line.slice(1).split(' ')[0]!]);
    else if (line.startsWith('-')) commands.push(['-t', table, ...ruleArgs(line)]);
  }
  return commands;
}

function restoreTexts(plan: NodePlan): { netns: string; family: 4 | 6; text: string }[] {
  return plan.namespaces.flatMap((ns) =>
    ([4, 6] as const).map((family) => ({ netns: ns.netns!, family, text: renderRestore(ns.chains, family) })).filter((r) => r.text !== ''));
}

function binary(backend: Backend, family: 4 | 6, tool: string): string {
  return `${family === 6 ? 'ip6tables' : 'iptables'}-${backend}${tool === '' ? '' : `-${tool}`}`;
}

async function floor(runner: Runner, backend: Backend, plan: NodePlan): Promise<void> {
  await mapLimit(restoreTexts(plan), CONCURRENCY, async ({ netns, family, text }) => {
    const r = await runner.run({ file: binary(backend, family, 'restore'), args: ['--noflush', '-w'], netns, input: text });
    if (r.exitCode !== 0) throw new Error(`floor: ${r.command}: ${r.stderr}`);
  });
}

/** The restore texts (or Docker's per-rule scripts) as files, one per namespace and family. */
function writeJobs(dir: string, plan: NodePlan, backend: Backend, sample: number): { restore: string; readWrite: string; docker: string; scale: number; commands: number } {
  const all = restoreTexts(plan);
  const picked = all.slice(0, Math.max(1, sample));
  let restore = '';
  let readWrite = '';
  let docker = '';
  let commands = 0;
  all.forEach(({ netns, family, text }, i) => {
    const file = join(dir, `restore-${i}`);
    writeFileSync(file, text);
    restore += `${netns} ${binary(backend, family, 'restore')} ${file}\n`;
    // Read first (every table, as vipmesh reads), then write the same payload.
    readWrite += `${netns} ${binary(backend, family, 'save')} ${binary(backend, family, 'restore')} ${file}\n`;
    if (i >= picked.length) return;
    const lines = dockerCommands(text).map((args) => [binary(backend, family, ''), '-w', ...args].map(shellQuote).join(' '));
    commands += lines.length;
    writeFileSync(join(dir, `docker-${i}.sh`), lines.join('\n') + '\n');
    docker += `${netns} sh ${join(dir, `docker-${i}.sh`)}\n`;
  });
  return { restore, readWrite, docker, scale: all.length / picked.length, commands };
}

const shellQuote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);

/**
 * Runs `nsenter --net=NS PROGRAM FILE` for every job line, CONCURRENCY at a time,
 * from one small shell (xargs), so no fork of a large process is counted: the
 * floor at its lowest, and Docker's way at the cost of its processes alone.
 */
async function fromShell(jobs: string, program: 'restore' | 'read+write' | 'script'): Promise<void> {
  const run = {
    restore: 'exec nsenter --net="$0" "$1" --noflush -w < "$2"',
    // One nsenter per namespace; in it, one save (thrown away) and one restore.
    'read+write': 'exec nsenter --net="$0" sh -c \'"$0" >/dev/null && exec "$1" --noflush -w < "$2"\' "$1" "$2" "$3"',
    script: 'exec nsenter --net="$0" "$1" -e "$2"',
  }[program];
  const r = await execa('xargs', ['-P', String(CONCURRENCY), '-n', program === 'read+write' ? '4' : '3', 'sh', '-c', run], { input: jobs, reject: false });
  if (r.exitCode !== 0) throw new Error(`xargs ${program}: ${r.stderr}`);
}

/** Adds one running task to one service: local (a new namespace) or on another node. */
function addTask(raw: SyntheticCatalog, service: number, local: string | undefined): SyntheticCatalog {
  const svc = raw.services[serviceName(service)]!;
  const [network] = Object.keys(svc.vips);
  const second = Number(svc.vips[network!]!.split('.')[1]);
  const task = {
    service: serviceName(service), node: local === undefined ? 'node-1' : NODE,
    netns: local ?? '/run/netns/remote-new', addresses: { [network!]: `10.${second}.250.250` },
  };
  return { ...raw, tasks: { ...raw.tasks, [`${taskName(service, 99)}`]: task } };
}

interface Row {
  readonly k: number;
  readonly rules: number;
  readonly fromEmpty: Measure;
  readonly noop: Measure;
  readonly floorShell: Measure;
  readonly floorReadWrite: Measure;
  readonly floorNode: Measure;
  readonly docker: Measure & { scale: number };
  readonly changes: Record<'localFull' | 'localChanged' | 'remoteFull' | 'remoteChanged', Measure & { read: number }>;
}

async function oneSize(k: number, o: Required<ReconcileBenchOptions>, backend: Backend): Promise<Row> {
  const lab = createLab();
  const runner = createPooledRunner(CONCURRENCY);
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-bench-'));
  try {
    const s = await setup(lab, k, o);
    const kernel = withFakeIpvs(createKernel(runner, { backend }), createFakeKernel({ namespaces: 'any' }));
    const plan = planNode(s.catalog, NODE, s.facts);
    const rules = restoreTexts(plan).reduce((n, r) => n + r.text.split('\n').filter((l) => l.startsWith('-')).length, 0);
    const jobs = writeJobs(dir, plan, backend, o.dockerSample);
    const clean = () => reconcile(kernel, s, s.catalog, EMPTY_STATE, 'cleanup');
    const rounds = async (fn: () => Promise<Measure>): Promise<Measure> => {
      const all: Measure[] = [];
      for (let r = 0; r < o.rounds; r++) all.push(await fn());
      const ms = median(all.map((m) => m.ms));
      return { ...all[0]!, ms };
    };

    let state = EMPTY_STATE;
    const fromEmpty = await rounds(async () => {
      await clean();
      return timed(runner, async () => {
        const { result, written } = await reconcile(kernel, s, s.catalog, EMPTY_STATE, 'apply');
        state = result.state;
        return written;
      });
    });
    const noop = await rounds(() => timed(runner, async () => (await reconcile(kernel, s, s.catalog, state, 'apply')).written));
    const floorShell = await rounds(async () => {
      await clean();
      return timed(runner, () => fromShell(jobs.restore, 'restore'));
    });
    const floorReadWrite = await rounds(async () => {
      await clean();
      return timed(runner, () => fromShell(jobs.readWrite, 'read+write'));
    });
    const nodeRunner = createRunner();
    const floorNode = await rounds(async () => {
      await clean();
      return timed(nodeRunner, () => floor(nodeRunner, backend, plan));
    });
    // One round: at one process per rule it is two orders slower, and steadier.
    await clean();
    const docker = await timed(runner, () => fromShell(jobs.docker, 'script'));

    // One change on top of a converged node, as a full pass (`vipmesh reconcile`)
    // and as a changed-only pass (what the agent runs between full ones). Each
    // starts from the same converged state.
    const base = s.catalog;
    const withLocal = parse(addTask(s.raw, 1, s.spare));
    const withRemote = parse(addTask(addTask(s.raw, 1, s.spare), 3, undefined));
    await clean();
    state = (await reconcile(kernel, s, base, EMPTY_STATE, 'apply')).result.state;
    const change = async (from: Catalog, to: Catalog, scope: 'all' | 'changed'): Promise<Measure & { read: number }> => {
      state = (await reconcile(kernel, s, from, state, 'apply')).result.state;
      let read = 0;
      const m = await timed(runner, async () => {
        const { result, written } = await reconcile(kernel, s, to, state, 'apply', scope);
        state = result.state;
        read = result.namespaces.length;
        return written;
      });
      return { ...m, read };
    };
    const changes = {
      localFull: await change(base, withLocal, 'all'),
      localChanged: await change(base, withLocal, 'changed'),
      remoteFull: await change(withLocal, withRemote, 'all'),
      remoteChanged: await change(withLocal, withRemote, 'changed'),
    };
    await reconcile(kernel, s, base, state, 'cleanup');
    const scale = jobs.scale;
    return {
      k, rules, fromEmpty, noop, floorShell, floorReadWrite, floorNode, changes,
      docker: { ...docker, ms: docker.ms * scale, commands: Math.round(jobs.commands * scale), scale },
    };
  } finally {
    await runner.close?.();
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!;
}

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

export async function runReconcileBench(options: ReconcileBenchOptions = {}): Promise<{ markdown: string }> {
  requireRoot('the reconcile benchmark');
  const o: Required<ReconcileBenchOptions> = {
    sizes: [10, 50, 200], services: 1000, tasksPerService: 10, networks: 10, rounds: 3, dockerSample: 20, ...options,
  };
  const backend = await detectBackend(createRunner());
  // The machine is shared: the load around the run says how far to trust its times.
  const loadBefore = await loadAverage();
  const rows: Row[] = [];
  for (const k of o.sizes) rows.push(await oneSize(k, o, backend));
  const loadAfter = await loadAverage();
  const out: string[] = [];
  out.push(`Catalog: ${o.services} services × ${o.tasksPerService} tasks over ${o.networks} networks (every 10th service publishes a port); ` +
    `K local task namespaces plus the node's host namespace and its ingress sandbox, all throwaway. ` +
    `Concurrency ${CONCURRENCY} namespaces for vipmesh, the floors and Docker's way alike; the floors and Docker's way run from one small shell (xargs -P). Floors: write only (one \`iptables-restore --noflush\` of vipmesh's payload per namespace and family); read+write (per namespace and family one \`nsenter\` running \`iptables-save\`, thrown away, then that restore: the read and the write a pass from empty cannot avoid); and the write-only floor with each restore forked by Node, as vipmesh once did. Time is the median of ${o.rounds} rounds (Docker's way: one round, on the first ${o.dockerSample} namespaces, scaled to all); ` +
    `IPVS and its vs.* sysctls are kept in memory (this kernel has none; the kernel-lane table measures them).`);
  out.push('');
  out.push('| K | rules | vipmesh from empty | agent forks | programs run | bytes written | kernel slab Δ | floor from a shell (write only) | vipmesh ÷ floor | floor read+write | vipmesh ÷ that | floor, each restore forked by Node | vipmesh ÷ that | Docker\'s way (1 command/rule) | commands | vipmesh ÷ Docker | nothing to do | forks / programs |');
  out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    out.push(`| ${r.k} | ${r.rules} | ${fmt(r.fromEmpty.ms)} | ${r.fromEmpty.spawns} | ${r.fromEmpty.commands} | ${kb(r.fromEmpty.bytes)} | ${(r.fromEmpty.slabKiB / 1024).toFixed(1)} MiB | ` +
      `${fmt(r.floorShell.ms)} | ${(r.fromEmpty.ms / r.floorShell.ms).toFixed(2)}× | ` +
      `${fmt(r.floorReadWrite.ms)} | ${(r.fromEmpty.ms / r.floorReadWrite.ms).toFixed(2)}× | ${fmt(r.floorNode.ms)} | ${(r.fromEmpty.ms / r.floorNode.ms).toFixed(2)}× | ` +
      `${fmt(r.docker.ms)}${r.docker.scale > 1 ? ` (${((1 / r.docker.scale) * 100).toFixed(0)}% sampled)` : ''} | ${r.docker.commands} | ` +
      `${(r.fromEmpty.ms / r.docker.ms).toFixed(3)}× | ${fmt(r.noop.ms)} | ${r.noop.spawns} / ${r.noop.commands} |`);
  }
  out.push('');
  out.push('One change on a converged node: a full pass (`vipmesh reconcile`) reads every namespace; a changed-only pass (the agent between full passes) ' +
    'reads and writes only the namespaces whose plan changed:');
  out.push('');
  out.push('| K | change | pass | time | agent forks / programs | namespaces read | namespaces written | bytes written |');
  out.push('|---:|---|---|---:|---:|---:|---:|---:|');
  const labels = {
    localFull: ['a local task added (a new namespace)', 'full'], localChanged: ['a local task added (a new namespace)', 'changed-only'],
    remoteFull: ['a remote task added (IPVS changes on its network)', 'full'], remoteChanged: ['a remote task added (IPVS changes on its network)', 'changed-only'],
  } as const;
  for (const r of rows) {
    for (const [key, [what, pass]] of Object.entries(labels) as [keyof typeof labels, readonly [string, string]][]) {
      const m = r.changes[key];
      out.push(`| ${r.k} | ${what} | ${pass} | ${fmt(m.ms)} | ${m.spawns} / ${m.commands} | ${m.read} | ${m.written} | ${kb(m.bytes)} |`);
    }
  }
  out.push('');
  out.push(`1-minute load average: ${loadBefore} before the run, ${loadAfter} after (other work on the machine).`);
  out.push('');
  out.push(`Machine: ${await machine()}. Command: \`sudo node dist/bench/reconcile.js\` (after \`npm run build\`).`);
  return { markdown: out.join('\n') };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const { markdown } = await runReconcileBench(sizes.length > 0 ? { sizes } : {});
  process.stdout.write(markdown + '\n');
}
