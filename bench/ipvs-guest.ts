// IPVS benchmark, run inside the kernel lane's guest (this machine's kernel has no
// IPVS): `VIPMESH_LANE_RUN=dist/bench/ipvs-guest.js test/lane/run.sh`, or through
// bench/ipvs.ts, which also pulls the table out of the console.
//
// In one throwaway namespace, through vipmesh's own path (the kernel adapter over
// nsenter + ipvsadm, and the reconciler's diffIpvs): program N fwmark services × R
// real servers from empty with one `ipvsadm -R`, then one change (a real server
// added, one deleted), and a pass with nothing to do. Each pass is timed step by
// step, as reconcile does it: observe (`ipvsadm -Ln`), diff, write (`ipvsadm -R`),
// read back, confirm. Also: kernel memory per service and per real server (from
// /proc/slabinfo and /proc/meminfo), and one `ipvsadm` process per service or
// real server (the per-object way) on a smaller set.
//
// Sizes come from the environment, which the guest's init gets from the kernel
// command line (bench/ipvs.ts passes them with VIPMESH_LANE_APPEND):
//   vipmesh_ipvs_services (1000), vipmesh_ipvs_reals (10), vipmesh_ipvs_rounds (5),
//   vipmesh_ipvs_percmd (20: services for the per-object comparison; 0 skips it).
// Prints progress on stderr and the markdown between BENCH-BEGIN ipvs / BENCH-END ipvs.
import { cpus, release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createRunner, type Runner } from '../src/kernel/exec.js';
import { createKernel } from '../src/kernel/index.js';
import { parseIpvsadmList } from '../src/kernel/parse-ipvsadm.js';
import { ipvsadmLine, renderIpvsOps } from '../src/kernel/ipvs.js';
import type { IpvsOp, Kernel, ObservedIpvs } from '../src/kernel/types.js';
import { type RealServer, type VirtualService } from '../src/plan/types.js';
import { diffIpvs } from '../src/reconcile/diff-ipvs.js';
import { readBackScope } from '../src/reconcile/run.js';
import type { DiffOptions } from '../src/reconcile/types.js';
import { renderIpvs } from '../src/render/ipvs.js';
import { Plumbing } from '../src/lab/plumbing.js';
import { bytesText, memoryDelta, settledMemory, type MemoryDelta } from './kernel-memory.js';
import { median } from './lab.js';

export const BEGIN = 'BENCH-BEGIN ipvs';
export const END = 'BENCH-END ipvs';
const FIRST_MARK = 0x56900000; // vipmesh's VIP block: diffIpvs only looks at its own marks

interface Options {
  readonly services: number;
  readonly reals: number;
  readonly rounds: number;
  readonly perCommand: number;
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw}: not a whole number`);
  return n;
}

function log(message: string): void {
  process.stderr.write(`ipvs-bench: ${message}\n`);
}

// --- the state to program ---------------------------------------------------------

function address(k: number): string {
  return `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
}

function realServer(k: number): RealServer {
  return { address: address(k), port: 0, weight: 1, task: `task-${k}` };
}

function services(count: number, reals: number): VirtualService[] {
  return Array.from({ length: count }, (_, i) => ({
    balances: { kind: 'vip', service: `svc-${i}`, network: 'net' },
    label: `svc-${i}/net`,
    fwmark: FIRST_MARK + i,
    scheduler: 'rr',
    persistence: 0,
    drainTimeout: 0,
    realServers: Array.from({ length: reals }, (_, j) => realServer(i * reals + j + 1)),
  }));
}

function withExtraReal(desired: readonly VirtualService[], index: number, extra: RealServer): VirtualService[] {
  return desired.map((vs, i) => (i === index ? { ...vs, realServers: [...vs.realServers, extra] } : vs));
}

const diffOptions = (): DiffOptions => ({
  manageDns: false,
  now: Date.now(),
  drainStarted: new Map(),
  // No task behind any real server: a leaving one with no connections goes at once.
  taskRunning: () => undefined,
});

// --- namespaces ---------------------------------------------------------------------

const RUN_ID = `ipvsb${randomBytes(2).toString('hex')}`;
const plumbing = new Plumbing();
let nsCount = 0;

/** A fresh namespace with lo up (IPVS refuses real servers where no interface is up). */
async function namespace(): Promise<string> {
  return `/run/netns/${await plumbing.ns(`${RUN_ID}-${nsCount++}`)}`;
}

async function dropNamespaces(): Promise<void> {
  await plumbing.remove();
}

// --- timing -------------------------------------------------------------------------

interface Step {
  ms: number;
  spawns: number;
  bytes: number;
}

async function step<T>(runner: Runner, fn: () => Promise<T>): Promise<[T, Step]> {
  const spawns = runner.stats.spawns;
  const bytes = runner.stats.bytesWritten;
  const started = performance.now();
  const value = await fn();
  return [value, { ms: performance.now() - started, spawns: runner.stats.spawns - spawns, bytes: runner.stats.bytesWritten - bytes }];
}

const STEPS = ['observe', 'diff', 'write', 'readBack', 'confirm'] as const;
type StepName = (typeof STEPS)[number];
type Pass = Record<StepName, Step> & { lines: number; first?: string };

function sum(pass: Pass): Step {
  return STEPS.reduce((t, s) => ({ ms: t.ms + pass[s].ms, spawns: t.spawns + pass[s].spawns, bytes: t.bytes + pass[s].bytes }), { ms: 0, spawns: 0, bytes: 0 });
}

function expectAvailable(ipvs: ObservedIpvs): Extract<ObservedIpvs, { available: true }> {
  if (!ipvs.available) throw new Error(`IPVS is not available in the guest: ${ipvs.reason}`);
  return ipvs;
}

/** One reconcile pass of one namespace's IPVS state, the way src/reconcile/run.ts does it. */
async function pass(kernel: Kernel, runner: Runner, netns: string, desired: readonly VirtualService[], expectLines?: number): Promise<Pass> {
  const [seen, observe] = await step(runner, () => kernel.readIpvs(netns));
  expectAvailable(seen);
  const [planned, diff] = await step(runner, async () => diffIpvs(desired, seen, diffOptions()));
  if (expectLines !== undefined && planned.ops.length !== expectLines) {
    throw new Error(`expected ${expectLines} ipvsadm line(s), the diff gave ${planned.ops.length}: ${planned.ops.slice(0, 3).map(ipvsadmLine).join(' | ')}`);
  }
  const [, write] = await step(runner, () => kernel.applyIpvs(netns, planned.ops));
  // Reconcile reads back only when it wrote something.
  const wrote = planned.ops.length > 0;
  // As reconcile does: a few changed services are read back alone, many the whole namespace.
  const scope = readBackScope(planned.ops);
  const [after, readBack] = await step(runner, async () => (wrote ? kernel.readIpvs(netns, scope && [...scope]) : seen));
  const wanted = scope ? desired.filter((v) => scope.has(v.fwmark)) : desired;
  const [left, confirm] = await step(runner, async () => (wrote ? diffIpvs(wanted, after, diffOptions()).changes.filter((c) => c.drift) : []));
  if (left.length > 0) throw new Error(`IPVS did not take every change: ${left.slice(0, 3).map((c) => c.text).join('; ')}`);
  const first = planned.ops[0];
  return { observe, diff, write, readBack, confirm, lines: planned.ops.length, ...(first === undefined ? {} : { first: ipvsadmLine(first) }) };
}

/**
 * Rounds of one kind of pass: each step's median, the median of the totals and of
 * write + read back (medians of sums, not sums of medians), and the totals' range.
 */
interface Summary {
  readonly step: Record<StepName, number>;
  readonly total: number;
  readonly writeRead: number;
  readonly totals: readonly number[];
  /** The same in every round: */
  readonly lines: number;
  readonly spawns: number;
  readonly bytes: number;
  readonly first?: string;
}

function summarize(passes: readonly Pass[]): Summary {
  const p = passes[0]!;
  const step = Object.fromEntries(STEPS.map((s) => [s, median(passes.map((x) => x[s].ms))])) as Record<StepName, number>;
  const totals = passes.map((x) => sum(x).ms);
  return {
    step, total: median(totals), writeRead: median(passes.map((x) => x.write.ms + x.readBack.ms)), totals,
    lines: p.lines, spawns: sum(p).spawns, bytes: sum(p).bytes, ...(p.first === undefined ? {} : { first: p.first }),
  };
}

// --- the per-object way -------------------------------------------------------------

/** One ipvsadm process per service and per real server, in order, as a loop of commands would. */
async function perObject(runner: Runner, netns: string, text: string): Promise<void> {
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const r = await runner.run({ file: 'ipvsadm', args: line.split(' '), netns });
    if (r.exitCode !== 0) throw new Error(`per-object: ${r.command} exited ${r.exitCode}: ${r.stderr}`);
  }
}

// --- formatting ---------------------------------------------------------------------

function fmt(ms: number): string {
  if (ms >= 120_000) return `${(ms / 60_000).toFixed(0)} min`;
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

const pct = (part: number, whole: number) => `${((part / whole) * 100).toFixed(part / whole < 0.01 ? 2 : 1)} %`;
const int = (n: number) => n.toLocaleString('en-US');

function range(values: readonly number[]): string {
  return values.length < 2 ? '' : ` (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;
}

// --- the run --------------------------------------------------------------------------

export async function runGuest(o: Options): Promise<string> {
  if (process.getuid?.() !== 0) throw new Error('the IPVS benchmark needs root: it creates network namespaces');
  const runner = createRunner();
  const kernel = createKernel(runner);
  const desired = services(o.services, o.reals);
  const objects = o.services * (1 + o.reals);
  const out: string[] = [];

  // (d) kernel memory first, on a kernel that has held no IPVS state yet: percpu
  // chunks that freed objects leave populated, and namespaces still being torn
  // down, would blur it later. Services alone, then their real servers.
  log(`kernel memory: ${o.services} services, then their real servers`);
  const memNs = await namespace();
  const m0 = await settledMemory();
  await kernel.applyIpvs(memNs, desired.map((vs): IpvsOp => ({ kind: 'add-service', fwmark: vs.fwmark, scheduler: vs.scheduler, persistence: vs.persistence })));
  const m1 = await settledMemory();
  await kernel.applyIpvs(memNs, desired.flatMap((vs) => vs.realServers.map((rs): IpvsOp => ({ kind: 'add-real-server', fwmark: vs.fwmark, address: rs.address, port: rs.port, weight: rs.weight }))));
  const m2 = await settledMemory();
  const memServices = memoryDelta(m0, m1);
  const memReals = memoryDelta(m1, m2);
  const memBoth = memoryDelta(m0, m2);
  await dropNamespaces();
  await sleep(3000); // let the namespace's teardown (a workqueue) finish before timing

  // (a)+(b) from empty: a fresh namespace per round.
  const full: Pass[] = [];
  let listing = { ms: 0, parseMs: 0, chars: 0 };
  let renderMatches = false;
  let converged = '';
  for (let round = 0; round < o.rounds; round++) {
    const netns = await namespace();
    log(`round ${round + 1}/${o.rounds}: ${o.services} services × ${o.reals} real servers from empty`);
    full.push(await pass(kernel, runner, netns, desired, objects));
    if (round === 0) {
      // The read back, split: the ipvsadm process vs vipmesh's parser; and what the diff wrote.
      const r = await runner.run({ file: 'ipvsadm', args: ['-Ln'], netns });
      const started = performance.now();
      const parsed = parseIpvsadmList(r.stdout);
      listing = { ms: r.durationMs, parseMs: performance.now() - started, chars: r.stdout.length };
      if (parsed.length !== o.services) throw new Error(`read back ${parsed.length} services, expected ${o.services}`);
      renderMatches = renderIpvsOps(diffIpvs(desired, { available: true, services: [] }, diffOptions()).ops) === renderIpvs(desired);
    }
    if (round < o.rounds - 1) await dropNamespaces();
    else converged = netns;
  }

  // (c) one change on the converged namespace, then back; and a pass with nothing to do.
  const adds: Pass[] = [];
  const deletes: Pass[] = [];
  const noops: Pass[] = [];
  const changeRounds = Math.max(o.rounds, 7);
  log(`${changeRounds} rounds of one real server added, then deleted`);
  for (let round = 0; round < changeRounds; round++) {
    const index = (round * 397) % o.services;
    const extra = realServer(0xfa0000 + round + 1); // 10.250.0.x: no other real server has it
    adds.push(await pass(kernel, runner, converged, withExtraReal(desired, index, extra), 1));
    deletes.push(await pass(kernel, runner, converged, desired, 1));
    noops.push(await pass(kernel, runner, converged, desired, 0));
  }
  await dropNamespaces();

  // The per-object way on a smaller set, against one ipvsadm -R of the same set.
  const small = services(Math.min(o.perCommand, o.services), o.reals);
  const smallObjects = small.length * (1 + o.reals);
  let perObj: { ms: number; spawns: number } | undefined;
  let restoreSmall: number | undefined;
  if (small.length > 0) {
    log(`per-object: ${small.length} services × ${o.reals} real servers, one ipvsadm each`);
    const text = renderIpvs(small);
    const a = await namespace();
    const ops = diffIpvs(small, { available: true, services: [] }, diffOptions()).ops;
    const [, one] = await step(runner, () => kernel.applyIpvs(a, ops));
    restoreSmall = one.ms;
    const b = await namespace();
    const [, each] = await step(runner, () => perObject(runner, b, text));
    perObj = { ms: each.ms, spawns: each.spawns };
    const got = expectAvailable(await kernel.readIpvs(b)).services;
    if (got.length !== small.length || got.some((s) => s.realServers.length !== o.reals)) throw new Error('per-object: the namespace does not hold the set');
    await dropNamespaces();
  }

  // --- the tables ---
  const f = summarize(full);
  const a = summarize(adds);
  const d = summarize(deletes);
  const n = summarize(noops);
  out.push(`IPVS in the kernel lane: a QEMU TCG guest (Linux ${release()}, ${cpus().length} vCPUs, emulated: read the ratios, not the absolute times). ` +
    `One namespace, ${int(o.services)} fwmark services × ${o.reals} real servers (rr, masq, weight 1): ${int(objects)} IPVS objects. ` +
    `Every pass goes through vipmesh's own path, as \`reconcile\` runs it for one namespace: observe (\`ipvsadm -Ln\`, parsed), diff, ` +
    `write (one \`ipvsadm -R\`), read back (\`ipvsadm -Ln\`) and confirm, each program run under \`nsenter\`. ` +
    `Each figure is the median of ${o.rounds === changeRounds ? `${o.rounds} rounds` : `${o.rounds} rounds (from empty) or ${changeRounds} (the others)`}: from empty in a fresh namespace each round, ` +
    'the others on the converged namespace, a real server added then deleted again each round (each step\'s median; the whole pass: the median of the totals, their range in brackets).');
  out.push('');
  out.push('| step | from empty | one real server added | one real server deleted | nothing to do |');
  out.push('|---|---:|---:|---:|---:|');
  const labels: Record<StepName, string> = {
    observe: 'observe (`ipvsadm -Ln` + parse)', diff: 'diff', write: 'write (`ipvsadm -R`)', readBack: 'read back (`ipvsadm -Ln` + parse)', confirm: 'confirm (diff again)',
  };
  for (const s of STEPS) out.push(`| ${labels[s]} | ${fmt(f.step[s])} | ${fmt(a.step[s])} | ${fmt(d.step[s])} | ${n.lines === 0 && (s === 'write' || s === 'readBack' || s === 'confirm') ? '—' : fmt(n.step[s])} |`);
  out.push(`| **whole pass** | **${fmt(f.total)}**${range(f.totals)} | **${fmt(a.total)}**${range(a.totals)} | **${fmt(d.total)}**${range(d.totals)} | **${fmt(n.total)}**${range(n.totals)} |`);
  out.push(`| ipvsadm lines written | ${int(f.lines)} | ${a.lines} | ${d.lines} | ${n.lines} |`);
  out.push(`| processes (nsenter → ipvsadm) | ${f.spawns} | ${a.spawns} | ${d.spawns} | ${n.spawns} |`);
  out.push(`| bytes to \`ipvsadm -R\` | ${bytesText(f.bytes)} | ${a.bytes} B | ${d.bytes} B | 0 |`);
  out.push('');
  out.push(`One change after that, against programming everything (the line written, e.g. \`${a.first ?? ''}\` and \`${d.first ?? ''}\`):`);
  out.push('');
  out.push('| one change ÷ from empty | added | deleted |');
  out.push('|---|---:|---:|');
  out.push(`| write only (\`ipvsadm -R\`: one line ÷ ${int(objects)}) | ${pct(a.step.write, f.step.write)} | ${pct(d.step.write, f.step.write)} |`);
  out.push(`| write + read back (what vipmesh sends, then its confirmation) | ${pct(a.writeRead, f.writeRead)} | ${pct(d.writeRead, f.writeRead)} |`);
  out.push(`| whole reconcile pass (observe + diff + write + read back + confirm) | ${pct(a.total, f.total)} | ${pct(d.total, f.total)} |`);
  out.push('');
  out.push(`Reading ${int(objects)} objects back: \`ipvsadm -Ln\` ${fmt(listing.ms)} (under \`nsenter\`, ${bytesText(listing.chars)} of text), ` +
    `vipmesh's parser ${fmt(listing.parseMs)}. The diff from empty ${renderMatches ? 'is' : 'is NOT'} byte for byte \`renderIpvs\`.`);
  if (perObj && restoreSmall !== undefined) {
    const scale = objects / smallObjects;
    out.push('');
    out.push(`The per-object way, on a smaller set: one \`ipvsadm\` command per service and per real server, each a process (\`nsenter\` + \`ipvsadm\`, ` +
      `from the agent, one after the other). Docker's libnetwork also sends one request per object, but over its own netlink socket, without a process each; ` +
      `that is what \`ipvsadm -R\` does inside its one process, so the kernel's work is the same in both rows and the difference is the processes:`);
    out.push('');
    out.push('| way | services × real servers | time | processes | per object |');
    out.push('|---|---|---:|---:|---:|');
    out.push(`| one \`ipvsadm -R\` (vipmesh's write) | ${small.length} × ${o.reals} | ${fmt(restoreSmall)} | 1 | ${fmt(restoreSmall / smallObjects)} |`);
    out.push(`| one \`ipvsadm\` per object | ${small.length} × ${o.reals} | ${fmt(perObj.ms)} | ${int(perObj.spawns)} | ${fmt(perObj.ms / smallObjects)} |`);
    if (scale !== 1) {
      out.push(`| one \`ipvsadm\` per object, extrapolated (linear) | ${o.services} × ${o.reals} | ${fmt(perObj.ms * scale)} | ${int(perObj.spawns * scale)} | |`);
      out.push(`| one \`ipvsadm -R\` (measured above) | ${o.services} × ${o.reals} | ${fmt(f.step.write)} | 1 | ${fmt(f.step.write / objects)} |`);
    }
    out.push('');
    out.push(`Per object: one process each is ${(perObj.ms / smallObjects / (restoreSmall / smallObjects)).toFixed(0)}× one \`ipvsadm -R\` at ${small.length} × ${o.reals}` +
      `${scale !== 1 ? `, ${((perObj.ms * scale) / f.step.write).toFixed(0)}× at ${o.services} × ${o.reals} (extrapolated)` : ''}.`);
  }
  out.push('');
  out.push(`Kernel memory, measured first (a fresh guest kernel, one namespace, each set written with one \`ipvsadm -R\`; deltas 1.5 s after, once ` +
    'the spawned processes are gone). Slab objects = active objects × object size over every cache in /proc/slabinfo; ' +
    'SUnreclaim and Percpu (the per-CPU counters of every service and real server) from /proc/meminfo, which move by whole pages:');
  out.push('');
  out.push('| what was added | slab objects | SUnreclaim | Percpu | caches that grew most (objects) |');
  out.push('|---|---:|---:|---:|---|');
  const memRow = (what: string, m: MemoryDelta | undefined, count: number) => {
    if (!m) return;
    const per = (v: number | undefined) => (v === undefined ? 'n/a' : `${bytesText(v)} (${bytesText(v / count)} each)`);
    out.push(`| ${what} | ${per(m.slabObjects)} | ${per(m.sunreclaim)} | ${per(m.percpu)} | ${m.caches.map((c) => `${c.name} ${c.objects >= 0 ? '+' : ''}${int(c.objects)}`).join(', ')} |`);
  };
  memRow(`${int(o.services)} services alone`, memServices, o.services);
  memRow(`then their ${int(o.services * o.reals)} real servers`, memReals, o.services * o.reals);
  memRow(`both ("each": one service with its ${o.reals} real servers)`, memBoth, o.services);
  return out.join('\n');
}

async function main(): Promise<void> {
  const o: Options = {
    services: envNumber('vipmesh_ipvs_services', 1000),
    reals: envNumber('vipmesh_ipvs_reals', 10),
    rounds: Math.max(1, envNumber('vipmesh_ipvs_rounds', 5)),
    perCommand: envNumber('vipmesh_ipvs_percmd', 20),
  };
  if (o.services < 1 || o.reals < 1) throw new Error('vipmesh_ipvs_services and vipmesh_ipvs_reals must be at least 1');
  try {
    const markdown = await runGuest(o);
    process.stdout.write(`${BEGIN}\n${markdown}\n${END}\n`);
  } finally {
    await dropNamespaces();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main().catch((error: unknown) => {
    log(`failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
