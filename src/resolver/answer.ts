// The answering chain, CoreDNS-style: each handler answers or calls `next`.
//   parse     — bytes → a query, or FORMERR/NOTIMP/BADVERS, or a clean drop
//   view      — a namespace no running local task owns is dropped
//   transfers — AXFR and IXFR are REFUSED
//   local     — names from the record snapshot: answer or NODATA
//   forward  — everything else goes upstream (bounded, with timeouts), else SERVFAIL
// The snapshot and the upstream list are swapped whole; a query in flight keeps
// the ones it started with. In front of the chain, the encoded replies `local`
// built from this snapshot (answer-cache.ts), emptied when the snapshot is swapped.
import type { Answerer, Outcome, Query, Reply, Upstream } from './types.js';
import { type AnswerCache, createAnswerCache } from './answer-cache.js';
import { forward } from './forward.js';
import { createUpstreamPool } from './upstream-pool.js';
import type { Records } from './records.js';
import {
  buildReply,
  CLASS_ANY,
  CLASS_IN,
  parseQuery,
  RCODE_NOERROR,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  replyLimit,
  TYPE_AXFR,
  TYPE_IXFR,
  truncateReply,
  type ParsedQuery,
} from './wire.js';

export const DEFAULT_MAX_CONCURRENT_FORWARDS = 1024; // Docker's, libnetwork PR#2262
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 4000; // Docker's extIOTimeout

export interface ResolverOptions {
  readonly records: Records;
  readonly upstreams: readonly Upstream[];
  /** Forwards in flight beyond this are REFUSED at once. */
  readonly maxConcurrentForwards?: number;
  /** Per upstream server and attempt. */
  readonly upstreamTimeoutMs?: number;
  /** [0, 1): shuffles multi-address answers; tests may pin it. */
  readonly random?: () => number;
  /** Told how long each forward took, from sending upstream to its reply or SERVFAIL (for vipmesh_dns_forward_duration_seconds). */
  readonly onForward?: (seconds: number) => void;
  /** Keep local replies for repeated questions (default true; tests compare with it off). */
  readonly answerCache?: boolean;
}

export interface Resolver extends Answerer {
  setRecords(records: Records): void;
  setUpstreams(upstreams: readonly Upstream[]): void;
  /** Replies by outcome since start (live; read it, don't keep a copy). */
  readonly counters: Readonly<Record<Outcome, number>>;
  /** Forwards in flight now. */
  readonly forwardsInFlight: number;
  /** Replies kept for repeated questions now (answer-cache.ts). */
  readonly cachedReplies: number;
}

export interface Request {
  readonly query: Query;
  readonly parsed: ParsedQuery;
  /** The most bytes the reply may take on the query's transport. */
  readonly limit: number;
}

export type Next = (request: Request) => Reply | Promise<Reply>;
export type Handler = (request: Request, next: Next) => Reply | Promise<Reply>;

export const OUTCOMES: readonly Outcome[] = [
  'answered', 'nodata', 'forwarded', 'servfail', 'refused', 'formerr', 'dropped',
];

const DROP: Reply = { bytes: null, outcome: 'dropped' };

export function createResolver(options: ResolverOptions): Resolver {
  let records = options.records;
  let upstreams = [...options.upstreams];
  const maxForwards = options.maxConcurrentForwards ?? DEFAULT_MAX_CONCURRENT_FORWARDS;
  const timeoutMs = options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  const random = options.random ?? Math.random;
  const onForward = options.onForward;
  const counters = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  let inFlight = 0;
  const pool = createUpstreamPool();
  const cache: AnswerCache | null = options.answerCache === false ? null : createAnswerCache();

  const view: Handler = (request, next) =>
    records.hasView(request.query.netns) ? next(request) : DROP;

  // Zone transfers are REFUSED, for our names and any other: REFUSED is what BIND
  // and Unbound answer a transfer they will not serve, and what Docker's clients
  // get back from its upstreams (it forwards them). NOTIMP would claim the query
  // kind unknown; the empty NOERROR a local name gave looked like an empty zone.
  // Not forwarded: a stub resolver is no path for zone transfers.
  const transfers: Handler = (request, next) => {
    const { qtype } = request.parsed;
    if (qtype !== TYPE_AXFR && qtype !== TYPE_IXFR) return next(request);
    return { bytes: buildReply(request.query.bytes, request.parsed, RCODE_REFUSED, [], request.limit), outcome: 'refused' };
  };

  const local: Handler = (request, next) => {
    const { parsed } = request;
    if (parsed.name === null || (parsed.qclass !== CLASS_IN && parsed.qclass !== CLASS_ANY)) return next(request);
    const found = records.lookup(request.query.netns, parsed.name, parsed.qtype);
    switch (found.kind) {
      case 'no-view':
        return DROP;
      case 'unknown':
        return next(request);
      case 'nodata': {
        const reply: Reply = { bytes: buildReply(request.query.bytes, parsed, RCODE_NOERROR, [], request.limit), outcome: 'nodata' };
        cache?.put(request.query, reply);
        return reply;
      }
      case 'answer': {
        const wires = shuffled(found.records, random);
        const reply: Reply = { bytes: buildReply(request.query.bytes, parsed, RCODE_NOERROR, wires, request.limit), outcome: 'answered' };
        // More than one record: a fresh order for every query, so not kept.
        if (wires.length <= 1) cache?.put(request.query, reply);
        return reply;
      }
    }
  };

  const upstream: Handler = async (request) => {
    const { query, parsed, limit } = request;
    if (inFlight >= maxForwards) {
      return { bytes: buildReply(query.bytes, parsed, RCODE_REFUSED, [], limit), outcome: 'refused' };
    }
    inFlight++;
    const started = performance.now();
    try {
      const result = await forward(query.bytes, parsed.questionEnd, query.transport, upstreams, { timeoutMs, exchangeUdp: pool.exchange });
      onForward?.((performance.now() - started) / 1000);
      if (result.kind === 'failed') {
        return { bytes: buildReply(query.bytes, parsed, RCODE_SERVFAIL, [], limit), outcome: 'servfail' };
      }
      // Forwarded verbatim, the client's OPT included, so the upstream already keeps to the
      // client's size; a reply that still doesn't fit is cut here rather than dropped by the client.
      const bytes = query.transport === 'udp' ? truncateReply(result.bytes, limit) : result.bytes;
      return { bytes, outcome: 'forwarded' };
    } finally {
      inFlight--;
    }
  };

  const chain = compose([view, transfers, local, upstream]);

  function run(query: Query): Reply | Promise<Reply> {
    const parsed = parseQuery(query.bytes);
    if (parsed.kind === 'drop') return DROP;
    if (parsed.kind === 'error') {
      if (!records.hasView(query.netns)) return DROP;
      const bytes = buildReply(query.bytes, parsed.head, parsed.rcode, [], replyLimit(query.transport, parsed.head.edns));
      return { bytes, outcome: 'formerr' };
    }
    const request: Request = { query, parsed: parsed.query, limit: replyLimit(query.transport, parsed.query.edns) };
    const servfail = (): Reply => ({
      bytes: buildReply(query.bytes, parsed.query, RCODE_SERVFAIL, [], request.limit),
      outcome: 'servfail',
    });
    try {
      const reply = chain(request);
      return reply instanceof Promise ? reply.catch(servfail) : reply;
    } catch {
      return servfail();
    }
  }

  const count = (reply: Reply): Reply => {
    counters[reply.outcome]++;
    return reply;
  };

  return {
    answer(query: Query): Reply | Promise<Reply> {
      let reply: Reply | Promise<Reply>;
      try {
        reply = cache?.get(query) ?? run(query);
      } catch {
        reply = DROP;
      }
      return reply instanceof Promise ? reply.then(count, () => count(DROP)) : count(reply);
    },
    setRecords(next: Records): void {
      records = next;
      cache?.clear();
    },
    setUpstreams(next: readonly Upstream[]): void {
      upstreams = [...next];
    },
    get counters(): Readonly<Record<Outcome, number>> {
      return counters;
    },
    get forwardsInFlight(): number {
      return inFlight;
    },
    get cachedReplies(): number {
      return cache?.size ?? 0;
    },
  };
}

/** Handlers in order; the last one's `next` is never reached by a well-formed chain. */
export function compose(handlers: readonly Handler[]): Next {
  const end: Next = () => DROP;
  return handlers.reduceRight<Next>((next, handler) => (request) => handler(request, next), end);
}

/** The records' wire forms in a fresh random order (Fisher–Yates); Docker shuffles before it truncates. */
function shuffled(records: readonly { readonly wire: Uint8Array }[], random: () => number): Uint8Array[] {
  const n = records.length;
  const out = new Array<Uint8Array>(n);
  for (let i = 0; i < n; i++) out[i] = records[i]!.wire;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}
