// Forwarding unknown names to the node's upstream servers, as Docker's resolver
// does: at most 3 servers in order, a timeout each, the client's transport (a
// UDP client that gets TC retries over TCP, and that retry is forwarded over
// TCP), SERVFAIL/REFUSED/errors/timeouts move on to the next server, anything
// else passes through verbatim. When no server gives anything better, an
// upstream's REFUSED is passed on (as Docker passes on what its upstreams last
// said): a refusal is the upstream's answer, not our failure. The sockets are opened in the agent's own
// namespace, where the host's resolv.conf servers are reachable.
import { randomInt } from 'node:crypto';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Transport, Upstream } from './types.js';
import type { Exchange } from './upstream-pool.js';
import { RCODE_REFUSED, RCODE_SERVFAIL, readQuestion } from './wire.js';

/** Docker's maxExtDNS: glibc reads no more than 3 nameservers either. */
export const MAX_UPSTREAMS = 3;

export type ForwardResult =
  /** The upstream's reply (an answer, NXDOMAIN, … or a REFUSED nothing better came after), with the client's ID back in place. */
  | { readonly kind: 'reply'; readonly bytes: Buffer }
  /** Every upstream failed (SERVFAIL, unreadable, silent), or there is none. */
  | { readonly kind: 'failed' };

export interface ForwardOptions {
  readonly timeoutMs: number;
  /** How a UDP query reaches an upstream (upstream-pool.ts). */
  readonly exchangeUdp: Exchange;
}

/**
 * Sends `query` (a parsed, well-formed query; its question ends at `questionEnd`)
 * to each upstream in turn until one gives a usable reply. Never rejects.
 */
export async function forward(
  query: Uint8Array,
  questionEnd: number,
  transport: Transport,
  upstreams: readonly Upstream[],
  options: ForwardOptions,
): Promise<ForwardResult> {
  let refused: Buffer | null = null;
  for (const upstream of upstreams.slice(0, MAX_UPSTREAMS)) {
    // A fresh ID per attempt, on a socket whose port changes often: a spoofed reply must guess both.
    const id = randomInt(0, 0x10000);
    const message = Buffer.from(query);
    message.writeUInt16BE(id, 0);
    const reply = await (transport === 'udp'
      ? options.exchangeUdp(message, upstream, options.timeoutMs, (r) => matches(r, message, questionEnd))
      : exchangeTcp(message, upstream, options.timeoutMs, (r) => matches(r, message, questionEnd)));
    if (reply === null) continue;
    const rcode = reply[3]! & 0x0f;
    if (rcode === RCODE_SERVFAIL) continue;
    if (!decodes(reply)) continue; // a reply clients can't read is a failed server
    reply[0] = query[0]!;
    reply[1] = query[1]!;
    // REFUSED may be one server's policy or a passing state: the next server may answer.
    if (rcode === RCODE_REFUSED) refused ??= reply;
    else return { kind: 'reply', bytes: reply };
  }
  return refused === null ? { kind: 'failed' } : { kind: 'reply', bytes: refused };
}

/**
 * Is this packet the reply to `sent`? Same ID, QR set, and the same question
 * (case-insensitively; RFC 1035 names compare that way), or no question at all
 * with an error rcode (a FORMERR/NOTIMP may carry none). Anything else is a
 * stray or spoofed packet and is ignored.
 */
export function matches(reply: Uint8Array, sent: Uint8Array, questionEnd: number): boolean {
  if (reply.length < 12) return false;
  if (reply[0] !== sent[0] || reply[1] !== sent[1] || (reply[2]! & 0x80) === 0) return false;
  const qdcount = (reply[4]! << 8) | reply[5]!;
  if (qdcount === 0) return (reply[3]! & 0x0f) !== 0;
  if (qdcount !== 1) return false;
  const question = readQuestion(reply, 12);
  if (question === null || question.end !== questionEnd) return false;
  for (let i = 12; i < questionEnd; i++) {
    if (lower(reply[i]!) !== lower(sent[i]!)) return false;
  }
  return true;
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

function decodes(reply: Buffer): boolean {
  try {
    dnsPacket.decode(reply);
    return true;
  } catch {
    return false;
  }
}

/** One TCP exchange: 2-byte length framing (RFC 1035 §4.2.2), replies that don't match are skipped. */
function exchangeTcp(
  message: Buffer,
  upstream: Upstream,
  timeoutMs: number,
  accept: (reply: Buffer) => boolean,
): Promise<Buffer | null> {
  return new Promise((resolve) => {
    let settled = false;
    let socket: net.Socket | undefined;
    const finish = (reply: Buffer | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    try {
      socket = net.connect({ host: upstream.address, port: upstream.port });
    } catch {
      finish(null);
      return;
    }
    let pending: Buffer = Buffer.alloc(0);
    socket.on('error', () => finish(null));
    socket.on('close', () => finish(null));
    socket.on('connect', () => {
      const framed = Buffer.allocUnsafe(2 + message.length);
      framed.writeUInt16BE(message.length, 0);
      message.copy(framed, 2);
      socket?.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) return;
        const reply = Buffer.from(pending.subarray(2, 2 + length));
        pending = pending.subarray(2 + length);
        if (accept(reply)) {
          finish(reply);
          return;
        }
      }
    });
  });
}
