// The resolver as a service: it serves the embedded DNS (127.0.0.11) in every
// running local task's namespace. Given the catalog (and the probe verdicts, and
// the namespaces known to be gone) it builds the record snapshot — in steps, so
// the loop keeps answering — and swaps it whole; then it brings the sockets to
// match: binds namespaces that appear (a few at a time; one failing never stops
// the others, and is retried with back-off), closes those of tasks that leave or
// whose namespace is gone, records the ports in resolver.json (plan and
// reconcile program the DNAT 127.0.0.11:53 → those ports from it), and points
// named namespaces at 127.0.0.11 through /etc/netns/NAME/resolv.conf.
//
// A namespace that is gone while the catalog still lists its task running (the
// process died, `ip netns delete`) is out of DNS at once and its sockets are
// closed: a socket holds its namespace, and the kernel frees a namespace only
// once nothing holds it. The agent says which namespaces it knows to be gone;
// the service finds others itself where that is cheap: a bind that finds no
// namespace, and a stat of each served path every few seconds (a path that now
// names another namespace gets its sockets bound again there).
//
// Each namespace is in one state (Slot); every sync — asked by update(), or by
// the service's own timer for retries and checks — runs through one scheduler.
// Used by the resolver worker (worker.ts), which the agent and `vipmesh
// resolver` drive through host.ts.
import type { Catalog } from '../catalog/types.js';
import { namespaceExists, namespaceId } from '../kernel/env.js';
import type { Runner } from '../kernel/exec.js';
import { type BindOptions, BindError, type NamespaceSockets, type ResolverPorts, bindInNamespace } from '../kernel/netns-sockets.js';
import type { NamespaceId } from '../kernel/types.js';
import { runDir as defaultRunDir } from '../state/runtime.js';
import { type Resolver, createResolver } from './answer.js';
import { createPortsFile, readPreviousPorts } from './ports-file.js';
import { contentRevision, changeSince } from './catalog-patch.js';
import { EMPTY_RECORDS, type Records, buildRecordsInSteps, localNamespaces, patchRecords } from './records.js';
import { createResolvConfs } from './resolv-conf.js';
import { createScheduler, runInSteps } from './scheduler.js';
import { type ServeLimits, type Served, serveNamespace } from './serve.js';
import type { Upstream } from './types.js';

export { namedNamespace, resolvConfText } from './resolv-conf.js';
export { readPreviousPorts } from './ports-file.js';

export type LogLevel = 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string) => void;

export type BindFn = (netns: string, options: BindOptions) => Promise<NamespaceSockets>;
/** The namespace a path names now (device:inode), or undefined when it names none; rejects when it cannot tell. */
export type IdentifyFn = (netns: string) => Promise<NamespaceId | undefined>;

/** What a path names, for the checks: a namespace, none, or it cannot tell (then nothing is changed). */
const UNKNOWN = Symbol('unknown');

export interface ResolverServiceOptions {
  readonly node: string;
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
  /** How a path's namespace is identified (default: its device and inode; tests may inject). */
  readonly identify?: IdentifyFn;
  /** Namespaces bound at once (each bind starts a short-lived helper process). */
  readonly concurrency?: number;
  /** After a failed bind, try again this much later, backing off while it keeps failing (0: only on the next update). */
  readonly retryMs?: number;
  /** How often every served namespace is checked to be still there (0: only when a sync runs anyway). */
  readonly checkMs?: number;
  readonly limits?: Partial<ServeLimits>;
  readonly maxConcurrentForwards?: number;
  readonly upstreamTimeoutMs?: number;
  /** Told how long each forwarded query took (seconds). */
  readonly onForward?: (seconds: number) => void;
  /** Told the report of each sync the service ran on its own (a retry, a check that found a change); update() returns its own. */
  readonly onSync?: (report: SyncReport) => void;
  readonly log?: Log;
}

/** What the service serves from. */
export interface ResolverInput {
  readonly catalog: Catalog;
  /** Local task name → the agent's probe verdict (health.json). */
  readonly probes: ReadonlyMap<string, boolean>;
  /** Namespaces the agent knows to be gone while the catalog still lists their tasks running. */
  readonly gone: ReadonlySet<string>;
}

export interface BindFailure {
  readonly netns: string;
  readonly message: string;
  /** Nothing is there (the namespace is gone, or not made yet): its task is out of DNS until a bind works. */
  readonly gone: boolean;
}

export interface SyncReport {
  /** Namespaces bound by this sync, with their ports and how long the bind took. */
  readonly bound: readonly { readonly netns: string; readonly ports: ResolverPorts; readonly ms: number; readonly changed: boolean }[];
  /** Namespaces whose sockets this sync closed: their task left, their namespace is gone, or the path names another namespace now. */
  readonly closed: readonly string[];
  readonly failed: readonly BindFailure[];
  /** Namespaces this sync found gone by itself (a check or a bind found nothing there). */
  readonly gone: readonly string[];
  /** Namespaces served after this sync. */
  readonly serving: number;
}

export interface ResolverService {
  /** Reads resolver.json, to take the same ports again; throws when another live resolver owns it. update() does it if not done. */
  start(): Promise<void>;
  /** New input: answers change as soon as the snapshot is built; sockets follow. */
  update(input: ResolverInput): Promise<SyncReport>;
  setUpstreams(upstreams: readonly Upstream[], search?: readonly string[]): void;
  /** Namespace → the ports served there. */
  readonly ports: () => ReadonlyMap<string, ResolverPorts>;
  /** The answering chain (counters by outcome). */
  readonly resolver: Resolver;
  /** Per-namespace socket counters. */
  readonly served: () => ReadonlyMap<string, Served>;
  /** The snapshot answers come from now. */
  readonly records: () => Records;
  /** Closes every socket. resolver.json stays, with the ports, for the next start to take again. */
  stop(): Promise<void>;
  /** Removes every /etc/netns/NAME/resolv.conf this service wrote (for cleanup). */
  removeResolvConfs(): Promise<void>;
}

/** One namespace the service looks after. */
type Slot =
  /** A bind is in flight (a sync is waiting for it). */
  | { readonly state: 'binding' }
  | { readonly state: 'serving'; readonly served: Served; readonly ports: ResolverPorts; readonly id: NamespaceId }
  /** The last bind failed; tried again at `retryAt` or on the next update. `gone`: nothing was there. */
  | { readonly state: 'failed'; readonly message: string; readonly gone: boolean; readonly streak: number; readonly retryAt: number };

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_RETRY_MS = 5_000;
const DEFAULT_CHECK_MS = 2_000;
const MAX_RETRY_FACTOR = 12; // 5 s doubling up to one minute
const EMPTY_REPORT: SyncReport = { bound: [], closed: [], failed: [], gone: [], serving: 0 };

async function pool<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}

/** A stale file left under /run/netns after an unmount is no namespace: only an nsfs file is. */
async function identifyNamespace(netns: string): Promise<NamespaceId | undefined> {
  return (await namespaceExists(netns)) ? namespaceId(netns) : undefined;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function createResolverService(options: ResolverServiceOptions): ResolverService {
  const bind: BindFn = options.bind ?? bindInNamespace;
  const identify: IdentifyFn = options.identify ?? identifyNamespace;
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
  const checkMs = options.checkMs ?? DEFAULT_CHECK_MS;
  const log: Log = options.log ?? (() => {});
  const warn = (message: string) => log('warn', message);
  const resolvConfs = createResolvConfs(options.etcNetns ?? '/etc/netns', warn);
  const writePorts = createPortsFile(options.runDir ?? defaultRunDir());
  const resolver = createResolver({
    records: EMPTY_RECORDS,
    upstreams: options.upstreams,
    ...(options.maxConcurrentForwards === undefined ? {} : { maxConcurrentForwards: options.maxConcurrentForwards }),
    ...(options.upstreamTimeoutMs === undefined ? {} : { upstreamTimeoutMs: options.upstreamTimeoutMs }),
    ...(options.onForward === undefined ? {} : { onForward: options.onForward }),
  });

  let search: readonly string[] = options.search ?? [];
  /** The newest input, and whether a sync has taken it yet. */
  let input: { readonly value: ResolverInput; readonly taken: boolean } | undefined;
  let records: Records = EMPTY_RECORDS;
  /** What `records` was built from: the catalog, and a key of the probes and of every gone namespace. */
  let built: { readonly catalog: Catalog; readonly key: string; readonly revision: number } | undefined;
  /** The namespaces to serve for an input (its running local tasks' but the gone), listed once per input. */
  let wanted: { readonly input: ResolverInput; readonly namespaces: ReadonlySet<string> } | undefined;
  const slots = new Map<string, Slot>();
  /** Ports a previous run held (resolver.json), asked for again at the next bind of each namespace. */
  let reclaim = new Map<string, ResolverPorts>();
  let claimed: Promise<void> | undefined;
  let stopped = false;

  const serving = (): [string, Extract<Slot, { state: 'serving' }>][] =>
    [...slots].flatMap(([netns, slot]) => (slot.state === 'serving' ? [[netns, slot] as [string, typeof slot]] : []));
  const foundGone = (): string[] =>
    [...slots].flatMap(([netns, slot]) => (slot.state === 'failed' && slot.gone ? [netns] : [])).sort();

  // A rebuild of a big catalog costs the worker half a second of steps: done
  // only when what the records depend on changed, not for every update.
  async function rebuild(current: ResolverInput): Promise<void> {
    const gone = new Set([...current.gone, ...foundGone()]);
    const key = JSON.stringify([[...current.probes].sort(), [...gone].sort()]);
    if (built !== undefined && built.catalog === current.catalog && built.key === key) return;
    // Noted before the build's first step reads the records (catalog-patch.ts).
    const revision = contentRevision(current.catalog);
    // A catalog patched from the one built, with the same probes and gone: only what changed is made again.
    const change = built !== undefined && built.key === key ? changeSince(current.catalog, built.catalog, built.revision) : undefined;
    const next = (change === undefined ? undefined : patchRecords(records, current.catalog, change))
      ?? await runInSteps(buildRecordsInSteps({ catalog: current.catalog, node: options.node, probes: current.probes, gone }));
    records = next;
    resolver.setRecords(next); // answers change now (and the reply cache is emptied); sockets follow
    built = { catalog: current.catalog, key, revision };
  }

  function wantedBy(current: ResolverInput): ReadonlySet<string> {
    if (wanted?.input !== current) {
      const namespaces = new Set(localNamespaces(current.catalog, options.node).filter((netns) => !current.gone.has(netns)));
      wanted = { input: current, namespaces };
    }
    return wanted.namespaces;
  }

  /** Is each served namespace still the one its sockets are in? Is a gone one back? */
  async function check(report: { closed: string[]; gone: string[] }): Promise<void> {
    const look = (netns: string) => identify(netns).catch(() => UNKNOWN);
    for (const [netns, slot] of [...slots]) {
      // Back (made again, or made at last): bound by this sync rather than at its next retry.
      if (slot.state !== 'failed' || !slot.gone) continue;
      const id = await look(netns);
      if (id !== undefined && id !== UNKNOWN) slots.set(netns, { ...slot, retryAt: 0 });
    }
    const now = await Promise.all(serving().map(async ([netns, slot]) => [netns, slot, await look(netns)] as const));
    for (const [netns, slot, id] of now) {
      if (id === slot.id || id === UNKNOWN) continue;
      await slot.served.close();
      report.closed.push(netns);
      if (id === undefined) {
        log('warn', `resolver: ${netns}: the namespace is gone; its task is out of DNS and its sockets are closed`);
        slots.set(netns, { state: 'failed', message: 'the namespace is gone', gone: true, streak: 1, retryAt: Date.now() + retryMs });
        report.gone.push(netns);
      } else {
        // The path names another namespace now (deleted and made again, a pid reused): bind there, on the same ports.
        log('info', `resolver: ${netns}: the path names another namespace now; binding there`);
        slots.delete(netns);
        reclaim.set(netns, slot.ports);
      }
    }
  }

  async function bindOne(netns: string, update: boolean, report: { bound: SyncReport['bound'][number][]; failed: BindFailure[]; gone: string[] }): Promise<void> {
    const before = slots.get(netns);
    slots.set(netns, { state: 'binding' });
    const want = reclaim.get(netns);
    let sockets: NamespaceSockets;
    try {
      sockets = await bind(netns, { ...(want === undefined ? {} : { wanted: want }), ...(options.runner ? { runner: options.runner } : {}) });
    } catch (error) {
      const message = messageOf(error);
      // A bind that found nothing there: the namespace is gone (or not made yet).
      const gone = error instanceof BindError ? error.kind === 'no-namespace' : (await identify(netns).catch(() => UNKNOWN)) === undefined;
      const streak = before?.state === 'failed' && !update ? before.streak + 1 : 1;
      const delay = retryMs * Math.min(2 ** (streak - 1), MAX_RETRY_FACTOR);
      slots.set(netns, { state: 'failed', message, gone, streak, retryAt: Date.now() + delay });
      report.failed.push({ netns, message, gone });
      if (gone && !(before?.state === 'failed' && before.gone)) report.gone.push(netns);
      // A namespace that stays broken is retried quietly: said once, and again when the reason changes.
      if (before?.state !== 'failed' || before.message !== message) log('warn', `resolver: ${message} (will retry)`);
      return;
    }
    if (stopped || slots.get(netns)?.state !== 'binding') {
      // Stopped, or the task left while its sockets were being bound.
      sockets.udp.close();
      sockets.tcp.close();
      return;
    }
    reclaim.delete(netns);
    if (before?.state === 'failed') log('info', `resolver: ${netns}: bound after all`);
    for (const warning of sockets.warnings) warn(`resolver: ${warning}`);
    if (sockets.changed && want !== undefined) {
      log('info', `resolver: ${netns}: port ${want.udp}/${want.tcp} taken, now udp ${sockets.ports.udp} tcp ${sockets.ports.tcp}`);
    }
    const served = serveNamespace(sockets, {
      netns,
      answerer: resolver,
      ...(options.limits === undefined ? {} : { limits: options.limits }),
      log,
    });
    slots.set(netns, { state: 'serving', served, ports: sockets.ports, id: sockets.id });
    report.bound.push({ netns, ports: sockets.ports, ms: sockets.durationMs, changed: sockets.changed });
  }

  async function sync(): Promise<SyncReport> {
    if (stopped || input === undefined) return EMPTY_REPORT;
    const current = input.value;
    const update = !input.taken;
    input = { value: current, taken: true };
    const report = { bound: [] as SyncReport['bound'][number][], closed: [] as string[], failed: [] as BindFailure[], gone: [] as string[] };

    await check(report);
    await rebuild(current);
    if (stopped) return EMPTY_REPORT;

    // Namespaces to serve: every running local task's, but those the agent knows to be gone.
    const serve = wantedBy(current);
    for (const [netns, slot] of [...slots]) {
      if (serve.has(netns)) continue;
      slots.delete(netns);
      reclaim.delete(netns);
      if (slot.state !== 'serving') continue;
      await slot.served.close();
      await resolvConfs.remove(netns).catch((error: unknown) => warn(`resolver: ${messageOf(error)}`));
      report.closed.push(netns);
    }

    const now = Date.now();
    const due = [...serve].filter((netns) => {
      const slot = slots.get(netns);
      return slot === undefined || (slot.state === 'failed' && (update || slot.retryAt <= now));
    });
    await pool(due, concurrency, (netns) => bindOne(netns, update, report));
    if (stopped) return EMPTY_REPORT;
    // Binds that found a namespace gone, or one back, change who answers.
    await rebuild(current);

    // The files follow an update or a change; a timed check that found nothing leaves them be.
    if (update || report.bound.length + report.closed.length > 0) {
      for (const [netns] of serving()) {
        await resolvConfs.write(netns, search).catch((error: unknown) => warn(`resolver: ${messageOf(error)}`));
      }
      await resolvConfs.sweep(serving().map(([netns]) => netns));
      await writePorts(portsNow());
    }

    const retries = [...slots.values()].flatMap((slot) => (slot.state === 'failed' ? [slot.retryAt] : []));
    if (retries.length > 0 && retryMs > 0) scheduler.wake(Math.min(...retries) - Date.now());
    if (checkMs > 0 && slots.size > 0) scheduler.wake(checkMs);
    return { ...report, serving: serving().length };
  }

  const portsNow = (): Map<string, ResolverPorts> => new Map(serving().map(([netns, slot]) => [netns, slot.ports]));

  // A sync the service runs on its own is reported when it changed something.
  const scheduler = createScheduler(async () => {
    const fromUpdate = input !== undefined && !input.taken;
    const report = await sync();
    const changed = report.bound.length + report.closed.length + report.gone.length > 0;
    if (!fromUpdate && changed) {
      try {
        options.onSync?.(report);
      } catch (error) {
        warn(`resolver: reporting a sync failed: ${messageOf(error)}`);
      }
    }
    return report;
  });

  const start = (): Promise<void> => {
    claimed ??= readPreviousPorts(options.runDir ?? defaultRunDir()).then((previous) => {
      reclaim = previous;
    });
    return claimed;
  };

  return {
    resolver,
    ports: portsNow,
    served: () => new Map(serving().map(([netns, slot]) => [netns, slot.served])),
    records: () => records,
    start,
    async update(next) {
      await start();
      input = { value: next, taken: false };
      return scheduler.request();
    },
    setUpstreams(upstreams, nextSearch) {
      resolver.setUpstreams(upstreams);
      if (nextSearch !== undefined) search = nextSearch;
    },
    async stop() {
      stopped = true;
      await scheduler.stop();
      const open = serving();
      slots.clear();
      await Promise.all(open.map(([, slot]) => slot.served.close()));
    },
    removeResolvConfs: () => resolvConfs.removeAll(),
  };
}
