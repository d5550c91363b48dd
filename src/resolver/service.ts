// The resolver as a service: one process serves the embedded DNS (127.0.0.11) in
// every running local task's namespace. Given the catalog it builds the record
// snapshot and swaps it whole on every change; binds sockets in namespaces that
// appear (a few at a time; one failing never stops the others, and is retried);
// closes those of tasks that leave; records the ports in resolver.json, which
// plan and reconcile read to program the DNAT 127.0.0.11:53 → those ports; and
// points named namespaces (/run/netns/NAME) at 127.0.0.11 through
// /etc/netns/NAME/resolv.conf, which `ip netns exec` mounts.
//
// Used by `vipmesh resolver` (standalone) and by the agent.
import { mkdir, readFile, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Catalog } from '../catalog/types.js';
import type { Runner } from '../kernel/exec.js';
import { namespaceExists } from '../kernel/env.js';
import { type BindOptions, type NamespaceSockets, type ResolverPorts, bindInNamespace } from '../kernel/netns-sockets.js';
import { RESOLVER_FILE, runDir as defaultRunDir } from '../state/runtime.js';
import { isRecord, processAlive, readJson } from '../state/util.js';
import { type Resolver, createResolver } from './answer.js';
import { buildRecords } from './records.js';
import { type ServeLimits, type Served, serveNamespace } from './serve.js';
import type { Upstream } from './types.js';

export type LogLevel = 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string) => void;

export type BindFn = (netns: string, options: BindOptions) => Promise<NamespaceSockets>;

export interface ResolverServiceOptions {
  readonly catalog: Catalog;
  readonly node: string;
  /** Local task name → the agent's probe verdict (health.json). */
  readonly probes?: ReadonlyMap<string, boolean>;
  readonly upstreams: readonly Upstream[];
  /** The host's search list, repeated in the resolv.conf written for named namespaces. */
  readonly search?: readonly string[];
  /** Where resolver.json goes (default: runDir(), i.e. /run/vipmesh or VIPMESH_RUN_DIR). */
  readonly runDir?: string;
  /** Where `ip netns exec` looks for per-namespace files (default /etc/netns). */
  readonly etcNetns?: string;
  /** Runs conntrack when a re-bound port had to change. */
  readonly runner?: Runner;
  /** How sockets are bound (default: bindInNamespace; tests may inject). */
  readonly bind?: BindFn;
  /** Namespaces bound at once (each bind starts a short-lived helper process). */
  readonly concurrency?: number;
  /** After a failed bind, try again this much later, backing off while it keeps failing (0: only on the next update). */
  readonly retryMs?: number;
  readonly limits?: Partial<ServeLimits>;
  readonly maxConcurrentForwards?: number;
  readonly upstreamTimeoutMs?: number;
  readonly log?: Log;
}

export interface BindFailure {
  readonly netns: string;
  readonly message: string;
}

export interface SyncReport {
  /** Namespaces bound by this sync, with their ports and how long the bind took. */
  readonly bound: readonly { readonly netns: string; readonly ports: ResolverPorts; readonly ms: number; readonly changed: boolean }[];
  readonly closed: readonly string[];
  readonly failed: readonly BindFailure[];
  /** Namespaces served after this sync. */
  readonly serving: number;
}

export interface ResolverService {
  /** Reads resolver.json (to take the same ports again), binds every namespace, writes resolver.json. */
  start(): Promise<SyncReport>;
  /** A new catalog (and probes): answers change at once; sockets follow. */
  update(catalog: Catalog, probes?: ReadonlyMap<string, boolean>): Promise<SyncReport>;
  setUpstreams(upstreams: readonly Upstream[], search?: readonly string[]): void;
  /** Namespace → the ports served there. */
  readonly ports: () => ReadonlyMap<string, ResolverPorts>;
  /** The answering chain (counters by outcome). */
  readonly resolver: Resolver;
  /** Per-namespace socket counters. */
  readonly served: () => ReadonlyMap<string, Served>;
  /** Closes every socket. resolver.json stays, with the ports, for the next start to take again. */
  stop(): Promise<void>;
  /** Removes every /etc/netns/NAME/resolv.conf this service wrote (for cleanup). */
  removeResolvConfs(): Promise<void>;
}

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_RETRY_MS = 5_000;
const MAX_RETRY_FACTOR = 12; // 5 s doubling up to one minute
const MARKER = '# vipmesh: the embedded DNS of this task; vipmesh removes this file when the task leaves';

/** NAME for /run/netns/NAME (what `ip netns` manages), otherwise null. */
export function namedNamespace(netns: string): string | null {
  const match = /^(?:\/var)?\/run\/netns\/([^/]+)$/.exec(netns);
  return match === null || match[1] === '.' || match[1] === '..' ? null : match[1]!;
}

/** What a task's resolv.conf says: Docker's choice (ndots:0, the host's search list). */
export function resolvConfText(search: readonly string[]): string {
  const lines = [MARKER];
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  lines.push('nameserver 127.0.0.11', 'options ndots:0');
  return lines.join('\n') + '\n';
}

/**
 * resolver.json as a previous run left it: the ports to take again. Throws when
 * another live resolver owns it (two resolvers would fight over the DNAT).
 */
export async function readPreviousPorts(dir: string): Promise<Map<string, ResolverPorts>> {
  const ports = new Map<string, ResolverPorts>();
  const data = await readJson(join(dir, RESOLVER_FILE));
  if (!isRecord(data)) return ports;
  const pid = data['pid'];
  if (typeof pid === 'number' && pid !== process.pid && processAlive(pid) && (await looksLikeUs(pid))) {
    throw new Error(`another vipmesh resolver (pid ${pid}) serves this node (${join(dir, RESOLVER_FILE)}); stop it first`);
  }
  const namespaces = data['namespaces'];
  if (!isRecord(namespaces)) return ports;
  const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536;
  for (const [netns, entry] of Object.entries(namespaces)) {
    if (isRecord(entry) && isPort(entry['udp']) && isPort(entry['tcp'])) ports.set(netns, { udp: entry['udp'], tcp: entry['tcp'] });
  }
  return ports;
}

// After a reboot or a crash the recorded pid may belong to an unrelated program.
async function looksLikeUs(pid: number): Promise<boolean> {
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmdline.some((arg) => /(^|\/)(node|vipmesh)[^/]*$/.test(arg));
  } catch {
    return true; // cannot tell: assume it is
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function pool<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}

export function createResolverService(options: ResolverServiceOptions): ResolverService {
  const dir = options.runDir ?? defaultRunDir();
  const etcNetns = options.etcNetns ?? '/etc/netns';
  const bind: BindFn = options.bind ?? bindInNamespace;
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
  const log: Log = options.log ?? (() => {});
  let catalog = options.catalog;
  let probes: ReadonlyMap<string, boolean> = options.probes ?? new Map();
  let search: readonly string[] = options.search ?? [];
  let records = buildRecords(catalog, options.node, probes);
  const resolver = createResolver({
    records,
    upstreams: options.upstreams,
    ...(options.maxConcurrentForwards === undefined ? {} : { maxConcurrentForwards: options.maxConcurrentForwards }),
    ...(options.upstreamTimeoutMs === undefined ? {} : { upstreamTimeoutMs: options.upstreamTimeoutMs }),
  });

  const served = new Map<string, { served: Served; ports: ResolverPorts }>();
  /** Ports a previous run held, taken again on first bind. */
  let previous = new Map<string, ResolverPorts>();
  /** Namespaces whose resolv.conf is ours, by name. */
  const written = new Set<string>();
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let lastWritten: string | undefined;
  /** Namespaces that failed to bind → the last reason given. */
  const failures = new Map<string, string>();
  let retryStreak = 0;

  async function writeResolvConf(netns: string): Promise<void> {
    const name = namedNamespace(netns);
    if (name === null) return;
    const file = join(etcNetns, name, 'resolv.conf');
    const text = resolvConfText(search);
    const existing = await readText(file);
    if (existing === text) {
      written.add(name);
      return;
    }
    if (existing !== undefined && !existing.startsWith(MARKER)) {
      log('warn', `resolver: ${file} exists and is not vipmesh's; leaving it (that namespace may not use 127.0.0.11)`);
      return;
    }
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeAtomic(file, text);
    written.add(name);
  }

  async function removeResolvConf(netns: string): Promise<void> {
    const name = namedNamespace(netns);
    if (name === null) return;
    const file = join(etcNetns, name, 'resolv.conf');
    const existing = await readText(file);
    written.delete(name);
    if (existing === undefined || !existing.startsWith(MARKER)) return; // not ours (any more)
    await rm(file, { force: true });
    // The directory goes too once empty; anything else someone keeps there stays.
    await rmdir(dirname(file)).catch(() => {});
  }

  /**
   * Removes our resolv.conf of named namespaces that no longer exist: tasks that
   * left while no resolver ran (`ip netns delete` leaves /etc/netns/NAME behind).
   * Only a vanished namespace's file goes, so resolvers with other catalogs
   * sharing /etc/netns never take each other's.
   */
  async function sweepStale(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(etcNetns);
    } catch {
      return; // no /etc/netns: nothing to sweep
    }
    const servedNames = new Set([...served.keys()].map(namedNamespace));
    for (const name of names) {
      if (servedNames.has(name) || (await namespaceExists(`/run/netns/${name}`).catch(() => true))) continue;
      await removeResolvConf(`/run/netns/${name}`).catch(() => {});
    }
  }

  async function writePorts(): Promise<void> {
    const namespaces: Record<string, ResolverPorts> = {};
    for (const netns of [...served.keys()].sort()) namespaces[netns] = served.get(netns)!.ports;
    const text = JSON.stringify({ pid: process.pid, namespaces }, null, 2) + '\n';
    if (text === lastWritten) return;
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeAtomic(join(dir, RESOLVER_FILE), text);
    lastWritten = text;
  }

  async function sync(): Promise<SyncReport> {
    if (stopped) return { bound: [], closed: [], failed: [], serving: 0 };
    clearTimeout(retryTimer);
    const wanted = new Set(records.namespaces);
    const closed: string[] = [];
    for (const [netns, entry] of served) {
      if (wanted.has(netns)) continue;
      served.delete(netns);
      previous.delete(netns);
      await entry.served.close();
      await removeResolvConf(netns).catch((error: unknown) => log('warn', `resolver: ${(error as Error).message}`));
      closed.push(netns);
    }

    const bound: SyncReport['bound'][number][] = [];
    const failed: BindFailure[] = [];
    const missing = [...wanted].filter((netns) => !served.has(netns));
    await pool(missing, concurrency, async (netns) => {
      const want = previous.get(netns);
      let sockets: NamespaceSockets;
      try {
        sockets = await bind(netns, { ...(want === undefined ? {} : { wanted: want }), ...(options.runner ? { runner: options.runner } : {}) });
      } catch (error) {
        const message = (error as Error).message;
        failed.push({ netns, message });
        // A namespace that stays broken is retried quietly: said once, and again when the reason changes.
        if (failures.get(netns) !== message) log('warn', `resolver: ${message} (will retry)`);
        failures.set(netns, message);
        return;
      }
      if (stopped || !new Set(records.namespaces).has(netns)) {
        // Stopped, or the task left while its sockets were being bound.
        sockets.udp.close();
        sockets.tcp.close();
        return;
      }
      previous.delete(netns);
      if (failures.delete(netns)) log('info', `resolver: ${netns}: bound after all`);
      for (const warning of sockets.warnings) log('warn', `resolver: ${warning}`);
      if (sockets.changed && want !== undefined) {
        log('info', `resolver: ${netns}: port ${want.udp}/${want.tcp} taken, now udp ${sockets.ports.udp} tcp ${sockets.ports.tcp}`);
      }
      const entry = {
        served: serveNamespace(sockets, {
          netns,
          answerer: resolver,
          ...(options.limits === undefined ? {} : { limits: options.limits }),
          log,
        }),
        ports: sockets.ports,
      };
      served.set(netns, entry);
      bound.push({ netns, ports: sockets.ports, ms: sockets.durationMs, changed: sockets.changed });
    });

    for (const netns of served.keys()) {
      await writeResolvConf(netns).catch((error: unknown) => log('warn', `resolver: ${(error as Error).message}`));
    }
    await sweepStale();
    if (!stopped) await writePorts();
    for (const netns of failures.keys()) if (!wanted.has(netns)) failures.delete(netns);
    // Retries back off while the same namespaces keep failing (up to 12x the base); an update resets them.
    retryStreak = failed.length > 0 ? retryStreak + 1 : 0;
    if (failed.length > 0 && retryMs > 0 && !stopped) {
      const delay = retryMs * Math.min(2 ** (retryStreak - 1), MAX_RETRY_FACTOR);
      retryTimer = setTimeout(() => void schedule().catch(() => {}), delay);
    }
    return { bound, closed, failed, serving: served.size };
  }

  // Syncs run one at a time; requests that arrive meanwhile share the next one,
  // which sees the latest catalog.
  let tail: Promise<unknown> = Promise.resolve();
  let queued: Promise<SyncReport> | null = null;
  function schedule(): Promise<SyncReport> {
    if (queued !== null) return queued;
    const run = tail.then(() => {
      queued = null;
      return sync();
    });
    queued = run;
    tail = run.catch(() => {});
    return run;
  }

  return {
    resolver,
    ports: () => new Map([...served].map(([netns, entry]) => [netns, entry.ports])),
    served: () => new Map([...served].map(([netns, entry]) => [netns, entry.served])),
    async start() {
      previous = await readPreviousPorts(dir);
      return schedule();
    },
    update(next, nextProbes) {
      catalog = next;
      if (nextProbes !== undefined) probes = nextProbes;
      records = buildRecords(catalog, options.node, probes);
      resolver.setRecords(records); // answers change now; binding new namespaces may take longer
      retryStreak = 0;
      return schedule();
    },
    setUpstreams(upstreams, nextSearch) {
      resolver.setUpstreams(upstreams);
      if (nextSearch !== undefined) search = nextSearch;
    },
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      await tail;
      const entries = [...served.values()];
      served.clear();
      await Promise.all(entries.map((entry) => entry.served.close()));
    },
    async removeResolvConfs() {
      const names = [...written];
      await Promise.all(names.map((name) => removeResolvConf(join('/run/netns', name))));
    },
  };
}
