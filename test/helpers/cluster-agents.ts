// Two nodes sharing one etcd catalog, each played by an agent as a real child
// process (SPEC §6): per node a host namespace, an ingress sandbox, a web task
// and a client task to dig from, and a run directory of its own. A third task
// namespace on node A is there from the start for a task a test adds later.
// The catalog goes into etcd as `catalog push` would put it (one transaction,
// keys under PREFIX/v1/), written here directly with the etcd3 client.
import { mkdtempSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { validateCatalog } from '../../src/catalog/validate.js';
import { formatProblems } from '../../src/catalog/problems.js';
import { namesOf } from '../../src/catalog/names.js';
import type { Catalog, Task } from '../../src/catalog/types.js';
import { connectEtcd } from '../../src/cluster/connect.js';
import { COLLECTIONS, collectionPrefix, entriesOf } from '../../src/cluster/layout.js';
import { parseSource } from '../../src/cluster/source.js';
import { planNode } from '../../src/plan/index.js';
import { type AgentProcess, eventually, httpGet, startAgentProcess } from './agent.js';
import { facts } from './catalog.js';
import { type EtcdCluster, startEtcd } from './etcd.js';
import type { Plumbing } from '../../src/lab/plumbing.js';
import { netns, plumbing } from './netns.js';
import { requireTool } from './tools.js';

export const PREFIX = '/vipmesh-test';

export type NodeName = 'node-a' | 'node-b';

export interface NodeSpaces {
  readonly host: string;
  readonly sbox: string;
  readonly web: string;
  readonly client: string;
}

/** A plain catalog document, as a file would hold it. */
export type Doc = {
  version: 1;
  networks: Record<string, unknown>;
  nodes: Record<string, unknown>;
  services: Record<string, Record<string, unknown>>;
  tasks: Record<string, Record<string, unknown>>;
};

export interface TwoNodes {
  readonly etcd: EtcdCluster;
  /** A client of the test's own, closed when the test ends. */
  readonly client: Etcd3;
  readonly source: string;
  readonly ns: Readonly<Record<NodeName, NodeSpaces>> & { readonly spare: string };
  /** The catalog both nodes start with (a fresh copy each call). */
  base(): Doc;
  /** Makes etcd hold exactly `doc`: every key put (changed or not), vanished keys deleted, in one transaction. */
  push(doc: Doc): Promise<void>;
  /** Starts node's agent (again); `extra` goes after the common flags. */
  start(node: NodeName, extra?: readonly string[]): AgentProcess;
  readonly agents: Record<NodeName, AgentProcess | undefined>;
  /** node's VIPMESH_RUN_DIR. */
  runDir(node: NodeName): string;
}

const path = (name: string): string => `/run/netns/${name}`;

/** An address off lo inside a namespace (dig, and a probe's server, need one): a veth with both ends there. */
async function addressIn(p: Plumbing, name: string, cidr: string): Promise<void> {
  await p.wire(name, 'eth0', cidr, name, 'peer0', []);
}

export async function twoNodes(t: TestContext, options: { readonly leaseTtl?: number; readonly etcdArgs?: readonly string[] } = {}): Promise<TwoNodes> {
  await requireTool('dig');
  await requireTool('iptables-save');
  // after hooks run in the order they were added: the agents go first, before etcd and the namespaces.
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-two-nodes-'));
  const started: AgentProcess[] = [];
  t.after(async () => {
    for (const agent of started) {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const etcd = await startEtcd(t, { members: 3, ...(options.etcdArgs === undefined ? {} : { extraArgs: options.etcdArgs }) });
  const spaces = async (tag: string): Promise<NodeSpaces> => ({
    host: await netns(t, `vh${tag}`), sbox: await netns(t, `vs${tag}`), web: await netns(t, `vw${tag}`), client: await netns(t, `vc${tag}`),
  });
  const ns = { 'node-a': await spaces('a'), 'node-b': await spaces('b'), spare: await netns(t, 'vwa2') };
  const p = plumbing(t);
  // The agents write /etc/netns/<name>/resolv.conf; the plumbing removes it with the namespaces, after the agents are gone.
  for (const name of [...Object.values(ns['node-a']), ...Object.values(ns['node-b']), ns.spare]) await p.etcNetns(name);
  await addressIn(p, ns['node-a'].client, '10.0.1.31/24');
  await addressIn(p, ns['node-b'].client, '10.0.1.32/24');
  await addressIn(p, ns['node-a'].web, '10.0.1.11/24');
  await addressIn(p, ns['node-b'].web, '10.0.1.12/24');

  const agents: Record<NodeName, AgentProcess | undefined> = { 'node-a': undefined, 'node-b': undefined };

  const parsed = parseSource(etcd.source(PREFIX));
  if (!parsed.ok || parsed.source.kind !== 'etcd') throw new Error('startEtcd gave no etcd source');
  const client = await connectEtcd(parsed.source);
  t.after(() => client.close());

  const base = (): Doc => ({
    version: 1,
    networks: { appnet: { subnet: '10.0.1.0/24' }, ingress: { subnet: '10.255.0.0/16', ingress: true } },
    nodes: {
      'node-a': { address: '192.0.2.11', netns: path(ns['node-a'].host), ingressSandbox: { netns: path(ns['node-a'].sbox), address: '10.255.0.2' } },
      'node-b': { address: '192.0.2.12', netns: path(ns['node-b'].host), ingressSandbox: { netns: path(ns['node-b'].sbox), address: '10.255.0.3' } },
    },
    services: { web: { vips: { appnet: '10.0.1.2' }, ports: [{ target: 80, published: 8080 }] } },
    tasks: {
      'web.a': { service: 'web', node: 'node-a', netns: path(ns['node-a'].web), addresses: { appnet: '10.0.1.11', ingress: '10.255.0.11' } },
      'web.b': { service: 'web', node: 'node-b', netns: path(ns['node-b'].web), addresses: { appnet: '10.0.1.12', ingress: '10.255.0.12' } },
      'client.a': { node: 'node-a', netns: path(ns['node-a'].client), addresses: { appnet: '10.0.1.31' } },
      'client.b': { node: 'node-b', netns: path(ns['node-b'].client), addresses: { appnet: '10.0.1.32' } },
    },
  });

  // Retried: right after members come back, the cluster may have no leader yet.
  const push = (doc: Doc): Promise<void> => eventually('the push', () => pushOnce(doc));
  const pushOnce = async (doc: Doc): Promise<void> => {
    const entries = entriesOf(PREFIX, doc);
    const existing = new Set<string>();
    for (const collection of COLLECTIONS) for (const key of await client.getAll().prefix(collectionPrefix(PREFIX, collection)).keys()) existing.add(key);
    await client.kv.txn({
      compare: [],
      success: [
        ...[...entries].map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })),
        ...[...existing].filter((key) => !entries.has(key)).map((key) => ({ request_delete_range: { key: Buffer.from(key) } })),
      ],
      failure: [],
    });
  };

  const start = (node: NodeName, extra: readonly string[] = []): AgentProcess => {
    const agent = startAgentProcess(t, [
      '-c', etcd.source(PREFIX), '--node', node, '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9',
      '--etcd-lease-ttl', String(options.leaseTtl ?? 3), ...extra,
    ], { VIPMESH_RUN_DIR: join(dir, node) });
    agents[node] = agent;
    started.push(agent);
    return agent;
  };

  return { etcd, client, source: etcd.source(PREFIX), ns, base, push, start, agents, runDir: (node) => join(dir, node) };
}

export function catalogFrom(doc: Doc): Catalog {
  const result = validateCatalog(doc);
  if (!result.ok) throw new Error(`test catalog is invalid:\n${formatProblems(result.problems)}`);
  return result.catalog;
}

/**
 * Real servers in node's IPVS plan when only `serving` tasks serve: what the
 * agent's vipmesh_ipvs_real_servers{state="active"} says once it programmed
 * that plan. Local tasks with a healthcheck serve when `probes` says so.
 */
export function plannedRealServers(doc: Doc, node: NodeName, serving: readonly string[], probes: ReadonlyMap<string, boolean> = new Map()): number {
  const catalog = catalogFrom(doc);
  const tasks = namesOf<Task>(Object.entries(catalog.tasks).map(([name, task]) => [name, serving.includes(name) ? task : { ...task, state: 'shutdown' }] as const));
  const plan = planNode({ ...catalog, tasks }, node, facts({ kernelRelease: release(), probes }));
  return plan.namespaces.reduce((n, ns) => n + ns.ipvs.reduce((m, vs) => m + vs.realServers.length, 0), 0);
}

export async function scrape(agent: AgentProcess): Promise<string> {
  return (await httpGet(`${await agent.url()}/metrics`)).body;
}

export function metric(text: string, name: string): string | undefined {
  const escaped = name.replace(/[{}"=]/g, (c) => `\\${c}`);
  return new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)?.[1];
}

/** Kernel writes summed over the pass lines from `from` on. */
export function writesSince(agent: AgentProcess, from: number): number {
  return agent.lines.slice(from).filter((l) => l.event === 'pass').reduce((n, l) => {
    const written = l['written'] as Record<string, number> | undefined;
    return n + Object.values(written ?? {}).reduce((a, b) => a + b, 0);
  }, 0);
}
