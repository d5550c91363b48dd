// One change to a 10 000-service × 10-task catalog held in etcd, seen →
// validated → planned, the incremental way (issue 15) against the full way, in
// one run. In this process, as the agent runs it: the agent's own watch
// (src/cluster/watch.ts: list once, then one watch on PREFIX/v1/; each response
// turned into a new view and validated), then planNode for the node with 10
// local tasks. Incremental: the watch validates each change by difference and
// planNode re-plans only the namespaces it reaches; full: the watch validates
// the whole union (catalogOf, as before issue 15) and the node is planned from
// scratch. Each change is one key put or deleted by a transaction; timed from
// sending it to the plan being ready (the reply of the transaction is not
// waited for: the watch may see the change first).
//   sudo node dist/bench/incremental.js [--quick]
//
// --agent: the same changes against ONE real `vipmesh agent` process (the
// node's host namespace, ingress sandbox and 10 task namespaces made for it),
// timed from the transaction's reply to the agent's pass line that followed
// its catalog line; the catalog line is written once DNS has the change
// (daemon.ts useCatalog), the pass line when the kernel has it. IPVS is kept in
// memory in the agent (bench/ipvs-in-memory.ts), as bench/cluster.ts does.
//   sudo node dist/bench/incremental.js --agent [--quick] [--label TEXT]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { execa } from 'execa';
import { formatProblems } from '../src/catalog/problems.js';
import type { Catalog } from '../src/catalog/types.js';
import type { ValidationResult } from '../src/catalog/validate.js';
import { type EtcdSource, connectEtcd } from '../src/cluster/connect.js';
import { entriesOf, liveKey, objectKey, rootOf } from '../src/cluster/layout.js';
import { type ClusterSnapshot, listCluster, watchCluster } from '../src/cluster/watch.js';
import { parseSource } from '../src/cluster/source.js';
import { forgetPlans, lastPlanPath, planNode, planNodeFromScratch } from '../src/plan/index.js';
import type { NodeFacts } from '../src/plan/types.js';
import { type LogLine, startAgentProcess } from '../test/helpers/agent.js';
import { type EtcdCluster, startEtcd } from '../test/helpers/etcd.js';
import { Undo, ms, percentile } from './agent.js';
import { createLab, machine, median, requireRoot } from './lab.js';
import { NODE, type SyntheticCatalog, serviceName, syntheticCatalog } from './synthetic.js';

const SELF = fileURLToPath(import.meta.url);
const FACTS: NodeFacts = { kernelRelease: '6.1.0', resolverPorts: new Map(), marks: new Map(), probes: new Map() };
const TARGET_P99_MS = 300;

interface Scale { readonly services: number; readonly tasksPerService: number; readonly changes: number }
const FULL: Scale = { services: 10_000, tasksPerService: 10, changes: 36 };
const QUICK: Scale = { services: 1000, tasksPerService: 10, changes: 12 };

const KINDS = [
  'published service +1 task', 'published service −1 task', 'internal service +1 task', 'internal service −1 task',
  'new internal service', 'that service removed',
] as const;
type Kind = (typeof KINDS)[number];

interface Change { readonly kind: Kind; readonly key: string; readonly value: string | undefined }

/**
 * Change i: a remote task added to a service then removed, or a service added
 * on a network local tasks are on (each local task there sees its VIP) then
 * removed: every other change leaves the catalog as it started.
 */
function changeAt(prefix: string, raw: SyntheticCatalog, s: Scale, i: number): Change {
  const kind = KINDS[i % KINDS.length]!;
  const p = Math.floor(i / KINDS.length);
  const published = kind.startsWith('published');
  // Every 10th service publishes a port (synthetic.ts); pick among those or the others.
  const index = published ? ((p * 37 + 3) % (s.services / 10)) * 10 : ((p * 37 + 3) * 10 + 1) % s.services;
  const service = serviceName(index);
  const svc = raw.services[service]!;
  const network = Object.keys(svc.vips)[0]!;
  const second = Number(network.slice('net-'.length)) + 1;
  const taskKey = objectKey(prefix, 'tasks', `${service}.99.inc${p}`);
  const serviceKey = objectKey(prefix, 'services', `svc-new-${p}`);
  switch (kind) {
    case 'published service +1 task':
    case 'internal service +1 task': {
      const addresses: Record<string, string> = { [network]: `10.${second}.250.${(p % 250) + 1}` };
      if (published) addresses['ingress'] = `10.255.250.${(p % 250) + 1}`;
      return { kind, key: taskKey, value: JSON.stringify({ service, node: 'node-1', netns: `/run/netns/remote-inc-${p}`, addresses }) };
    }
    case 'published service −1 task':
    case 'internal service −1 task':
      return { kind, key: taskKey, value: undefined };
    case 'new internal service':
      return { kind, key: serviceKey, value: JSON.stringify({ vips: { 'net-1': `10.2.251.${(p % 250) + 1}` } }) };
    case 'that service removed':
      return { kind, key: serviceKey, value: undefined };
  }
}

interface Sample {
  readonly kind: Kind;
  /** From sending the transaction to the watch's snapshot, validated. */
  readonly validatedMs: number;
  /** …to the plan ready. */
  readonly plannedMs: number;
  readonly validateOnly: number;
  readonly planOnly: number;
  readonly validation: string;
  readonly plan: string;
  readonly namespaces: number;
  /** The transaction's round trip: sent to its reply read. */
  readonly commitMs: number;
  /** From the reply (the commit known) to the plan ready; from sending, when the plan was ready before the reply was read. */
  readonly fromCommitMs: number;
}

async function measureMode(mode: 'incremental' | 'full', s: Scale, client: Etcd3, prefix: string, raw: SyntheticCatalog, initial: ClusterSnapshot): Promise<Sample[]> {
  if (!initial.catalog.ok) throw new Error('invalid');
  forgetPlans();
  // The plan the agent made at start: the one the first change is planned from.
  if (mode === 'incremental') planNode(initial.catalog.catalog, NODE, FACTS);
  let waiting: ((snapshot: ClusterSnapshot, at: number) => void) | undefined;
  const watch = watchCluster({
    client, prefix, initial, validation: mode, onSource: () => {},
    onSnapshot: (snapshot) => waiting?.(snapshot, performance.now()),
  });
  const samples: Sample[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 500)); // the watch established
    for (let i = 0; i < s.changes; i++) {
      const change = changeAt(prefix, raw, s, i);
      let arrived = 0;
      const seen = new Promise<{ result: ValidationResult; validation: string; planned: number; plan: string; namespaces: number; plannedAt: number }>((resolve) => {
        waiting = (snapshot, at) => {
          arrived = at;
          if (!snapshot.catalog.ok) throw new Error(`change ${i} refused:\n${formatProblems(snapshot.catalog.problems)}`);
          const catalog: Catalog = snapshot.catalog.catalog;
          const p0 = performance.now();
          const plan = mode === 'incremental' ? planNode(catalog, NODE, FACTS) : planNodeFromScratch(catalog, NODE, FACTS);
          const plannedAt = performance.now();
          resolve({
            result: snapshot.catalog, validation: snapshot.validation ?? '?', planned: plannedAt - p0,
            plan: mode === 'incremental' ? lastPlanPath() : 'full', namespaces: plan.namespaces.length, plannedAt,
          });
        };
      });
      const sent = performance.now();
      if (change.value === undefined) await client.delete().key(change.key);
      else await client.put(change.key).value(change.value);
      const replied = performance.now();
      const r = await seen;
      waiting = undefined;
      samples.push({
        kind: change.kind, validatedMs: arrived - sent, plannedMs: r.plannedAt - sent, validateOnly: 0, planOnly: r.planned,
        validation: r.validation, plan: r.plan, namespaces: r.namespaces,
        commitMs: replied - sent, fromCommitMs: r.plannedAt > replied ? r.plannedAt - replied : r.plannedAt - sent,
      });
      process.stderr.write(`incremental bench: ${mode}, ${change.kind}: ${ms(r.plannedAt - sent)} (${r.validation} validation, ${r.plan} plan)\n`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    watch.stop();
  }
  return samples;
}

export interface IncrementalBenchOptions { readonly quick?: boolean; readonly members?: number }

export async function runIncrementalBench(options: IncrementalBenchOptions = {}): Promise<{ markdown: string }> {
  const s = options.quick === true ? QUICK : FULL;
  const members = options.members ?? 3;
  const undo = new Undo();
  try {
    const load0 = (await execa('cat', ['/proc/loadavg'])).stdout.split(' ')[0];
    const etcd: EtcdCluster = await startEtcd(undo, { members });
    const prefix = '/vipmesh-bench-incr';
    const parsed = parseSource(etcd.source(prefix));
    if (!parsed.ok || parsed.source.kind !== 'etcd') throw new Error('startEtcd gave no etcd source');
    const client = await connectEtcd(parsed.source as EtcdSource);
    undo.after(() => client.close());
    const raw = syntheticCatalog({ services: s.services, tasksPerService: s.tasksPerService, networks: 10, localTasks: 10 });
    const entries = [...entriesOf(prefix, raw)];
    for (let i = 0; i < entries.length; i += 5000) {
      await client.kv.txn({
        compare: [], failure: [],
        success: entries.slice(i, i + 5000).map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })),
      });
    }
    const l0 = performance.now();
    const initial = await listCluster(client, prefix);
    const listMs = performance.now() - l0;
    if (!initial.catalog.ok) throw new Error(`invalid:\n${formatProblems(initial.catalog.problems)}`);
    const incremental = await measureMode('incremental', s, client, prefix, raw, initial);
    const full = await measureMode('full', s, client, prefix, raw, initial);
    await client.delete().prefix(rootOf(prefix));
    const load1 = (await execa('cat', ['/proc/loadavg'])).stdout.split(' ')[0];
    const row = (name: string, x: readonly Sample[]) => {
      const total = x.map((y) => y.plannedMs);
      const paths = (f: (y: Sample) => string) => [...new Set(x.map(f))].map((p) => `${p} ${x.filter((y) => f(y) === p).length}`).join(', ');
      const commit = x.map((y) => y.fromCommitMs);
      return `| ${name} | ${x.length} | ${ms(median(x.map((y) => y.commitMs)))} | ${ms(median(x.map((y) => y.validatedMs)))} | ${ms(median(x.map((y) => y.planOnly)))} | `
        + `**${ms(median(commit))}** | **${ms(percentile(commit, 0.99))}** | ${ms(median(total))} / ${ms(percentile(total, 0.99))} | ${paths((y) => y.validation)} | ${paths((y) => y.plan)} |`;
    };
    const byKind = (x: readonly Sample[]) => KINDS.map((k) => {
      const t = x.filter((y) => y.kind === k).map((y) => y.fromCommitMs);
      return `${ms(median(t))} / ${ms(Math.max(...t))}`;
    });
    const incP99 = percentile(incremental.map((y) => y.fromCommitMs), 0.99);
    const out = [
      `${s.services.toLocaleString('en')} services × ${s.tasksPerService} tasks over 10 networks (${entries.length.toLocaleString('en')} keys) in a ${members}-member etcd on loopback; `
        + `the agent's watch and planner in this process, for node ${NODE} (10 local tasks, its ingress sandbox; every 10th service publishes a port). `
        + `${s.changes} single changes, each one key put or deleted (${KINDS.join(', ')}, in turn), timed from the transaction's commit (its reply read; from sending it when the plan was ready first) to the plan ready: `
        + 'the watch response received, the view updated, the catalog validated (by difference, or the whole union), then planNode (by difference, or from scratch). '
        + 'Not in it: DNS, the pass writing to the kernel (bench/cluster.ts\'s propagation table has those, at 1 000 services).',
      '',
      '| path | changes | txn round trip (p50) | sent → seen + validated (p50) | plan (p50) | **commit → plan ready, p50** | **p99** | sent → plan ready, p50 / p99 | validation | plan |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
      row('incremental (issue 15)', incremental),
      row('full (before)', full),
      '',
      'By kind, commit → plan ready, p50 / max:',
      '',
      `| path | ${KINDS.join(' | ')} |`,
      `|---|${KINDS.map(() => '---:').join('|')}|`,
      `| incremental | ${byKind(incremental).join(' | ')} |`,
      `| full | ${byKind(full).join(' | ')} |`,
      '',
      `Target: p99 < ${TARGET_P99_MS} ms with the etcd source: **${ms(incP99)}** (${incP99 < TARGET_P99_MS ? 'met' : 'not met'}). `
        + `Listing the catalog at start (one range + full validation): ${ms(listMs)}. Load average (1 min) before and after: ${load0}, ${load1}. `
        + `Machine: ${await machine()}, Node ${process.version}. Reproduce with:`,
      '', '```sh', `npm run build && sudo node dist/bench/incremental.js${options.quick === true ? ' --quick' : ''}`, '```',
    ];
    return { markdown: out.join('\n') };
  } finally {
    await undo.run();
  }
}

// ---------------------------------------------------------------- one real agent

const IPVS_HOOK = pathToFileURL(fileURLToPath(new URL('./ipvs-in-memory.js', import.meta.url))).href;
const timeOf = (l: LogLine) => Date.parse(String(l['time']));
const AGENT_START_MS = 300_000;
const AGENT_CHANGE_MS = 60_000;
const LOCAL_TASKS = 10;

interface AgentSample {
  readonly kind: Kind;
  /** Reply of the transaction → the catalog line (seen, validated, DNS updated). */
  readonly catalogMs: number;
  /** Catalog line → the pass started (its line's time less its duration). */
  readonly waitMs: number;
  readonly passMs: number;
  /** Reply → the pass line. */
  readonly totalMs: number;
  readonly validation: string;
  readonly written: number;
}

const writtenBy = (pass: LogLine): number => {
  const w = (pass['written'] ?? {}) as Record<string, number>;
  return (w['iptables'] ?? 0) + (w['ipvs'] ?? 0) + (w['sysctl'] ?? 0) + (w['conntrack'] ?? 0);
};

export async function runAgentIncrementalBench(options: { readonly quick?: boolean; readonly label?: string } = {}): Promise<{ markdown: string }> {
  requireRoot('the agent incremental bench');
  const s = options.quick === true ? QUICK : FULL;
  const undo = new Undo();
  try {
    const load0 = (await execa('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ');
    const etcd: EtcdCluster = await startEtcd(undo, { members: 3 });
    const prefix = '/vipmesh-bench-incr-agent';
    const parsed = parseSource(etcd.source(prefix));
    if (!parsed.ok || parsed.source.kind !== 'etcd') throw new Error('startEtcd gave no etcd source');
    const client = await connectEtcd(parsed.source as EtcdSource);
    undo.after(() => client.close());
    const lab = createLab('vbi');
    undo.after(() => lab.close());
    const dir = mkdtempSync(join(tmpdir(), 'vipmesh-incrbench-'));
    undo.after(() => rmSync(dir, { recursive: true, force: true }));
    const [host, sbox, ...taskSpaces] = await lab.add(['h', 's', ...Array.from({ length: LOCAL_TASKS }, (_, k) => `t${k}`)]);
    for (const path of [host!, sbox!, ...taskSpaces]) await execa('ip', ['-n', path.slice('/run/netns/'.length), 'link', 'set', 'lo', 'up']);
    const raw = syntheticCatalog({
      services: s.services, tasksPerService: s.tasksPerService, networks: 10, localTasks: LOCAL_TASKS,
      hostNetns: host!, sandboxNetns: sbox!, localNetns: (k) => taskSpaces[k]!,
    });
    const entries = [...entriesOf(prefix, raw)];
    for (let i = 0; i < entries.length; i += 5000) {
      await client.kv.txn({
        compare: [], failure: [],
        success: entries.slice(i, i + 5000).map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })),
      });
    }
    for (const name of Object.keys(raw.nodes)) if (name !== NODE) await client.put(liveKey(prefix, name)).value('bench');

    const started = Date.now();
    const agent = startAgentProcess(undo, [
      '-c', etcd.source(prefix), '--node', NODE, '--listen', '127.0.0.1:0', '--sync-period', '30s', '--min-sync-period', '1s', '--upstream', '127.0.0.1:9',
    ], { VIPMESH_RUN_DIR: join(dir, 'run'), NODE_OPTIONS: `--import=${IPVS_HOOK}` });
    await agent.line('the agent ready', (l) => l.event === 'ready', 0, AGENT_START_MS);
    await agent.line('the lease held', (l) => l.event === 'lease' && l['state'] === 'held', 0, AGENT_START_MS);
    const startMs = Date.now() - started;
    // Settled: no line for 3 s.
    for (let count = -1; count !== agent.lines.length;) {
      count = agent.lines.length;
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
    process.stderr.write(`incremental bench: the agent is up in ${ms(startMs)}\n`);

    const samples: AgentSample[] = [];
    let failures = 0;
    for (let i = 0; i < s.changes; i++) {
      const change = changeAt(prefix, raw, s, i);
      const from = agent.lines.length;
      if (change.value === undefined) await client.delete().key(change.key);
      else await client.put(change.key).value(change.value);
      const replied = Date.now();
      const line = await agent.line(`the catalog line of change ${i}`, (l) => l.event === 'catalog', from, AGENT_CHANGE_MS);
      if (line['valid'] !== true) throw new Error(`change ${i}: the catalog was refused: ${JSON.stringify(line['problems'])}`);
      const after = agent.lines.indexOf(line) + 1;
      const pass = await agent.line(`the pass of change ${i}`, (l) => l.event === 'pass' && ((l['triggers'] as string[] | undefined) ?? []).includes('catalog'), after, AGENT_CHANGE_MS);
      failures += ((pass['failures'] as unknown[] | undefined) ?? []).length + (pass['error'] === undefined ? 0 : 1);
      const passMs = Number(pass['durationMs']);
      samples.push({
        kind: change.kind, catalogMs: timeOf(line) - replied, waitMs: timeOf(pass) - passMs - timeOf(line), passMs, totalMs: timeOf(pass) - replied,
        validation: String(line['validation'] ?? '?'), written: writtenBy(pass),
      });
      process.stderr.write(`incremental bench: agent, ${change.kind}: ${ms(samples.at(-1)!.totalMs)} (catalog line ${ms(samples.at(-1)!.catalogMs)}, pass ${ms(passMs)})\n`);
      // The runner allows a burst of 2 passes, then one per --min-sync-period: a change a second stays single.
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
    agent.child.kill('SIGTERM');
    await agent.exited;
    await client.delete().prefix(rootOf(prefix));
    const load1 = (await execa('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ');
    const p = (f: (x: AgentSample) => number, q: number) => percentile(samples.map(f), q);
    const paths = [...new Set(samples.map((x) => x.validation))].map((v) => `${v} ${samples.filter((x) => x.validation === v).length}`).join(', ');
    const label = options.label ?? 'this tree';
    const out = [
      `One real \`vipmesh agent\` (${label}) for ${NODE} (its host namespace, ingress sandbox and ${LOCAL_TASKS} task namespaces), `
        + `\`-c etcd://…/PREFIX --sync-period 30s --min-sync-period 1s\`, on ${s.services.toLocaleString('en')} services × ${s.tasksPerService} tasks over 10 networks `
        + `(${entries.length.toLocaleString('en')} keys) in a 3-member etcd on loopback, remote tasks on 9 other nodes kept live. `
        + `${s.changes} single changes (${KINDS.join(', ')}, in turn), a second apart, timed from the transaction's reply to the agent's \`event:"pass"\` line; `
        + 'the `event:"catalog"` line is written once the change is validated and DNS has it. IPVS in memory in the agent.',
      '',
      '| agent | changes | **reply → pass line, p50** | **p99** | max | reply → catalog line (seen, validated, DNS), p50 / p99 | catalog line → pass start, p50 | pass, p50 / p99 | validation | failures |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|',
      `| ${label} | ${samples.length} | **${ms(p((x) => x.totalMs, 0.5))}** | **${ms(p((x) => x.totalMs, 0.99))}** | ${ms(Math.max(...samples.map((x) => x.totalMs)))} | `
        + `${ms(p((x) => x.catalogMs, 0.5))} / ${ms(p((x) => x.catalogMs, 0.99))} | ${ms(p((x) => x.waitMs, 0.5))} | ${ms(p((x) => x.passMs, 0.5))} / ${ms(p((x) => x.passMs, 0.99))} | ${paths} | ${failures} |`,
      '',
      `Agent up (list, validate, first pass) in ${ms(startMs)}. Load average before: ${load0}; after: ${load1}. Machine: ${await machine()}, Node ${process.version}. Reproduce with:`,
      '', '```sh', `npm run build && sudo node dist/bench/incremental.js --agent${options.quick === true ? ' --quick' : ''}`, '```',
    ];
    return { markdown: out.join('\n') };
  } finally {
    await undo.run();
  }
}

if (process.argv[1] === SELF) {
  const quick = process.argv.includes('--quick');
  const at = process.argv.indexOf('--label');
  const label = at > 0 ? process.argv[at + 1] : undefined;
  const { markdown } = process.argv.includes('--agent')
    ? await runAgentIncrementalBench({ quick, ...(label === undefined ? {} : { label }) })
    : await runIncrementalBench({ quick });
  process.stdout.write(markdown + '\n');
}
