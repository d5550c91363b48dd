// The agent's side of the resolver: starts the resolver worker (worker.ts says
// why a thread of its own) and talks to it in the typed messages of
// protocol.ts. Every request has a timeout; a worker that does not answer a
// cheap request in time has a stuck loop (and answers no DNS either), so it is
// ended. When the worker ends unasked the host is `failed`, every request in
// flight is rejected, and `exited` says why: the agent starts a new host, which
// binds the same ports again (resolver.json).
//
// The catalog goes over as JSON text in chunks (catalog-wire.ts), and only when
// it is another object than the one sent last: an update of probes or gone
// namespaces costs a few small arrays.
import { Worker } from 'node:worker_threads';
import { derivationOf } from '../catalog/change.js';
import type { Catalog } from '../catalog/types.js';
import type { ResolverPorts } from '../kernel/netns-sockets.js';
import { runDir as defaultRunDir } from '../state/runtime.js';
import { OUTCOMES } from './answer.js';
import { encodeCatalog, encodePatch, type PatchWire } from './catalog-wire.js';
import { type CatalogUpdate, type DnsCounters, type Request, type RequestType, type WorkerConfig, type WorkerMessage, isWorkerMessage } from './protocol.js';
import type { ServeLimits } from './serve.js';
import type { Log, SyncReport } from './service.js';
import type { Outcome, Upstream } from './types.js';
import { readHostResolvConf } from './upstreams.js';

export type { DnsCounters } from './protocol.js';
export type { SyncReport } from './service.js';

export interface ResolverHostOptions {
  readonly node: string;
  /** Where resolver.json lives (default: runDir()). */
  readonly runDir?: string;
  /** Where `ip netns exec` looks for per-namespace files (default /etc/netns). */
  readonly etcNetns?: string;
  /** Where unknown names go; default: the nameservers (and search list) of /etc/resolv.conf. */
  readonly upstreams?: readonly Upstream[];
  /** The search list for the tasks' resolv.conf; default: /etc/resolv.conf's. */
  readonly search?: readonly string[];
  readonly concurrency?: number;
  readonly retryMs?: number;
  readonly checkMs?: number;
  readonly limits?: Partial<ServeLimits>;
  readonly maxConcurrentForwards?: number;
  readonly upstreamTimeoutMs?: number;
  /** How long an update may take (it binds every new namespace): default 120 s. */
  readonly updateTimeoutMs?: number;
  /** How long any other request may take before the worker counts as stuck: default 5 s. */
  readonly requestTimeoutMs?: number;
  /** How long the worker may take to start: default 30 s. */
  readonly startTimeoutMs?: number;
  /** How often the worker sends what its DNS counters gained: default 1 s. */
  readonly countersIntervalMs?: number;
  readonly log?: Log;
  /** Each batch of DNS counter gains (the agent adds them to its metrics). */
  readonly onCounters?: (counters: DnsCounters) => void;
  /** A sync the worker ran on its own (a retry bound a namespace, a namespace was found gone): ports() changed. */
  readonly onSync?: (report: SyncReport) => void;
  /** The worker program; tests start one that binds on loopback. */
  readonly entry?: URL;
}

export type HostStatus =
  | { readonly state: 'starting' }
  | { readonly state: 'running' }
  | { readonly state: 'stopping' }
  | { readonly state: 'stopped' }
  | { readonly state: 'failed'; readonly error: string };

export type HostExit = Extract<HostStatus, { state: 'stopped' | 'failed' }>;

/** The DNS counters since the host started. */
export interface DnsTotals {
  readonly queries: Readonly<Record<Outcome, number>>;
  readonly forwards: number;
  readonly forwardSeconds: number;
}

export type HostErrorKind =
  /** Another resolver holds the node (exit 2 territory for a command). */
  | 'refused'
  /** No answer in time. */
  | 'timeout'
  /** The worker is not running (stopped, or ended). */
  | 'exited'
  /** The worker answered with an error. */
  | 'failed';

export class ResolverHostError extends Error {
  constructor(readonly kind: HostErrorKind, message: string) {
    super(message);
    this.name = 'ResolverHostError';
  }
}

export interface ResolverHost {
  /**
   * New input: the catalog, the probe verdicts and the namespaces known to be
   * gone (their tasks are out of DNS at once and their sockets closed). Resolves
   * once the sockets follow, with what changed.
   */
  update(catalog: Catalog, probes: ReadonlyMap<string, boolean>, gone: ReadonlySet<string>): Promise<SyncReport>;
  setUpstreams(upstreams: readonly Upstream[], search?: readonly string[]): Promise<void>;
  /** Namespace → the ports served there, as of the last sync the worker reported. */
  ports(): ReadonlyMap<string, ResolverPorts>;
  /** Has the worker send its counters' gains now (to onCounters), then gives the totals. */
  counters(): Promise<DnsTotals>;
  status(): HostStatus;
  /** Settles when the worker has ended: `stopped` after stop(), `failed` otherwise. */
  readonly exited: Promise<HostExit>;
  /** Closes every socket (resolver.json stays for the next start) and ends the worker. Never rejects. */
  stop(): Promise<void>;
}

/** How many derivations back patchOf looks for the catalog sent last. */
const MAX_DERIVATIONS = 64;

/**
 * `catalog` as a patch on `base`, when it was derived from it by changes to
 * services and tasks (catalog/change.ts: networks and nodes are the same
 * objects); undefined otherwise (send it whole).
 */
export function patchOf(base: Catalog, catalog: Catalog): PatchWire | undefined {
  if (catalog.networks !== base.networks || catalog.nodes !== base.nodes) return undefined;
  const services = new Set<string>();
  const tasks = new Set<string>();
  let at = catalog;
  for (let steps = 0; at !== base; steps++) {
    const derivation = derivationOf(at);
    if (derivation === undefined || steps >= MAX_DERIVATIONS) return undefined;
    for (const name of derivation.services) services.add(name);
    for (const name of derivation.tasks) tasks.add(name);
    at = derivation.parent;
  }
  return encodePatch(catalog, services, tasks);
}

const WORKER = new URL('./worker-thread.js', import.meta.url);
const STOP_TIMEOUT_MS = 3_000; // SPEC §5: the agent exits within 5 s of SIGTERM

interface Pending {
  readonly type: RequestType;
  readonly resolve: (message: WorkerMessage) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

type RequestBody<T extends RequestType> = Omit<Extract<Request, { type: T }>, 'type' | 'id'>;

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export async function startResolverHost(options: ResolverHostOptions): Promise<ResolverHost> {
  let upstreams = options.upstreams;
  let search = options.search;
  if (upstreams === undefined || search === undefined) {
    const conf = await readHostResolvConf().catch((error: unknown) => {
      options.log?.('warn', `resolver: cannot read /etc/resolv.conf (${messageOf(error)}): no upstreams, no search list`);
      return { upstreams: [], search: [] };
    });
    upstreams ??= conf.upstreams;
    search ??= conf.search;
  }
  const config: WorkerConfig = {
    node: options.node,
    runDir: options.runDir ?? defaultRunDir(),
    upstreams,
    search,
    countersIntervalMs: options.countersIntervalMs ?? 1_000,
    ...(options.etcNetns === undefined ? {} : { etcNetns: options.etcNetns }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.retryMs === undefined ? {} : { retryMs: options.retryMs }),
    ...(options.checkMs === undefined ? {} : { checkMs: options.checkMs }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.maxConcurrentForwards === undefined ? {} : { maxConcurrentForwards: options.maxConcurrentForwards }),
    ...(options.upstreamTimeoutMs === undefined ? {} : { upstreamTimeoutMs: options.upstreamTimeoutMs }),
  };
  const updateTimeoutMs = options.updateTimeoutMs ?? 120_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
  const log: Log = options.log ?? (() => {});

  const worker = new Worker(options.entry ?? WORKER, { workerData: config });
  let status: HostStatus = { state: 'starting' };
  /** Why the worker is ending, when the host knows before its exit event. */
  let ending: string | undefined;
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let ports = new Map<string, ResolverPorts>();
  const queries = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  let forwards = 0;
  let forwardSeconds = 0;
  /** The catalog the worker has (or is decoding) and its number: not sent again, and the base of a patch. */
  let sent: { readonly catalog: Catalog; readonly seq: number } | undefined;
  let nextSeq = 1;

  let settleStart: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const started = new Promise<void>((resolve, reject) => (settleStart = { resolve, reject }));
  let settleExit: (exit: HostExit) => void = () => {};
  const exited = new Promise<HostExit>((resolve) => (settleExit = resolve));

  const guard = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      log('warn', `resolver: ${what} failed: ${messageOf(error)}`);
    }
  };

  /** Ends the worker for a reason of the host's (stuck, or a start that took too long). */
  const abandon = (why: string): void => {
    ending ??= why;
    void worker.terminate();
  };

  const startTimer = setTimeout(() => abandon(`the resolver worker did not start within ${options.startTimeoutMs ?? 30_000} ms`), options.startTimeoutMs ?? 30_000);

  worker.on('message', (message: unknown) => {
    if (!isWorkerMessage(message)) {
      log('warn', 'resolver: the worker sent a message the host does not know; ignored');
      return;
    }
    switch (message.type) {
      case 'started':
        clearTimeout(startTimer);
        status = { state: 'running' };
        settleStart?.resolve();
        return;
      case 'start-failed':
        ending ??= message.message;
        settleStart?.reject(new ResolverHostError('refused', message.message));
        settleStart = undefined;
        return;
      case 'synced':
        ports = new Map(message.ports);
        // An update nobody waits for any more (it timed out on a busy node) still bound its
        // namespaces: they are reported as the worker's own syncs are, so the redirect follows.
        if (message.id === null || !pending.has(message.id)) guard('onSync', () => options.onSync?.(message.report));
        else answer(message.id, message);
        return;
      case 'done':
        answer(message.id, message);
        return;
      case 'failed': {
        const request = pending.get(message.id);
        if (request === undefined) return;
        pending.delete(message.id);
        clearTimeout(request.timer);
        request.reject(new ResolverHostError('failed', `resolver ${request.type}: ${message.message}`));
        return;
      }
      case 'counters': {
        for (const outcome of OUTCOMES) queries[outcome] += message.counters.queries[outcome] ?? 0;
        forwards += message.counters.forwardSeconds.length;
        for (const seconds of message.counters.forwardSeconds) forwardSeconds += seconds;
        guard('onCounters', () => options.onCounters?.(message.counters));
        return;
      }
      case 'log':
        log(message.level, message.message);
        return;
    }
  });
  // An uncaught exception ends the worker; 'exit' follows.
  worker.on('error', (error) => {
    ending ??= `the resolver worker failed: ${error.message}`;
  });
  worker.on('exit', (code) => {
    clearTimeout(startTimer);
    const exit: HostExit =
      status.state === 'stopping' ? { state: 'stopped' } : { state: 'failed', error: ending ?? `the resolver worker exited (code ${code})` };
    status = exit;
    const error = new ResolverHostError('exited', exit.state === 'stopped' ? 'the resolver is stopped' : exit.error);
    settleStart?.reject(error);
    settleStart = undefined;
    for (const [id, request] of pending) {
      clearTimeout(request.timer);
      pending.delete(id);
      request.reject(error);
    }
    if (exit.state === 'failed') log('error', `resolver: ${exit.error}`);
    settleExit(exit);
  });

  function answer(id: number, message: WorkerMessage): void {
    const request = pending.get(id);
    if (request === undefined) return; // it timed out; its effects (ports, counters) are kept all the same
    pending.delete(id);
    clearTimeout(request.timer);
    request.resolve(message);
  }

  /**
   * Sends one request. `stuck`: no answer in time means the worker's loop is
   * stuck (the request is cheap), so the worker is ended.
   */
  function ask<T extends RequestType>(type: T, body: RequestBody<T>, timeoutMs: number, stuck: boolean): Promise<WorkerMessage> {
    if (status.state !== 'running' && !(status.state === 'stopping' && type === 'stop')) {
      const why = status.state === 'failed' ? status.error : `the resolver is ${status.state}`;
      return Promise.reject(new ResolverHostError('exited', why));
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        const why = `the resolver worker did not answer a ${type} request within ${timeoutMs} ms`;
        reject(new ResolverHostError('timeout', why));
        if (stuck) abandon(`${why}: its loop is stuck; ended`);
      }, timeoutMs);
      pending.set(id, { type, resolve, reject, timer });
      worker.postMessage({ type, id, ...body });
    });
  }

  try {
    await started;
  } catch (error) {
    await worker.terminate();
    throw error;
  }

  return {
    async update(catalog, probes, gone) {
      const body = { probes: [...probes], gone: [...gone] };
      const send = async (sending: CatalogUpdate | null): Promise<SyncReport> => {
        const reply = ask('update', { catalog: sending, ...body }, updateTimeoutMs, false);
        if (sending !== null) sent = { catalog, seq: sending.seq };
        try {
          const message = await reply;
          if (message.type !== 'synced') throw new ResolverHostError('failed', `resolver update: answered ${message.type}`);
          return message.report;
        } catch (error) {
          // The worker may not hold this catalog: send it whole next time.
          if (sending !== null && sent?.catalog === catalog) sent = undefined;
          throw error;
        }
      };
      if (catalog === sent?.catalog) return send(null);
      const patch = sent === undefined ? undefined : patchOf(sent.catalog, catalog);
      if (patch === undefined || sent === undefined) return send({ kind: 'whole', seq: nextSeq++, wire: encodeCatalog(catalog) });
      try {
        return await send({ kind: 'patch', seq: nextSeq++, base: sent.seq, patch });
      } catch (error) {
        // Refused (the worker lost its base: a decode that failed); the worker is still there, so send it whole.
        if (!(error instanceof ResolverHostError) || error.kind !== 'failed') throw error;
        log('warn', `resolver: a catalog patch was refused (${error.message}); sending the catalog whole`);
        return send({ kind: 'whole', seq: nextSeq++, wire: encodeCatalog(catalog) });
      }
    },
    async setUpstreams(next, nextSearch) {
      await ask('upstreams', { upstreams: next, search: nextSearch ?? null }, requestTimeoutMs, true);
    },
    ports: () => ports,
    async counters() {
      await ask('counters', {}, requestTimeoutMs, true);
      return { queries: { ...queries }, forwards, forwardSeconds };
    },
    status: () => status,
    exited,
    async stop() {
      if (status.state === 'running') {
        status = { state: 'stopping' };
        // Closing the sockets in the worker first says whether it could; ending
        // the thread closes whatever is left all the same.
        await ask('stop', {}, STOP_TIMEOUT_MS, false).catch((error: unknown) => log('warn', `resolver: stopping: ${messageOf(error)}`));
        await worker.terminate();
      }
      await exited;
    },
  };
}
