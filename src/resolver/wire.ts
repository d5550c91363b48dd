// The DNS wire format, by hand, for the messages the resolver builds itself.
// Pure: no I/O. Queries are read straight from the bytes and replies assembled
// from the query's own header and question plus pre-encoded records, which is
// what keeps the question byte-exact (0x20 case survives) and costs ~0.2 µs
// instead of dns-packet's ~2 µs decode+encode (bench/dns-codec.ts).
// Anything of an unusual shape goes to dns-packet (see parseQuery).
import dnsPacket from 'dns-packet';

export const TTL = 600; // Docker's TTL for every local answer

export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const TYPE_IXFR = 251;
export const TYPE_AXFR = 252;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;
/** Extended (12-bit) rcode: the low 4 bits go in the header, the rest in the OPT record. */
export const RCODE_BADVERS = 16;

/** A client without EDNS accepts 512 bytes over UDP (RFC 1035). */
export const UDP_MIN = 512;
/** The largest UDP payload IPv4 can carry; an EDNS size above it can't be honoured anyway. */
export const UDP_MAX = 65_507;
export const TCP_MAX = 65_535;
/** The UDP size we advertise in our own OPT record (DNS Flag Day 2020). */
export const OUR_UDP_SIZE = 1232;

const HEADER = 12;
const OPT_RR_SIZE = 11; // root owner, type, class, ttl, rdlength 0

const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const FLAG_CD = 0x0010;
const OPCODE_MASK = 0x7800;

export interface Edns {
  /** The client's UDP payload size, already raised to at least 512. */
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
}

/** What a reply needs to echo from its query. */
export interface QueryHead {
  /** The query's header flags (bytes 2–3) as sent. */
  readonly flags: number;
  /** The question is bytes 12..questionEnd of the query; 12 means none is echoed. */
  readonly questionEnd: number;
  /** The query's OPT record, or null; a reply carries OPT exactly when the query did. */
  readonly edns: Edns | null;
}

export interface ParsedQuery extends QueryHead {
  readonly id: number;
  /**
   * The question name lower-cased, without the trailing dot ("" for the root);
   * null when no name of ours can match it (a label holding a '.' byte).
   */
  readonly name: string | null;
  readonly qtype: number;
  readonly qclass: number;
}

export type ParseResult =
  | { readonly kind: 'query'; readonly query: ParsedQuery }
  /** Answer with this rcode: malformed (FORMERR), an opcode we don't serve (NOTIMP), EDNS version > 0 (BADVERS). */
  | { readonly kind: 'error'; readonly rcode: number; readonly head: QueryHead }
  /** No header, or a response: a reply could feed a loop, so nothing is sent. */
  | { readonly kind: 'drop' };

interface Question {
  readonly end: number;
  readonly name: string | null;
  readonly qtype: number;
  readonly qclass: number;
}

// One scratch buffer for the lower-cased name: a name is at most 255 bytes on the wire.
const scratch = Buffer.alloc(256);

/**
 * The question at `offset`, without compression (a query's first name has nothing
 * before it to point to). Rejects what dns-packet would refuse to decode, so an
 * echoed question always decodes: labels over 63, names over 255 bytes.
 */
export function readQuestion(bytes: Uint8Array, offset: number): Question | null {
  const length = bytes.length;
  let off = offset;
  let n = 0; // bytes of the lower-cased dotted name in scratch
  let wire = 0; // bytes of the labels on the wire, without the root: at most 254 (255 with it)
  let ours = true;
  for (;;) {
    if (off >= length) return null;
    const label = bytes[off]!;
    if (label === 0) {
      off += 1;
      break;
    }
    if (label > 63) return null; // a pointer (0xC0) or a reserved label type (0x40, 0x80)
    const end = off + 1 + label;
    wire += label + 1;
    if (end > length || wire > 254) return null;
    if (n > 0) scratch[n++] = 0x2e;
    for (let i = off + 1; i < end; i++) {
      let c = bytes[i]!;
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      else if (c === 0x2e) ours = false;
      scratch[n++] = c;
    }
    off = end;
  }
  if (off + 4 > length) return null;
  const qtype = (bytes[off]! << 8) | bytes[off + 1]!;
  const qclass = (bytes[off + 2]! << 8) | bytes[off + 3]!;
  return { end: off + 4, name: ours ? scratch.toString('latin1', 0, n) : null, qtype, qclass };
}

function u16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

function ednsOf(udpSize: number, ttl: number): Edns {
  return {
    udpSize: Math.max(UDP_MIN, udpSize),
    version: (ttl >>> 16) & 0xff,
    dnssecOk: (ttl & 0x8000) !== 0,
  };
}

/**
 * One query message → what to do with it. Never throws. The common shape (one
 * question, maybe one OPT, nothing else) is read by hand; any other shape is
 * decoded whole by dns-packet, and a message it can't decode is FORMERR.
 */
export function parseQuery(bytes: Uint8Array): ParseResult {
  const length = bytes.length;
  if (length < HEADER) return { kind: 'drop' };
  const flags = u16(bytes, 2);
  if ((flags & FLAG_QR) !== 0) return { kind: 'drop' };
  const id = u16(bytes, 0);
  const qdcount = u16(bytes, 4);
  const ancount = u16(bytes, 6);
  const nscount = u16(bytes, 8);
  const arcount = u16(bytes, 10);
  const question = qdcount >= 1 ? readQuestion(bytes, HEADER) : null;
  const questionEnd = question?.end ?? HEADER;

  const opcode = (flags & OPCODE_MASK) >> 11;
  if (opcode !== 0) return error(RCODE_NOTIMP, flags, qdcount === 1 ? questionEnd : HEADER, null);
  // RFC 9619: a QUERY carries exactly one question.
  if (qdcount !== 1 || question === null) return error(RCODE_FORMERR, flags, questionEnd, null);

  let edns: Edns | null = null;
  const rest = length - question.end;
  if (ancount === 0 && nscount === 0 && arcount === 0 && rest === 0) {
    // the plain query
  } else if (
    ancount === 0 && nscount === 0 && arcount === 1 &&
    rest >= OPT_RR_SIZE && bytes[question.end] === 0 && u16(bytes, question.end + 1) === TYPE_OPT &&
    rest === OPT_RR_SIZE + u16(bytes, question.end + 9)
  ) {
    const at = question.end + 1;
    edns = ednsOf(u16(bytes, at + 2), ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | u16(bytes, at + 6)) >>> 0);
  } else {
    const general = generalEdns(bytes);
    if (general === 'malformed') return error(RCODE_FORMERR, flags, question.end, null);
    edns = general;
  }
  if (edns !== null && edns.version !== 0) return error(RCODE_BADVERS, flags, question.end, edns);
  return {
    kind: 'query',
    query: { id, flags, questionEnd: question.end, edns, name: question.name, qtype: question.qtype, qclass: question.qclass },
  };
}

/** The general path: dns-packet decodes the whole message; more than one OPT, or one not at the root, is malformed. */
function generalEdns(bytes: Uint8Array): Edns | null | 'malformed' {
  let decoded: dnsPacket.Packet;
  try {
    decoded = dnsPacket.decode(asBuffer(bytes));
  } catch {
    return 'malformed';
  }
  let found: Edns | null = null;
  for (const record of decoded.additionals ?? []) {
    if (record.type !== 'OPT') continue;
    if (found !== null || record.name !== '.') return 'malformed';
    const opt = record as dnsPacket.OptAnswer & { ednsVersion?: number };
    found = ednsOf(opt.udpPayloadSize, ((opt.ednsVersion ?? 0) << 16) | (opt.flags ?? 0));
  }
  return found;
}

function error(rcode: number, flags: number, questionEnd: number, edns: Edns | null): ParseResult {
  return { kind: 'error', rcode, head: { flags, questionEnd, edns } };
}

/** A Buffer over the same memory (dns-packet and sockets want Buffers). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** How many bytes a reply to this query may take: UDP max(512, EDNS size), TCP 65535. */
export function replyLimit(transport: 'udp' | 'tcp', edns: Edns | null): number {
  if (transport === 'tcp') return TCP_MAX;
  return edns === null ? UDP_MIN : Math.min(edns.udpSize, UDP_MAX);
}

/**
 * A reply built from the query: its ID, opcode, RD and CD, its question byte for
 * byte, then `answers` (whole pre-encoded records, in the order given) while they
 * fit in `limit`, then an OPT record if the query had one. Records that don't fit
 * are dropped whole and TC is set. RA is set: we recurse (forward) for clients.
 */
export function buildReply(
  query: Uint8Array,
  head: QueryHead,
  rcode: number,
  answers: readonly Uint8Array[],
  limit: number,
): Buffer {
  const questionLength = head.questionEnd - HEADER;
  const optSize = head.edns === null ? 0 : OPT_RR_SIZE;
  let size = HEADER + questionLength + optSize;
  let count = 0;
  for (; count < answers.length; count++) {
    const next = size + answers[count]!.length;
    if (next > limit) break;
    size = next;
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = query[0]!;
  out[1] = query[1]!;
  let flags = FLAG_QR | (head.flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | FLAG_RA | (rcode & 0xf);
  if (count < answers.length) flags |= FLAG_TC;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = questionLength > 0 ? 1 : 0;
  out[6] = count >> 8;
  out[7] = count & 0xff;
  out[8] = 0;
  out[9] = 0;
  out[10] = 0;
  out[11] = optSize > 0 ? 1 : 0;
  let off = HEADER;
  if (questionLength > 0) {
    out.set(query.subarray(HEADER, head.questionEnd), off);
    off += questionLength;
  }
  for (let i = 0; i < count; i++) {
    const rr = answers[i]!;
    out.set(rr, off);
    off += rr.length;
  }
  if (head.edns !== null) writeOpt(out, off, rcode >> 4, head.edns.dnssecOk);
  return out;
}

function writeOpt(out: Uint8Array, off: number, extendedRcode: number, dnssecOk: boolean): void {
  out[off] = 0; // root owner
  out[off + 1] = 0;
  out[off + 2] = TYPE_OPT;
  out[off + 3] = OUR_UDP_SIZE >> 8;
  out[off + 4] = OUR_UDP_SIZE & 0xff;
  out[off + 5] = extendedRcode & 0xff;
  out[off + 6] = 0; // EDNS version 0
  out[off + 7] = dnssecOk ? 0x80 : 0; // RFC 3225: DO is copied into the response
  out[off + 8] = 0;
  out[off + 9] = 0; // rdlength
  out[off + 10] = 0;
}

/** A resource record whose owner is the question name (pointer 0xC00C), class IN, TTL 600. */
export function encodeRecord(type: number, rdata: Uint8Array): Uint8Array {
  const rr = new Uint8Array(12 + rdata.length);
  rr[0] = 0xc0;
  rr[1] = 0x0c;
  rr[2] = type >> 8;
  rr[3] = type & 0xff;
  rr[4] = 0;
  rr[5] = CLASS_IN;
  rr[6] = (TTL >>> 24) & 0xff;
  rr[7] = (TTL >>> 16) & 0xff;
  rr[8] = (TTL >>> 8) & 0xff;
  rr[9] = TTL & 0xff;
  rr[10] = rdata.length >> 8;
  rr[11] = rdata.length & 0xff;
  rr.set(rdata, 12);
  return rr;
}

/** An A or AAAA record (as encodeRecord) for an address in text; null if it is no address. */
export function encodeAddressRecord(text: string): Uint8Array | null {
  if (!text.includes(':')) {
    // IPv4 straight into the record: building 10k services' records must not churn garbage
    const rr = encodeRecord(TYPE_A, EMPTY_RDATA4);
    return readIpv4(text, rr, 12) ? rr : null;
  }
  const bytes = addressBytes(text);
  return bytes === null ? null : encodeRecord(TYPE_AAAA, bytes);
}

const EMPTY_RDATA4 = new Uint8Array(4);

/** Dotted quad → 4 bytes at `out[offset]`; false if it isn't one (no leading zeros, each part ≤ 255). */
function readIpv4(text: string, out: Uint8Array, offset: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 0x2e : text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return false;
      out[offset + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** An uncompressed wire name for a dotted name of valid labels. */
export function encodeName(name: string): Uint8Array {
  const labels = name.split('.').filter((l) => l.length > 0);
  const out = new Uint8Array(labels.reduce((n, l) => n + l.length + 1, 0) + 1);
  let off = 0;
  for (const label of labels) {
    out[off++] = label.length;
    for (let i = 0; i < label.length; i++) out[off++] = label.charCodeAt(i) & 0xff;
  }
  out[off] = 0;
  return out;
}

/** The 4 or 16 bytes of a dotted-quad or (canonical or not) IPv6 address; null if it is neither. */
export function addressBytes(text: string): Uint8Array | null {
  if (!text.includes(':')) return ipv4Bytes(text);
  const out = new Uint8Array(16);
  let body = text;
  let tail: Uint8Array | null = null;
  const lastColon = body.lastIndexOf(':');
  if (body.indexOf('.', lastColon) >= 0) {
    tail = ipv4Bytes(body.slice(lastColon + 1));
    if (tail === null) return null;
    body = body.slice(0, lastColon + 1) + '0:0';
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const back = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const groups = halves.length === 2 ? head.length + back.length : head.length;
  if (halves.length === 2 ? groups > 7 : groups !== 8) return null;
  const all = [...head, ...new Array<string>(8 - groups).fill('0'), ...back];
  for (let i = 0; i < 8; i++) {
    const group = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    const value = parseInt(group, 16);
    out[i * 2] = value >> 8;
    out[i * 2 + 1] = value & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return out;
}

function ipv4Bytes(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  return readIpv4(text, out, 0) ? out : null;
}

/** The in-addr.arpa / ip6.arpa name of an address (lower case, no trailing dot). */
export function reverseName(address: Uint8Array): string {
  if (address.length === 4) return `${address[3]}.${address[2]}.${address[1]}.${address[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = address.length - 1; i >= 0; i--) {
    const b = address[i]!;
    nibbles.push((b & 0xf).toString(16), (b >> 4).toString(16));
  }
  return `${nibbles.join('.')}.ip6.arpa`;
}

/** Offset just past the (possibly compressed) name at `offset`, or -1. */
function skipName(bytes: Uint8Array, offset: number): number {
  let off = offset;
  for (let steps = 0; steps < 128; steps++) {
    if (off >= bytes.length) return -1;
    const label = bytes[off]!;
    if (label === 0) return off + 1;
    if ((label & 0xc0) === 0xc0) return off + 2 <= bytes.length ? off + 2 : -1;
    if (label > 63) return -1;
    off += 1 + label;
  }
  return -1;
}

/**
 * An upstream's reply cut to `limit` bytes: records are kept in wire order while
 * they fit and the rest dropped whole, so every compression pointer still points
 * into kept bytes (pointers only point backwards); an OPT record that falls past
 * the cut is moved to the end. TC is set when an answer or authority record was
 * dropped (RFC 2181 §9: not for additional data alone). Replies that can't be
 * walked, or whose cut dns-packet can't decode, shrink to header + question + TC.
 */
export function truncateReply(reply: Uint8Array, limit: number): Uint8Array {
  if (reply.length <= limit) return reply;
  const cut = cutRecords(reply, limit);
  if (cut !== null) {
    try {
      dnsPacket.decode(asBuffer(cut));
      return cut;
    } catch {
      // fall through to the minimal form
    }
  }
  return minimalTruncated(reply);
}

function cutRecords(reply: Uint8Array, limit: number): Uint8Array | null {
  if (reply.length < HEADER) return null;
  const qdcount = u16(reply, 4);
  const counts = [u16(reply, 6), u16(reply, 8), u16(reply, 10)] as const;
  let off = HEADER;
  for (let i = 0; i < qdcount; i++) {
    off = skipName(reply, off);
    if (off < 0 || off + 4 > reply.length) return null;
    off += 4;
  }
  const questionEnd = off;
  const records: { start: number; end: number; section: number; opt: boolean }[] = [];
  for (let section = 0; section < 3; section++) {
    for (let i = 0; i < counts[section]!; i++) {
      const start = off;
      const nameEnd = skipName(reply, off);
      if (nameEnd < 0 || nameEnd + 10 > reply.length) return null;
      const end = nameEnd + 10 + u16(reply, nameEnd + 8);
      if (end > reply.length) return null;
      records.push({ start, end, section, opt: section === 2 && u16(reply, nameEnd) === TYPE_OPT && nameEnd === start + 1 });
      off = end;
    }
  }
  const optIndex = records.findIndex((r) => r.opt);
  const opt = optIndex < 0 ? undefined : records[optIndex]!;
  const optLength = opt === undefined ? 0 : opt.end - opt.start;
  // The longest prefix of records that fits, with the OPT record appended when it lies past the cut.
  let keep = records.length;
  for (; keep > 0; keep--) {
    const size = records[keep - 1]!.end + (optIndex >= keep ? optLength : 0);
    if (size <= limit) break;
  }
  if (keep === 0 && questionEnd + optLength > limit) return null;
  const bodyEnd = keep === 0 ? questionEnd : records[keep - 1]!.end;
  const appendOpt = opt !== undefined && optIndex >= keep;
  const kept = [0, 0, 0];
  for (let i = 0; i < keep; i++) kept[records[i]!.section]!++;
  if (appendOpt) kept[2]!++;
  const droppedEssential = records.slice(keep).some((r) => r.section < 2);
  const out = Buffer.allocUnsafe(bodyEnd + (appendOpt ? optLength : 0));
  out.set(reply.subarray(0, bodyEnd), 0);
  if (appendOpt) out.set(reply.subarray(opt.start, opt.end), bodyEnd);
  let flags = u16(reply, 2);
  if (droppedEssential) flags |= FLAG_TC;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  for (let s = 0; s < 3; s++) {
    out[6 + s * 2] = kept[s]! >> 8;
    out[7 + s * 2] = kept[s]! & 0xff;
  }
  return out;
}

function minimalTruncated(reply: Uint8Array): Uint8Array {
  const question = reply.length >= HEADER && u16(reply, 4) >= 1 ? readQuestion(reply, HEADER) : null;
  const end = question?.end ?? HEADER;
  const out = Buffer.alloc(Math.max(end, HEADER));
  out.set(reply.subarray(0, Math.min(end, reply.length)), 0);
  const flags = (u16(out, 2) | FLAG_TC | FLAG_QR) & 0xffff;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = question === null ? 0 : 1;
  out.fill(0, 6, 12);
  return out;
}
