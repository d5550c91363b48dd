import { Address4, Address6 } from 'ip-address';
import { shown } from './problems.js';
import type { Family } from './types.js';

export interface Ip {
  readonly family: Family;
  /** Canonical text: dotted quad, or compressed lowercase IPv6, so equal addresses compare equal. */
  readonly text: string;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: Family;
  readonly base: bigint;
  readonly prefix: number;
  readonly text: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

function fromBigInt(family: Family, value: bigint): string {
  if (family === 4) {
    const n = Number(value);
    return `${Math.floor(n / 0x1000000)}.${Math.floor(n / 0x10000) % 256}.${Math.floor(n / 0x100) % 256}.${n % 256}`;
  }
  return Address6.fromBigInt(value).correctForm();
}

/**
 * A well-formed dotted quad without going through ip-address, whose objects cost
 * microseconds each: a catalog holds hundreds of thousands of addresses. Such a
 * quad is already in canonical form. Anything else takes the general path.
 */
function parseDottedQuad(text: string): Ip | undefined {
  const value = dottedQuadValue(text);
  return value === undefined ? undefined : { family: 4, value: BigInt(value), text };
}

const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * The value of a well-formed dotted quad (which is its canonical text), as a plain
 * number; undefined for anything else. Well-formed is what ip-address's own
 * pattern accepts: four parts of 0 to 255 in decimal, no leading zeros
 * (/^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(…)\.(…)\.(…)$/), read here
 * without a regular expression's match arrays.
 */
export function dottedQuadValue(text: string): number | undefined {
  const end = text.length;
  if (end < 7 || end > 15) return undefined;
  let value = 0;
  let at = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (text.charCodeAt(at) !== DOT) return undefined;
      at++;
    }
    const start = at;
    let octet = 0;
    for (let c = text.charCodeAt(at); c >= ZERO && c <= NINE && at - start < 3; c = text.charCodeAt(++at)) {
      octet = octet * 10 + (c - ZERO);
    }
    const digits = at - start;
    if (digits === 0 || octet > 255 || (digits > 1 && text.charCodeAt(start) === ZERO)) return undefined;
    value = value * 256 + octet;
  }
  return at === end ? value : undefined;
}

export function parseIp(text: string): Parsed<Ip> {
  if (text.includes('/')) return { ok: false, message: `${shown(text)} must be a single address, without a /prefix` };
  // A zone (fe80::1%eth0) names a local interface and means nothing in a cluster-wide catalog.
  if (text.includes('%')) return { ok: false, message: `${shown(text)} must not carry a zone (%…)` };
  const quad = parseDottedQuad(text);
  if (quad !== undefined) return { ok: true, value: quad };
  try {
    const family: Family = text.includes(':') ? 6 : 4;
    const address = family === 4 ? new Address4(text) : new Address6(text);
    const value = address.bigInt();
    return { ok: true, value: { family, value, text: fromBigInt(family, value) } };
  } catch {
    return { ok: false, message: `${shown(text)} is not a valid IPv4 or IPv6 address` };
  }
}

export function parseCidr(text: string): Parsed<Cidr> {
  const bad = { ok: false as const, message: `${shown(text)} is not a CIDR such as 10.0.1.0/24 or fd00:1::/64` };
  const slash = text.indexOf('/');
  if (slash < 0) return bad;
  const address = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!address.ok || !/^\d{1,3}$/.test(prefixText)) return bad;
  const { family, value } = address.value;
  const prefix = Number(prefixText);
  if (prefix > bitsOf(family)) return bad;
  const base = networkOf(family, value, prefix);
  const canonical = `${fromBigInt(family, base)}/${prefix}`;
  if (base !== value) return { ok: false, message: `${shown(text)} has host bits set; the network is ${canonical}` };
  return { ok: true, value: { family, base, prefix, text: canonical } };
}

function networkOf(family: Family, value: bigint, prefix: number): bigint {
  const hostBits = BigInt(bitsOf(family) - prefix);
  return (value >> hostBits) << hostBits;
}

export function contains(cidr: Cidr, ip: Ip): boolean {
  return cidr.family === ip.family && networkOf(ip.family, ip.value, cidr.prefix) === cidr.base;
}

export function overlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const prefix = Math.min(a.prefix, b.prefix);
  return networkOf(a.family, a.base, prefix) === networkOf(b.family, b.base, prefix);
}

/**
 * Where an IPv4 address (a plain number, as dottedQuadValue gives it) lies in an
 * IPv4 subnet: what contains() and reservedRole() say, without BigInt arithmetic.
 */
export function placeV4(cidr: Cidr, value: number): 'outside' | 'network' | 'broadcast' | 'host' {
  const size = 2 ** (32 - cidr.prefix);
  const base = Number(cidr.base);
  if (value < base || value >= base + size) return 'outside';
  if (cidr.prefix > 30) return 'host';
  if (value === base) return 'network';
  return value === base + size - 1 ? 'broadcast' : 'host';
}

/**
 * The network and broadcast addresses of an IPv4 subnet can't be given to an
 * interface; /31 and /32 have no such addresses (RFC 3021).
 */
export function reservedRole(cidr: Cidr, ip: Ip): 'network' | 'broadcast' | undefined {
  if (cidr.family !== 4 || cidr.prefix > 30 || !contains(cidr, ip)) return undefined;
  if (ip.value === cidr.base) return 'network';
  const broadcast = cidr.base + (1n << BigInt(32 - cidr.prefix)) - 1n;
  return ip.value === broadcast ? 'broadcast' : undefined;
}
