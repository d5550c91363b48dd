// `vipmesh lab up` (SPEC §7): the catalog's cluster on this machine. Validates
// first (nothing made when invalid), refuses when a lab is up already, then
// builds the topology, starts a whoami server per running task, etcd with the
// catalog pushed into it (--etcd), and one real `vipmesh agent` per node; waits
// until every agent has made a pass and every probed task passed its probe.
// Everything goes on the journal before it is made, so `lab down` removes it
// whatever happens to this process; after a failure here the caller removes it.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { loadCatalog } from '../catalog/load.js';
import { formatProblems } from '../catalog/problems.js';
import type { Catalog } from '../catalog/types.js';
import { HEALTH_FILE } from '../state/runtime.js';
import { buildTopology } from './build.js';
import { demoPlan } from './facts.js';
import { freePort, startLabEtcd } from './etcd.js';
import { LabJournal, readJournal, type ProcessEntry } from './journal.js';
import { CLI, DEFAULT_RUN_DIR, WHOAMI } from './paths.js';
import { Plumbing, listNamespaces } from './plumbing.js';
import { isAlive, startDetached } from './processes.js';
import { HOST_PACE, type Pace } from './pace.js';
import { missingTools } from './tools.js';
import { type Wait, pause } from './wait.js';
import { type LabTopology, labTopology } from './topology.js';

export interface UpOptions {
  readonly catalogPath: string;
  readonly etcd: boolean;
  readonly runDir: string;
  /** Progress lines. */
  readonly say: (line: string) => void;
  /** Default: HOST_PACE. */
  readonly pace?: Pace;
  /** Aborted: stop making things and return 'failed' (the caller removes what was made). */
  readonly signal?: AbortSignal;
  /** Called once checks passed, just before the first thing is made (from then on, down has work). */
  readonly onMaking?: () => void;
}

export interface RunningLab {
  readonly catalog: Catalog;
  readonly catalogPath: string;
  readonly topology: LabTopology;
  readonly runDir: string;
  /** The agents' -c: the catalog file, or the lab's etcd. */
  readonly source: string;
  readonly agents: readonly { readonly node: string; readonly listen: string; readonly log: string }[];
}

export type UpResult =
  | { readonly status: 'up'; readonly lab: RunningLab }
  /** Nothing was made: an invalid catalog, a lab already up, a namespace taken. */
  | { readonly status: 'refused'; readonly message: string }
  /** Something failed (or a signal came) while building; what was made is left for downLab. */
  | { readonly status: 'failed'; readonly message: string };

/** What `up` checks before it makes anything. */
async function prepare(options: UpOptions): Promise<{ ok: true; catalog: Catalog; topology: LabTopology } | { ok: false; message: string }> {
  const loaded = await loadCatalog(options.catalogPath);
  if (!loaded.ok) {
    return { ok: false, message: `${options.catalogPath} is not a valid catalog (${loaded.problems.length} problem${loaded.problems.length === 1 ? '' : 's'}); nothing was made:\n${formatProblems(loaded.problems)}` };
  }
  const planned = labTopology(loaded.catalog);
  if (!planned.ok) return { ok: false, message: `the lab cannot build ${options.catalogPath}; nothing was made:\n${planned.problems.map((p) => `  ${p}`).join('\n')}` };
  const tools = ['ip', 'nsenter', 'iptables-restore', ...(planned.topology.arpGuards.length > 0 ? ['ebtables'] : []), ...(options.etcd ? ['etcd'] : [])];
  const missing = await missingTools(tools);
  if (missing !== undefined) return { ok: false, message: `${missing}; nothing was made` };
  if (await readJournal(options.runDir) !== undefined) {
    return { ok: false, message: `a lab is up already (its journal is in ${options.runDir}); run \`vipmesh lab down${downFlag(options.runDir)}\` first` };
  }
  const present = new Set(await listNamespaces());
  const taken = planned.topology.namespaces.filter((ns) => present.has(ns.name)).map((ns) => ns.name);
  if (taken.length > 0) {
    return { ok: false, message: `these namespaces exist already and are not this lab's to take over: ${taken.join(', ')} (another lab? \`vipmesh lab down --run-dir DIR\` with its run directory removes it); nothing was made` };
  }
  const etc = planned.topology.tasks.filter((t) => existsSync(join('/etc/netns', t.ns))).map((t) => `/etc/netns/${t.ns}`);
  if (etc.length > 0) return { ok: false, message: `these exist already and are not this lab's: ${etc.join(', ')}; nothing was made` };
  return { ok: true, catalog: loaded.catalog, topology: planned.topology };
}

export const downFlag = (runDir: string): string => (resolve(runDir) === DEFAULT_RUN_DIR ? '' : ` --run-dir ${runDir}`);

/**
 * Brings the lab up. On 'failed', what was made is still there for the caller to
 * remove with downLab (the CLI does at once; the demo in its finally).
 */
export async function upLab(options: UpOptions): Promise<UpResult> {
  const catalogPath = resolve(options.catalogPath);
  const runDir = resolve(options.runDir);
  const checked = await prepare({ ...options, catalogPath, runDir });
  if (!checked.ok) return { status: 'refused', message: checked.message };
  const { catalog, topology } = checked;
  const began = Date.now();
  const elapsed = (): string => `${Math.round((Date.now() - began) / 1000)} s`;
  const pace = options.pace ?? HOST_PACE;
  const wait: Wait = { deadline: began + pace.readyTimeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }) };
  options.onMaking?.();
  await mkdir(runDir, { recursive: true });
  const journal = new LabJournal(runDir, options.signal);
  await journal.write({ kind: 'lab', catalog: catalogPath, etcd: options.etcd, at: new Date().toISOString() });
  try {
    const plumbing = new Plumbing({ journal });
    options.say(`building ${topology.namespaces.length} namespaces: ${topology.nodes.length} nodes, ${topology.tasks.length} tasks, their sandboxes, load balancers and segments`);
    await buildTopology(plumbing, topology);
    options.say(`built (${elapsed()})`);
    // The agents write each task's resolv.conf there; the lab removes it with the task.
    for (const task of topology.tasks) await plumbing.etcNetns(task.ns);

    const servers = topology.tasks.filter((t) => t.running);
    options.say(`starting ${servers.length} whoami servers`);
    await journal.write({ kind: 'dir', path: join(runDir, 'tasks') });
    await mkdir(join(runDir, 'tasks'), { recursive: true });
    const started: ProcessEntry[] = [];
    for (const task of servers) {
      const log = join(runDir, 'tasks', `${task.name}.log`);
      const p = await startDetached('ip', ['netns', 'exec', task.ns, process.execPath, WHOAMI, task.name, ...task.ports.map(String)], { log, runDir });
      const entry: ProcessEntry = { kind: 'process', role: 'whoami', name: task.name, pid: p.pid, start: p.start, log };
      await journal.write(entry);
      started.push(entry);
    }
    for (const entry of started) await waitForLine(entry, /^ready /m, wait);
    options.say(`the whoami servers listen (${elapsed()})`);

    const taken = new Set<number>();
    let source = catalogPath;
    if (options.etcd) {
      options.say('starting etcd and pushing the catalog into it');
      source = await startLabEtcd(journal, catalogPath, taken, wait);
    }
    // One at a time, each ready before the next: on the kernel lane's emulated CPUs,
    // agents loading side by side can take longer than their resolver may to start.
    const agents: { node: string; listen: string; log: string; entry: ProcessEntry }[] = [];
    for (const node of topology.nodes) {
      options.say(`starting the agent of ${node.name} (vipmesh agent -c ${source} --node ${node.name}${pace.syncPeriod === undefined ? '' : ` --sync-period ${pace.syncPeriod}`})`);
      const listen = `127.0.0.1:${await freePort(taken)}`;
      const dir = join(runDir, node.name);
      await journal.write({ kind: 'dir', path: dir });
      await mkdir(dir, { recursive: true });
      const log = join(runDir, `${node.name}.log`);
      const entry = await startAgent({ node: node.name, source, listen, dir, log, runDir, journal, wait, say: options.say, pace });
      agents.push({ node: node.name, listen, log, entry });
      options.say(`the agent of ${node.name} made its first pass (${elapsed()})`);
    }
    await waitForProbes(catalog, topology, runDir, agents, wait);
    options.say(`every probed task passed its probe (${elapsed()})`);
    return { status: 'up', lab: { catalog, catalogPath, topology, runDir, source, agents: agents.map(({ node, listen, log }) => ({ node, listen, log })) } };
  } catch (error) {
    if (options.signal?.aborted) return { status: 'failed', message: 'stopped by a signal' };
    return { status: 'failed', message: (error as Error).message };
  }
}

async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n');
}

class ExitedError extends Error {}

async function died(entry: ProcessEntry): Promise<ExitedError> {
  return new ExitedError(`${entry.role} ${entry.name} (pid ${entry.pid}) exited; the end of ${entry.log}:\n${await tail(entry.log)}`);
}

/** How often an agent that exits while it starts is started again. */
const AGENT_STARTS = 3;

/**
 * Starts a node's agent and waits for its first pass. One that exits on the way
 * (other than exit 2, a catalog or flag it refuses) is started again, as systemd's
 * Restart=on-failure would: on the kernel lane's emulated CPUs, busy with the
 * other node's agent, the resolver worker can miss its start deadline.
 */
async function startAgent(a: {
  node: string; source: string; listen: string; dir: string; log: string; runDir: string;
  journal: LabJournal; wait: Wait; say: (line: string) => void; pace: Pace;
}): Promise<ProcessEntry> {
  const period = a.pace.syncPeriod === undefined ? [] : ['--sync-period', a.pace.syncPeriod];
  for (let attempt = 1; ; attempt++) {
    const p = await startDetached(process.execPath, [CLI, 'agent', '-c', a.source, '--node', a.node, '--listen', a.listen, ...period], {
      log: a.log, runDir: a.runDir, env: { VIPMESH_RUN_DIR: a.dir },
    });
    const entry: ProcessEntry = { kind: 'process', role: 'agent', name: a.node, pid: p.pid, start: p.start, log: a.log, listen: a.listen };
    await a.journal.write(entry);
    try {
      await waitForAgent(entry, a.wait);
      return entry;
    } catch (error) {
      const code = error instanceof ExitedError ? await p.exited : undefined;
      if (code === undefined || code === '2' || attempt === AGENT_STARTS) throw error;
      const last = (await tail(a.log, 1)).trim();
      a.say(`the agent of ${a.node} exited while starting (exit ${code}: ${last.length > 200 ? `${last.slice(0, 200)}…` : last}); starting it again (${attempt + 1} of ${AGENT_STARTS}), as systemd's Restart=on-failure would`);
    }
  }
}

async function waitForLine(entry: ProcessEntry, line: RegExp, wait: Wait): Promise<void> {
  for (;;) {
    if (line.test(await readFile(entry.log, 'utf8').catch(() => ''))) return;
    if (!(await isAlive(entry))) throw await died(entry);
    if (Date.now() > wait.deadline) throw new Error(`${entry.role} ${entry.name} did not get ready in time; the end of ${entry.log}:\n${await tail(entry.log)}`);
    await pause(wait, 100);
  }
}

function healthz(listen: string): Promise<number | undefined> {
  const [host, port] = listen.split(':') as [string, string];
  return new Promise((resolve) => {
    const req = request({ host, port: Number(port), path: '/healthz', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** /healthz answers 200 once a pass has succeeded (SPEC §5). */
async function waitForAgent(entry: ProcessEntry, wait: Wait): Promise<void> {
  for (;;) {
    if ((await healthz(entry.listen!)) === 200) return;
    if (!(await isAlive(entry))) throw await died(entry);
    if (Date.now() > wait.deadline) throw new Error(`agent ${entry.name} made no successful pass in time (/healthz on ${entry.listen}); the end of ${entry.log}:\n${await tail(entry.log)}`);
    await pause(wait, 250);
  }
}

/** A task with a probe serves only after it passed (SPEC §1): wait for each node's health.json to say so. */
async function waitForProbes(catalog: Catalog, topology: LabTopology, runDir: string, agents: readonly { node: string; entry: ProcessEntry }[], wait: Wait): Promise<void> {
  for (const agent of agents) {
    const probed = topology.tasks.filter((t) => t.node === agent.node && t.running && catalog.services[catalog.tasks[t.name]!.service ?? '']?.healthcheck !== undefined);
    if (probed.length === 0) continue;
    const file = join(runDir, agent.node, HEALTH_FILE);
    for (;;) {
      const text = await readFile(file, 'utf8').catch(() => '{}');
      let tasks: Record<string, { healthy?: boolean }> = {};
      try {
        tasks = (JSON.parse(text) as { tasks?: typeof tasks }).tasks ?? {};
      } catch {
        // being replaced
      }
      if (probed.every((t) => tasks[t.name]?.healthy === true)) break;
      if (!(await isAlive(agent.entry))) throw await died(agent.entry);
      if (Date.now() > wait.deadline) throw new Error(`on ${agent.node}, ${probed.filter((t) => tasks[t.name]?.healthy !== true).map((t) => t.name).join(', ')} did not pass their probes in time (${file})`);
      await pause(wait, 250);
    }
  }
}

/** What `lab up` prints once the lab is up. */
export function summary(lab: RunningLab): string {
  const { topology } = lab;
  const lines = [
    `the lab is up (${lab.runDir}):`,
    ...topology.nodes.map((n) => {
      const agent = lab.agents.find((a) => a.node === n.name)!;
      const tasks = topology.tasks.filter((t) => t.node === n.name).map((t) => t.name);
      return `  ${n.name}: ${n.address} in ${n.ns}; agent on ${agent.listen} (log ${agent.log}); tasks ${tasks.join(', ') || 'none'}`;
    }),
    `  outside: ${topology.outside.address} in ${topology.outside.ns}`,
    `  the agents read ${lab.source}`,
    `  ${topology.namespaces.length} namespaces: ${topology.namespaces.map((ns) => ns.name).join(' ')}`,
  ];
  const planned = demoPlan(lab.catalog, topology);
  if (planned.ok) {
    const { client, service, published } = planned.plan;
    lines.push('try:', `  ip netns exec ${client.ns} dig ${service}`, `  ip netns exec ${client.ns} dig tasks.${service}`, `  ip netns exec ${client.ns} curl -s http://${service}/`);
    const node = published?.nodes[0];
    if (published !== undefined && node !== undefined) lines.push(`  ip netns exec ${published.outside} curl -s http://${node.address}:${published.port}/`);
  }
  lines.push(`then: vipmesh lab down${downFlag(lab.runDir)}`);
  return `${lines.join('\n')}\n`;
}
