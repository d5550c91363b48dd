// The cluster catalog on etcd (issue 12, SPEC §6), measured two ways:
//  1. propagation: N agents, each a real child process playing one node (its
//     host namespace, its ingress sandbox and two task namespaces), watching
//     one 1 000-service catalog in a 3-member etcd on loopback; single changes
//     pushed as `catalog push` pushes them (src/cluster/push.ts), each timed
//     from the transaction's commit to the LAST agent's pass that programmed it;
//  2. cost: what a change costs etcd (the transaction's keys and values, each
//     member's WAL bytes, the watch events etcd sent per agent, from its
//     /metrics), and listing a 10 000-service × 10-task catalog from etcd and
//     planning it, against loading the same from a JSON file.
// Most tasks are remote: they run on nodes no agent plays here, whose liveness
// keys the benchmark puts itself (no lease), so every agent serves them. IPVS
// is kept in memory in the agents (this kernel has none; ipvs-in-memory.ts).
//   sudo node dist/bench/cluster.js [--quick]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { execa } from 'execa';
import { loadCatalog } from '../src/catalog/load.js';
import { formatProblems } from '../src/catalog/problems.js';
import { type EtcdSource, connectEtcd } from '../src/cluster/connect.js';
import { catalogOf, entriesOf, liveKey, rootOf } from '../src/cluster/layout.js';
import { listPrefix } from '../src/cluster/list.js';
import { pushEntries } from '../src/cluster/push.js';
import { parseSource } from '../src/cluster/source.js';
import { planNode } from '../src/plan/index.js';
import type { NodeFacts } from '../src/plan/types.js';
import { type AgentProcess, type LogLine, startAgentProcess } from '../test/helpers/agent.js';
import { type EtcdCluster, startEtcd } from '../test/helpers/etcd.js';
import { Undo, ms, percentile } from './agent.js';
import { createLab, machine, median, requireRoot } from './lab.js';
import { NODE, type SyntheticCatalog, syntheticCatalog } from './synthetic.js';

const SELF = fileURLToPath(import.meta.url);
const IPVS_HOOK = pathToFileURL(fileURLToPath(new URL('./ipvs-in-memory.js', import.meta.url))).href;

interface Scale {
  readonly agents: readonly number[];
  readonly services: number;
  readonly tasksPerService: number;
  readonly networks: number;
  readonly changes: number;
  readonly list: { readonly services: number; readonly tasksPerService: number };
  readonly listRuns: number;
}

const FULL: Scale = {
  agents: [2, 5, 10], services: 1000, tasksPerService: 3, networks: 10, changes: 30,
  list: { services: 10_000, tasksPerService: 10 }, listRuns: 3,
};
const QUICK: Scale = {
  agents: [2, 5], services: 1000, tasksPerService: 3, networks: 10, changes: 8,
  list: { services: 1000, tasksPerService: 10 }, listRuns: 3,
};

/** Local tasks per agent's node, each in its own namespace. */
const TASKS_PER_NODE = 2;
/** Nodes that only hold remote tasks: node-1 … node-9 of the synthetic catalog, live but played by no agent. */
const PHANTOM_NODES = 9;
/** The first pass of N agents started together on a busy machine; only catches a hang. */
const START_MS = 300_000;
const CHANGE_MS = 60_000;
const TARGET_P99_MS = 1500;
const TARGET_AGENTS = 10;
/** The planner's view of the node: fixed, as bench/plan.ts has it. */
const FACTS: NodeFacts = { kernelRelease: '6.1.0', resolverPorts: new Map(), marks: new Map(), probes: new Map() };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isPass = (l: LogLine) => l.event === 'pass';
/** When the agent wrote the line (pino's ISO time), as Date.now() counts. */
const timeOf = (l: LogLine) => Date.parse(String(l['time']));
const agentName = (j: number) => `agent-${j}`;
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

function sourceOf(etcd: EtcdCluster, prefix: string): EtcdSource {
  const parsed = parseSource(etcd.source(prefix));
  if (!parsed.ok || parsed.source.kind !== 'etcd') throw new Error('startEtcd gave no etcd source');
  return parsed.source;
}

// ---------------------------------------------------------------- the catalog

interface NodeSpaces {
  readonly host: string;
  readonly sbox: string;
  readonly tasks: readonly string[];
}

/**
 * The synthetic catalog with its local tasks dealt to the agents' nodes, two
 * each, and node-0 (the synthetic local node) replaced by them; the remote
 * tasks stay on node-1 … node-9.
 */
function clusterCatalog(s: Scale, spaces: readonly NodeSpaces[]): SyntheticCatalog {
  const paths = spaces.flatMap((n) => n.tasks);
  const owner = new Map(spaces.flatMap((n, j) => n.tasks.map((path) => [path, j] as const)));
  const raw = syntheticCatalog({
    services: s.services, tasksPerService: s.tasksPerService, networks: s.networks, localTasks: paths.length,
    nodes: PHANTOM_NODES + 1, localNetns: (k) => paths[k]!,
  });
  const nodes: Record<string, object> = { ...raw.nodes };
  delete nodes[NODE];
  spaces.forEach((n, j) => {
    nodes[agentName(j)] = { address: `192.0.2.${100 + j}`, netns: n.host, ingressSandbox: { netns: n.sbox, address: `10.255.0.${100 + j}` } };
  });
  const tasks = Object.fromEntries(Object.entries(raw.tasks).map(([name, task]) =>
    [name, task.node === NODE ? { ...task, node: agentName(owner.get(task.netns)!) } : task] as const));
  return { ...raw, nodes, tasks };
}

type ChangeKind = 'published service +1 task' | 'published service −1 task' | 'internal service +1 task' | 'internal service −1 task';
const KINDS: readonly ChangeKind[] = ['published service +1 task', 'published service −1 task', 'internal service +1 task', 'internal service −1 task'];

/**
 * Change i on `base`: a remote task (on node-1) added to a service, then removed
 * again, so every other change leaves the catalog as it started. A published
 * service is in every node's ingress sandbox, so every agent programs the
 * change; an internal one only where a local task shares its network.
 */
function changeAt(base: SyntheticCatalog, i: number): { kind: ChangeKind; doc: SyntheticCatalog } {
  const kind = KINDS[i % KINDS.length]!;
  const p = Math.floor(i / KINDS.length);
  const services = Object.entries(base.services);
  const published = services.filter(([, svc]) => svc.ports !== undefined);
  const internal = services.filter(([, svc]) => svc.ports === undefined);
  const list = kind.startsWith('published') ? published : internal;
  const [service, svc] = list[(p * 37 + 3) % list.length]!;
  if (kind.endsWith('−1 task')) return { kind, doc: base };
  const network = Object.keys(svc.vips)[0]!;
  const second = Number(network.slice('net-'.length)) + 1;
  const addresses: Record<string, string> = { [network]: `10.${second}.200.${(p % 250) + 1}` };
  if (svc.ports !== undefined) addresses['ingress'] = `10.255.200.${(p % 250) + 1}`;
  const task = { service, node: 'node-1', netns: `/run/netns/remote-bench-${p}`, addresses };
  return { kind, doc: { ...base, tasks: { ...base.tasks, [`${service}.99.cl${p}`]: task } } };
}

/** Bytes of keys and values the transaction from `before` to `after` carries: puts of keys and values, deletes of keys. */
function txnBytes(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): { bytes: number; keys: number } {
  let total = 0;
  let keys = 0;
  for (const [key, value] of after) {
    if (before.get(key) === value) continue;
    total += bytes(key) + bytes(value);
    keys++;
  }
  for (const key of before.keys()) {
    if (after.has(key)) continue;
    total += bytes(key);
    keys++;
  }
  return { bytes: total, keys };
}

// ---------------------------------------------------------------- etcd's own counts

const COUNTERS = ['etcd_disk_wal_write_bytes_total', 'etcd_debugging_mvcc_events_total', 'etcd_mvcc_put_total', 'etcd_mvcc_delete_total'] as const;
type Counter = (typeof COUNTERS)[number];

/** Each member's counters, from its client URL's /metrics. */
async function etcdCounters(etcd: EtcdCluster): Promise<Record<Counter, number>[]> {
  return Promise.all(etcd.endpoints.map(async (endpoint) => {
    const text = await (await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    return Object.fromEntries(COUNTERS.map((name) => [name, Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN)])) as Record<Counter, number>;
  }));
}

/** Revokes every lease: a stopped agent's lease would otherwise expire (a raft write) during the next round's window. */
async function revokeLeases(etcd: EtcdCluster): Promise<void> {
  const ids = (await etcd.etcdctl(['lease', 'list'])).split('\n').slice(1).map((l) => l.trim()).filter((l) => /^[0-9a-f]+$/.test(l));
  for (const id of ids) await etcd.etcdctl(['lease', 'revoke', id]).catch(() => {});
}

// ---------------------------------------------------------------- 1. propagation

interface Programmed {
  readonly kind: ChangeKind;
  /** From the commit to the last agent's pass line. */
  readonly lastMs: number;
  readonly firstMs: number;
  /** From the commit to the last agent's catalog line (the change seen, validated, DNS updated). */
  readonly seenMs: number;
  /** pushEntries: list, diff, commit. */
  readonly pushMs: number;
  /** Agents whose pass wrote anything to the kernel. */
  readonly wrote: number;
  readonly txnBytes: number;
  readonly txnKeys: number;
}

interface Round {
  readonly agents: number;
  readonly results: readonly Programmed[];
  readonly startMs: number;
  readonly perChange: Record<Counter, number>;
  readonly failures: number;
}

const writtenBy = (pass: LogLine): number => Object.values((pass['written'] as Record<string, number> | undefined) ?? {}).reduce((a, b) => a + b, 0);

/** Until no agent has logged a line for `quietMs` (agents settle after each other's leases appear). */
async function quiet(agents: readonly AgentProcess[], quietMs: number, capMs: number): Promise<void> {
  const end = Date.now() + capMs;
  let counts = agents.map((a) => a.lines.length);
  let still = Date.now();
  while (Date.now() < end) {
    await sleep(250);
    const now = agents.map((a) => a.lines.length);
    if (now.some((n, i) => n !== counts[i])) {
      counts = now;
      still = Date.now();
    } else if (Date.now() - still >= quietMs) {
      return;
    }
  }
}

async function measureRound(s: Scale, etcd: EtcdCluster, client: Etcd3, n: number): Promise<Round> {
  const undo = new Undo();
  try {
    const prefix = `/vipmesh-bench-${n}`;
    const source = sourceOf(etcd, prefix);
    const lab = createLab('vbc');
    undo.after(() => lab.close());
    const dir = mkdtempSync(join(tmpdir(), 'vipmesh-clusterbench-'));
    undo.after(() => rmSync(dir, { recursive: true, force: true }));
    const spaces: NodeSpaces[] = [];
    for (let j = 0; j < n; j++) {
      const [host, sbox, ...tasks] = await lab.add([`h${j}`, `s${j}`, ...Array.from({ length: TASKS_PER_NODE }, (_, k) => `t${j}-${k}`)]);
      spaces.push({ host: host!, sbox: sbox!, tasks });
    }
    const all = spaces.flatMap((x) => [x.host, x.sbox, ...x.tasks]).map((path) => path.slice('/run/netns/'.length));
    for (let i = 0; i < all.length; i += 16) await Promise.all(all.slice(i, i + 16).map((name) => execa('ip', ['-n', name, 'link', 'set', 'lo', 'up'])));

    const base = clusterCatalog(s, spaces);
    let entries = entriesOf(prefix, base);
    await pushEntries(client, source, entries);
    for (let k = 1; k <= PHANTOM_NODES; k++) await client.put(liveKey(prefix, `node-${k}`)).value('bench');

    const started = Date.now();
    const agents = spaces.map((_, j) => startAgentProcess(undo, [
      '-c', etcd.source(prefix), '--node', agentName(j), '--listen', '127.0.0.1:0', '--sync-period', '30s', '--min-sync-period', '1s', '--upstream', '127.0.0.1:9',
    ], { VIPMESH_RUN_DIR: join(dir, `run-${j}`), NODE_OPTIONS: `--import=${IPVS_HOOK}` }));
    await Promise.all(agents.map((a) => a.line('the agent ready', (l) => l.event === 'ready', 0, START_MS)));
    await Promise.all(agents.map((a) => a.line('the lease held', (l) => l.event === 'lease' && l['state'] === 'held', 0, START_MS)));
    const startMs = Date.now() - started;
    // Each agent passes again as the others' live keys appear; then all is still.
    await quiet(agents, 2000, 60_000);
    process.stderr.write(`cluster bench: ${n} agents up in ${ms(startMs)}\n`);

    const counters0 = await etcdCounters(etcd);
    const results: Programmed[] = [];
    let failures = 0;
    for (let i = 0; i < s.changes; i++) {
      const { kind, doc } = changeAt(base, i);
      const next = entriesOf(prefix, doc);
      const cost = txnBytes(entries, next);
      const from = agents.map((a) => a.lines.length);
      const t0 = Date.now();
      await pushEntries(client, source, next);
      const committed = Date.now();
      entries = next;
      const expected = Object.keys(doc.tasks).length;
      const seen = await Promise.all(agents.map(async (a, j) => {
        const line = await a.line(`agent ${j}'s catalog line of change ${i}`, (l) => l.event === 'catalog', from[j], CHANGE_MS);
        if (line['valid'] !== true || line['tasks'] !== expected) throw new Error(`agent ${j}, change ${i}: a catalog line with ${String(line['tasks'])} tasks (valid: ${String(line['valid'])}), ${expected} expected`);
        const after = a.lines.indexOf(line) + 1;
        const pass = await a.line(`agent ${j}'s pass of change ${i}`, (l) => isPass(l) && ((l['triggers'] as string[] | undefined) ?? []).includes('catalog'), after, CHANGE_MS);
        return { seen: timeOf(line), pass };
      }));
      const passes = seen.map((x) => x.pass);
      failures += passes.reduce((m, p) => m + (((p['failures'] as unknown[] | undefined) ?? []).length) + (p['error'] === undefined ? 0 : 1), 0);
      results.push({
        kind,
        lastMs: Math.max(...passes.map(timeOf)) - committed,
        firstMs: Math.min(...passes.map(timeOf)) - committed,
        seenMs: Math.max(...seen.map((x) => x.seen)) - committed,
        pushMs: committed - t0,
        wrote: passes.filter((p) => writtenBy(p) > 0).length,
        txnBytes: cost.bytes, txnKeys: cost.keys,
      });
      process.stderr.write(`cluster bench: ${n} agents, ${kind}: last agent ${ms(results.at(-1)!.lastMs)}\n`);
      // The runner allows a burst of 2 passes, then one per --min-sync-period: a change a second stays single.
      await sleep(1100);
    }
    const counters1 = await etcdCounters(etcd);
    // Per change: WAL bytes per member (mean of the members), the watch events every member sent, per agent.
    const delta = (name: Counter) => counters1.reduce((m, c, k) => m + c[name] - counters0[k]![name], 0);
    const perChange = Object.fromEntries(COUNTERS.map((name) => [name, delta(name) / s.changes])) as Record<Counter, number>;
    perChange.etcd_disk_wal_write_bytes_total /= etcd.endpoints.length;
    perChange.etcd_debugging_mvcc_events_total /= n;
    perChange.etcd_mvcc_put_total /= etcd.endpoints.length;
    perChange.etcd_mvcc_delete_total /= etcd.endpoints.length;
    for (const agent of agents) {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    return { agents: n, results, startMs, perChange, failures };
  } finally {
    await undo.run();
    await revokeLeases(etcd).catch(() => {});
  }
}

function propagationTable(s: Scale, rounds: readonly Round[]): string[] {
  const out = [
    `N agents, each a real \`vipmesh agent\` process playing one node (its host namespace, ingress sandbox and ${TASKS_PER_NODE} task namespaces), `
      + `with \`-c etcd://…/PREFIX --sync-period 30s --min-sync-period 1s\`, watching one catalog of ${s.services.toLocaleString('en')} services × ${s.tasksPerService} tasks over ${s.networks} networks `
      + `(every 10th service publishing a port) in a 3-member etcd 3.4 on loopback; all but the agents' own ${TASKS_PER_NODE} tasks each run on ${PHANTOM_NODES} other nodes, `
      + 'live (their keys put by the benchmark) but played by no agent. '
      + `${s.changes} single changes, one at a time, about a second apart, each pushed as \`vipmesh catalog push\` pushes (list, diff, one conditional transaction; src/cluster/push.ts): `
      + 'a remote task added to a service, then removed. A published service is in every node\'s ingress sandbox, so every agent programs it; an internal one only on nodes with a task on its network '
      + '(the others still take the catalog and pass, writing nothing). '
      + 'Time from the transaction\'s commit (its reply) to the pass line (`event:"pass"`, its `time`) that followed the agent\'s `event:"catalog"` line for the change, '
      + 'in the last agent to log it; DNS is updated before that pass starts. IPVS kept in memory in the agents (this kernel has none).',
    '',
    '| agents | changes | **p50** | **p99** | max | first agent (p50) | last agent saw it (p50) | push: list + diff + commit (p50) | agents that wrote (median) | failures | agents up in |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rounds) {
    const p = (f: (x: Programmed) => number, q: number) => percentile(r.results.map(f), q);
    out.push(`| ${r.agents} | ${r.results.length} | **${ms(p((x) => x.lastMs, 0.5))}** | **${ms(p((x) => x.lastMs, 0.99))}** | ${ms(Math.max(...r.results.map((x) => x.lastMs)))} | `
      + `${ms(p((x) => x.firstMs, 0.5))} | ${ms(p((x) => x.seenMs, 0.5))} | ${ms(p((x) => x.pushMs, 0.5))} | ${median(r.results.map((x) => x.wrote))} / ${r.agents} | ${r.failures} | ${ms(r.startMs)} |`);
  }
  out.push('', 'By kind of change: p50 / p99 of the last agent, and the agents whose pass wrote anything to the kernel (median):', '', `| agents | ${KINDS.join(' | ')} |`, `|---:|${KINDS.map(() => '---:').join('|')}|`);
  for (const r of rounds) {
    out.push(`| ${r.agents} | ${KINDS.map((kind) => {
      const list = r.results.filter((x) => x.kind === kind).map((x) => x.lastMs);
      const wrote = r.results.filter((x) => x.kind === kind).map((x) => x.wrote);
      return list.length === 0 ? '—' : `${ms(percentile(list, 0.5))} / ${ms(percentile(list, 0.99))} (${median(wrote)} / ${r.agents} wrote)`;
    }).join(' | ')} |`);
  }
  const at = rounds.find((r) => r.agents === TARGET_AGENTS);
  out.push('', at === undefined
    ? `Target: p99 < ${ms(TARGET_P99_MS)} at ${TARGET_AGENTS} agents (not run here).`
    : `Target: p99 < ${ms(TARGET_P99_MS)} at ${TARGET_AGENTS} agents: **${ms(percentile(at.results.map((x) => x.lastMs), 0.99))}**.`);
  return out;
}

function costTable(rounds: readonly Round[]): string[] {
  const out = [
    'Per change, over the same changes: the transaction\'s payload (keys and values put, keys deleted: what `catalog push` sends beyond its compares), '
      + 'what etcd\'s own /metrics counted over the window — WAL bytes written (`etcd_disk_wal_write_bytes_total`, per member: each member writes every entry), '
      + 'keys put and deleted (`etcd_mvcc_put_total`, `etcd_mvcc_delete_total`, per member), and watch events sent (`etcd_debugging_mvcc_events_total` summed over the members, '
      + 'divided by the agents: each agent has one watch on PREFIX/v1/). Nothing else writes in the window: the agents\' lease keepalives are not raft entries in etcd 3.4, and no task has a probe.',
    '',
    '| agents | keys in the txn | txn keys + values | WAL bytes per member | keys put + deleted per member | **watch events per agent** |',
    '|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rounds) {
    const c = r.perChange;
    out.push(`| ${r.agents} | ${median(r.results.map((x) => x.txnKeys))} | ${median(r.results.map((x) => x.txnBytes))} B | ${c.etcd_disk_wal_write_bytes_total.toFixed(0)} B | `
      + `${(c.etcd_mvcc_put_total + c.etcd_mvcc_delete_total).toFixed(2)} | **${c.etcd_debugging_mvcc_events_total.toFixed(2)}** |`);
  }
  return out;
}

// ---------------------------------------------------------------- 2. list and plan against a file

interface ListResult {
  readonly keys: number;
  readonly listedBytes: number;
  readonly fileBytes: number;
  readonly etcd: { list: number; validate: number; plan: number };
  readonly file: { load: number; plan: number };
}

async function measureList(s: Scale, etcd: EtcdCluster, client: Etcd3): Promise<ListResult> {
  const undo = new Undo();
  try {
    const prefix = '/vipmesh-bench-list';
    const raw = syntheticCatalog({ services: s.list.services, tasksPerService: s.list.tasksPerService, networks: 10, localTasks: 10 });
    const entries = [...entriesOf(prefix, raw)];
    // Written in slices (the setup, not measured): one transaction of this size is what push does, and is not what is timed here.
    for (let i = 0; i < entries.length; i += 5000) {
      await client.kv.txn({
        compare: [], failure: [],
        success: entries.slice(i, i + 5000).map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })),
      });
    }
    const dir = mkdtempSync(join(tmpdir(), 'vipmesh-clusterbench-'));
    undo.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'catalog.json');
    const text = JSON.stringify(raw);
    writeFileSync(file, text);

    const fromEtcd: { list: number; validate: number; plan: number }[] = [];
    const fromFile: { load: number; plan: number }[] = [];
    let listedBytes = 0;
    let keys = 0;
    await listPrefix(client, `${rootOf(prefix)}networks/`); // the connection up before timing
    for (let run = 0; run < s.listRuns; run++) {
      const t0 = performance.now();
      const listing = await listPrefix(client, rootOf(prefix));
      const t1 = performance.now();
      const result = catalogOf(prefix, [...listing.entries].map(([key, held]) => [key, held.value] as const));
      const t2 = performance.now();
      if (!result.ok) throw new Error(`the listed catalog is invalid:\n${formatProblems(result.problems)}`);
      const plan = planNode(result.catalog, NODE, FACTS);
      const t3 = performance.now();
      fromEtcd.push({ list: t1 - t0, validate: t2 - t1, plan: t3 - t2 });
      keys = listing.entries.size;
      listedBytes = [...listing.entries].reduce((m, [key, held]) => m + bytes(key) + bytes(held.value), 0);

      const u0 = performance.now();
      const loaded = await loadCatalog(file);
      const u1 = performance.now();
      if (!loaded.ok) throw new Error(`${file} is invalid:\n${formatProblems(loaded.problems)}`);
      const filePlan = planNode(loaded.catalog, NODE, FACTS);
      const u2 = performance.now();
      fromFile.push({ load: u1 - u0, plan: u2 - u1 });
      if (filePlan.namespaces.length !== plan.namespaces.length) throw new Error('the catalog from etcd and from the file plan differently');
    }
    await client.delete().prefix(rootOf(prefix));
    const m = <T>(list: readonly T[], f: (x: T) => number) => median(list.map(f));
    return {
      keys, listedBytes, fileBytes: bytes(text),
      etcd: { list: m(fromEtcd, (x) => x.list), validate: m(fromEtcd, (x) => x.validate), plan: m(fromEtcd, (x) => x.plan) },
      file: { load: m(fromFile, (x) => x.load), plan: m(fromFile, (x) => x.plan) },
    };
  } finally {
    await undo.run();
  }
}

function listTable(s: Scale, r: ListResult): string[] {
  const etcdTotal = r.etcd.list + r.etcd.validate + r.etcd.plan;
  const fileTotal = r.file.load + r.file.plan;
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
  return [
    `A ${s.list.services.toLocaleString('en')}-service × ${s.list.tasksPerService}-task catalog (${r.keys.toLocaleString('en')} keys) read the way an agent starting on it reads it, in this process: `
      + 'from etcd, one range over PREFIX/v1/ (`listPrefix`, a warm client) then the union assembled and validated (`catalogOf`); from a file, `loadCatalog` (read, parse, validate); '
      + `then \`planNode\` for one node with 10 local tasks. Median of ${s.listRuns} runs, etcd and file taking turns.`,
    '',
    '| source | bytes read | read | assemble + validate | plan | **total** |',
    '|---|---:|---:|---:|---:|---:|',
    `| etcd (3 members, loopback) | ${mb(r.listedBytes)} (keys + values) | ${ms(r.etcd.list)} | ${ms(r.etcd.validate)} | ${ms(r.etcd.plan)} | **${ms(etcdTotal)}** |`,
    `| JSON file | ${mb(r.fileBytes)} | ${ms(r.file.load)} (read + parse + validate) | — | ${ms(r.file.plan)} | **${ms(fileTotal)}** |`,
    '',
    `etcd ÷ file: ${(etcdTotal / fileTotal).toFixed(2)}×.`,
  ];
}

// ---------------------------------------------------------------- the section

async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!;
}

export interface ClusterBenchOptions {
  readonly quick?: boolean;
}

export async function runClusterBench(options: ClusterBenchOptions = {}): Promise<{ markdown: string }> {
  requireRoot('the cluster benchmark');
  const s = options.quick === true ? QUICK : FULL;
  const undo = new Undo();
  const out: string[] = [];
  try {
    const load = await loadAverage();
    const etcd = await startEtcd(undo, { members: 3 });
    const client = await connectEtcd(sourceOf(etcd, '/vipmesh-bench'));
    undo.after(() => client.close());
    const rounds: Round[] = [];
    for (const n of s.agents) rounds.push(await measureRound(s, etcd, client, n));
    process.stderr.write('cluster bench: listing and planning...\n');
    const list = await measureList(s, etcd, client);
    out.push('### Propagation', '', ...propagationTable(s, rounds), '', '### Cost per change', '', ...costTable(rounds), '',
      '### Listing and planning a large catalog: etcd against a file', '', ...listTable(s, list), '',
      `Load average (1 min) before and after: ${load}, ${await loadAverage()} (these are wall-clock numbers). Machine: ${await machine()}, Node ${process.version}, `
        + `${(await execa('etcd', ['--version'])).stdout.split('\n')[0]}. Reproduce with:`,
      '', '```sh', `npm run build && sudo node dist/bench/cluster.js${options.quick === true ? ' --quick' : ''}`, '```');
  } finally {
    await undo.run();
  }
  return { markdown: out.join('\n') };
}

if (process.argv[1] === SELF) {
  const { markdown } = await runClusterBench({ quick: process.argv.includes('--quick') || process.env['VIPMESH_BENCH_QUICK'] === '1' });
  process.stdout.write(markdown + '\n');
}
