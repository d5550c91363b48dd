// The resolver's seams. The record snapshot is pure data built from the catalog
// and swapped whole on every catalog change; the answering chain turns one query
// packet into one reply packet (or a clean drop); the server side owns sockets
// bound inside task namespaces and hands each packet to the chain.

/** How a query arrived: UDP replies are truncated to the client's size, TCP may use 65535. */
export type Transport = 'udp' | 'tcp';

export interface Query {
  /** The raw DNS message as received (without the TCP length prefix). */
  readonly bytes: Uint8Array;
  readonly transport: Transport;
  /** Path of the namespace the query came from (which task is asking). */
  readonly netns: string;
}

/** What happened to a query, for metrics ("DNS queries by outcome") and logs. */
export type Outcome =
  | 'answered'   // a local name with records of the asked type
  | 'nodata'     // a local name without records of that type: NOERROR, no answers
  | 'forwarded'  // answered by an upstream (whatever its rcode)
  | 'servfail'   // every upstream failed or timed out
  | 'refused'    // we refused: too many concurrent forwards, or a zone transfer (AXFR, IXFR)
  | 'formerr'    // malformed (FORMERR), or a request we don't serve: NOTIMP (opcode), BADVERS (EDNS version)
  | 'dropped';   // too malformed to answer (no header), or from an unknown namespace

export interface Reply {
  /** The reply message, or null to drop the query. */
  readonly bytes: Uint8Array | null;
  readonly outcome: Outcome;
}

export interface Upstream {
  readonly address: string; // IPv4 or IPv6
  readonly port: number;
}

/**
 * One query in, one reply out. Implementations never throw (nor reject). Local
 * names are answered synchronously: a promise per query costs a measurable share
 * of the few microseconds a local answer takes.
 */
export interface Answerer {
  answer(query: Query): Reply | Promise<Reply>;
}
