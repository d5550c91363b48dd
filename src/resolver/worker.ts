// The resolver on an event loop of its own (SPEC §5: DNS keeps answering while
// the agent works). worker-thread.ts starts this in a worker thread of the
// agent (or of `vipmesh resolver`); host.ts is the other end of the channel.
//
// A worker thread rather than a child process, because:
// - It can never outlive the agent: a thread dies with its process, whatever
//   ends it (SIGTERM, kill -9, an abort, the OOM killer), so no orphan resolver
//   can keep namespaces open or ports taken. A child would need its own death
//   watch (IPC disconnect, PR_SET_PDEATHSIG) and would still outlive an agent
//   whose exit it missed.
// - Its V8 heap is its own: a major GC of the agent's heap (hundreds of MB with
//   a 10 000-service catalog) stops the agent's isolate only; this isolate keeps
//   answering, and its own GCs are short, its heap being small.
// - A crash is still contained: an uncaught exception here ends this thread
//   only (the host sees `failed` and the agent starts a new one), and when the
//   thread ends Node closes every socket it held, so the namespaces are freed and
//   the next worker re-binds the same ports (resolver.json).
// - Cheap to start and to feed: no fork of the agent's large address space (a
//   fork costs milliseconds per GB of heap), a few MB for the isolate instead of
//   a second Node (~40 MB), ~50 ms to start, and strings cross by one copy.
// - resolver.json's pid stays the agent's, which plan and reconcile check.
// Measured on this 2-core machine (loaded by other jobs): a UDP responder in a
// worker thread and one in a child process both kept answering through 4 s of
// a busy agent loop, a GC-churning 1 GB heap, and forks of that heap (no loss,
// tails of tens of ms from sharing 2 cores either way), where one on the
// agent's loop would stall for the full 4 s.
//
// Exported as a function so tests can run it with fake binding on loopback
// sockets; worker-thread.ts is the program.
import type { Catalog } from '../catalog/types.js';
import { createRunner } from '../kernel/exec.js';
import { OUTCOMES } from './answer.js';
import { decodeCatalogInSteps } from './catalog-wire.js';
import { type DnsCounters, type Request, type WorkerConfig, type WorkerMessage, isRequest } from './protocol.js';
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
  let catalog: Promise<Catalog | undefined> = Promise.resolve(undefined);
  let stopping = false;

  async function update(request: Extract<Request, { type: 'update' }>): Promise<void> {
    const wire = request.catalog;
    const before = catalog;
    const mine = before.then((last) => (wire === null ? last : runInSteps(decodeCatalogInSteps(wire))));
    catalog = mine.catch(() => before);
    const current = await mine;
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
