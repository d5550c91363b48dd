// Encoded replies to repeated questions, for one record snapshot. A local answer
// is a pure function of the snapshot, the namespace asking, the transport and the
// query's bytes after its 2-byte ID (flags, counts, the question as sent with its
// 0x20 case, the OPT record with its size and DO bit): so the reply built once is
// the reply for every later query with the same bytes, but for the ID, which is
// patched into a copy on the way out. A hit is a string key and a copy instead of
// a parse, a lookup and a build: under dnsperf those were ~4 % of the resolver
// thread's busy time (BENCHMARKS.md), the rest Node's dgram path and the kernel.
//
// Only deterministic replies are kept: the caller puts answers of at most one
// record (more are shuffled per query) and NODATA. Forwarded replies are never
// kept: their TTLs count down and negative answers live as long as their SOA
// says; that is a cache of its own, not this one.
//
// The owner makes a new cache (or clears this one) whenever the snapshot is
// swapped, so no answer outlives the records it came from. Bounded: at
// MAX_ENTRIES it is emptied and fills again from the queries that follow — no
// per-hit recency bookkeeping on the hot path, and the names a namespace keeps
// asking come back within a query each.
import type { Query, Reply } from './types.js';
import { asBuffer } from './wire.js';

export const MAX_ENTRIES = 16_384;
/** Longer queries (unusual EDNS options) are answered but not kept. */
export const MAX_KEY_BYTES = 512;
const HEADER = 12;

interface Entry {
  readonly bytes: Buffer;
  readonly outcome: Reply['outcome'];
}

export interface AnswerCache {
  /** A copy of the kept reply with the query's ID, or undefined. */
  get(query: Query): Reply | undefined;
  /** Keeps `reply`, built for `query` from the current snapshot. */
  put(query: Query, reply: Reply): void;
  clear(): void;
  readonly size: number;
}

/** The map key: transport and the query's bytes after the ID, one byte per char. */
function keyOf(query: Query): string | undefined {
  const { bytes } = query;
  if (bytes.length < HEADER || bytes.length > MAX_KEY_BYTES) return undefined;
  return (query.transport === 'udp' ? 'u' : 't') + asBuffer(bytes).toString('latin1', 2);
}

export function createAnswerCache(maxEntries = MAX_ENTRIES): AnswerCache {
  /** netns → key → entry: the namespace's string is the same object on every query, its hash kept. */
  let byNetns = new Map<string, Map<string, Entry>>();
  let size = 0;
  return {
    get(query) {
      const entries = byNetns.get(query.netns);
      if (entries === undefined) return undefined;
      const key = keyOf(query);
      if (key === undefined) return undefined;
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      // A copy: the kept bytes may still be queued in a socket when the next hit patches its ID.
      const out = Buffer.allocUnsafe(entry.bytes.length);
      entry.bytes.copy(out);
      out[0] = query.bytes[0]!;
      out[1] = query.bytes[1]!;
      return { bytes: out, outcome: entry.outcome };
    },
    put(query, reply) {
      if (reply.bytes === null) return;
      const key = keyOf(query);
      if (key === undefined) return;
      if (size >= maxEntries) {
        byNetns = new Map();
        size = 0;
      }
      let entries = byNetns.get(query.netns);
      if (entries === undefined) byNetns.set(query.netns, (entries = new Map()));
      if (!entries.has(key)) size++;
      entries.set(key, { bytes: Buffer.from(reply.bytes), outcome: reply.outcome });
    },
    clear() {
      byNetns = new Map();
      size = 0;
    },
    get size() {
      return size;
    },
  };
}
