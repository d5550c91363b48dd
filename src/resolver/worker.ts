// The resolver on an event loop of its own (SPEC §5: DNS keeps answering while
// the agent works). worker-thread.ts starts this in a worker thread of the
// agent (or of `vipmesh resolver`); host.ts is the other end of the channel.
//
// A worker thread rather than a child process, because:
// - It can never outlive the agent: a thread dies with its process, whatever
//   ends it (SIGTERM, kill -9, an abort, the OOM killer), so no orphan resolver
//   can keep namespaces open or ports taken. A child would need its own death
//   watch (IPC disconnect, PR_SET_PDEATHSIG) and could still outlive an agent
//   whose end it missed.
// - Its V8 heap is its own: a major GC of the agent's heap (hundreds of MB with
//   a 10 000-service catalog) stops the agent's isolate only.
// - A crash is still contained: an uncaught exception here ends this thread
//   only (the host turns `failed`, the agent starts a new one), and when the
//   thread ends Node closes every socket it held, so the namespaces are freed and
//   the next worker binds the same ports again (resolver.json). What a thread
//   cannot contain — a native abort, the process running out of memory — ends
//   the agent as well, which systemd restarts.
// - Cheaper: no fork of the agent's large address space, ~25 MB for an idle
//   worker where a second Node process with the same modules takes 60–70 MB;
//   strings cross by one copy.
//   Either way the resolver keeps its own copy of the catalog (~180 MB more at
//   10 000 services × 10 tasks). Starting one takes 0.2–0.3 s here (loading
//   modules); a restart's outage is that plus binding every namespace again
//   (a helper process each, 8 at a time: ~2 s for 20 namespaces on this machine).
// - resolver.json's pid stays the agent's, which plan and reconcile check.
// Measured on this 2-core machine (shared with other jobs): a UDP responder on
// a worker thread and one in a child process both kept answering through 4 s
// of a busy agent loop, a GC-churning 1 GB heap, and forks of that heap, with
// no loss and tails of tens of ms (the two cores are shared either way); one on
// the agent's own loop stalled for the full 4 s. Through three back-to-back
// 10 000-service updates, a query every 5 ms from a task namespace was always
// answered: median 0.5 ms, worst 0.15–0.45 s (young-generation GCs while the
// new catalog and snapshot are made, in steps), where building the snapshot in
// one piece held every answer for ~0.5–0.8 s.
//
// Exported as a function so tests can run it with fake binding on loopback
// sockets; worker-thread.ts is the program.
import type { Catalog } from '../catalog/types.js';
import { createRunner } from '../kernel/exec.js';
import { OUTCOMES } from './answer.js';
import { applyPatch } from './catalog-patch.js';
import { decodeCatalogInSteps, decodePatch } from './catalog-wire.js';
import { type CatalogUpdate, type DnsCounters, type Request, type WorkerConfig, type WorkerMessage, isRequest } from './protocol.js';
import { runInSteps } from './scheduler.js';
import { type BindFn, type IdentifyFn, type ResolverService, type SyncReport, createResolverService } from './service.js';
import type { Outcome } from './types.js';

/** The worker's end of the channel (a worker thread's parentPort). */
export interface WorkerPort {
  postMessage(message: WorkerMessage): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  close(): void;
}

/** What tests may replace. */
export interface WorkerDeps {
  readonly bind?: BindFn;
  readonly identify?: IdentifyFn;
}

/** The catalog in force and the host's number for it (a patch names the one it applies to). */
interface Held {
  readonly seq: number;
  readonly catalog: Catalog;
}

/** Forward durations sent at once when this many are waiting, whatever the interval. */
const FORWARDS_PER_BATCH = 8192;

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export async function runResolverWorker(port: WorkerPort, config: WorkerConfig, deps: WorkerDeps = {}): Promise<void> {
  const send = (message: WorkerMessage): void => port.postMessage(message);

  // Counters: what the answering chain counted, sent as gains since the last batch.
  let forwardSeconds: number[] = [];
  let sentQueries: Record<Outcome, number> = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  let service: ResolverService | undefined;
  const flushCounters = (): void => {
    if (service === undefined) return;
    const now = service.resolver.counters;
    const queries: Partial<Record<Outcome, number>> = {};
    let any = forwardSeconds.length > 0;
    for (const outcome of OUTCOMES) {
      const gained = now[outcome] - sentQueries[outcome];
      if (gained > 0) {
        queries[outcome] = gained;
        any = true;
      }
    }
    if (!any) return;
    const counters: DnsCounters = { queries, forwardSeconds };
    sentQueries = { ...now };
    forwardSeconds = [];
    send({ type: 'counters', counters });
  };

  service = createResolverService({
    node: config.node,
    upstreams: config.upstreams,
    search: config.search,
    runDir: config.runDir,
    runner: createRunner(),
    ...(config.etcNetns === undefined ? {} : { etcNetns: config.etcNetns }),
    ...(config.concurrency === undefined ? {} : { concurrency: config.concurrency }),
    ...(config.retryMs === undefined ? {} : { retryMs: config.retryMs }),
    ...(config.checkMs === undefined ? {} : { checkMs: config.checkMs }),
    ...(config.limits === undefined ? {} : { limits: config.limits }),
    ...(config.maxConcurrentForwards === undefined ? {} : { maxConcurrentForwards: config.maxConcurrentForwards }),
    ...(config.upstreamTimeoutMs === undefined ? {} : { upstreamTimeoutMs: config.upstreamTimeoutMs }),
    ...(deps.bind === undefined ? {} : { bind: deps.bind }),
    ...(deps.identify === undefined ? {} : { identify: deps.identify }),
    onForward: (seconds) => {
      forwardSeconds.push(seconds);
      if (forwardSeconds.length >= FORWARDS_PER_BATCH) flushCounters();
    },
    onSync: (report) => send(synced(null, report)),
    log: (level, message) => send({ type: 'log', level, message }),
  });
  const running = service;

  const synced = (id: number | null, report: SyncReport): WorkerMessage => ({
    type: 'synced',
    id,
    report,
    ports: [...running.ports()].map(([netns, ports]) => [netns, { udp: ports.udp, tcp: ports.tcp }] as const),
  });

  try {
    await running.start();
  } catch (error) {
    send({ type: 'start-failed', message: messageOf(error) });
    port.close();
    return;
  }
  const countersTimer = setInterval(flushCounters, config.countersIntervalMs);

  // Catalogs are decoded one after another, each update on top of the catalog
  // the one before it sent; the service coalesces the syncs they ask for.
  // Never rejects: a catalog that fails to decode leaves the one before it in force.
  // A patch applies to the catalog the host sent as its base, or is refused.
  let catalog: Promise<Held | undefined> = Promise.resolve(undefined);
  let stopping = false;

  const next = async (last: Held | undefined, sent: CatalogUpdate): Promise<Held> => {
    if (sent.kind === 'whole') return { seq: sent.seq, catalog: await runInSteps(decodeCatalogInSteps(sent.wire)) };
    if (last?.seq !== sent.base) throw new Error(`a catalog patch on catalog ${sent.base}, but the worker holds ${last === undefined ? 'none' : `catalog ${last.seq}`}`);
    return { seq: sent.seq, catalog: applyPatch(last.catalog, decodePatch(sent.patch)) };
  };

  async function update(request: Extract<Request, { type: 'update' }>): Promise<void> {
    const sent = request.catalog;
    const before = catalog;
    const mine = before.then((last) => (sent === null ? last : next(last, sent)));
    catalog = mine.catch(() => before);
    const current = (await mine)?.catalog;
    if (current === undefined) throw new Error('an update without a catalog, and none was sent before');
    const report = await running.update({ catalog: current, probes: new Map(request.probes), gone: new Set(request.gone) });
    send(synced(request.id, report));
  }

  async function handle(request: Request): Promise<void> {
    if (stopping && request.type !== 'stop') throw new Error('the resolver is stopping');
    switch (request.type) {
      case 'update':
        return update(request);
      case 'upstreams':
        running.setUpstreams(request.upstreams, request.search ?? undefined);
        break;
      case 'counters':
        flushCounters();
        break;
      case 'stop':
        stopping = true;
        clearInterval(countersTimer);
        await running.stop();
        flushCounters();
        break;
    }
    send({ type: 'done', id: request.id });
    if (request.type === 'stop') port.close(); // nothing holds this thread any more: it ends
  }

  port.on('message', (message: unknown) => {
    if (!isRequest(message)) {
      const id = typeof message === 'object' && message !== null && 'id' in message && Number.isSafeInteger(message.id) ? (message.id as number) : -1;
      send({ type: 'failed', id, message: 'not a request this worker knows' });
      return;
    }
    handle(message).catch((error: unknown) => send({ type: 'failed', id: message.id, message: messageOf(error) }));
  });
  send({ type: 'started' });
}
