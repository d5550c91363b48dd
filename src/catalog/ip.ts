import { Address4, Address6 } from 'ip-address';
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
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

export function parseIp(text: string): Parsed<Ip> {
  if (text.includes('/')) return { ok: false, message: `${text} must be a single address, without a /prefix` };
  // A zone (fe80::1%eth0) names a local interface and means nothing in a cluster-wide catalog.
  if (text.includes('%')) return { ok: false, message: `${text} must not carry a zone (%…)` };
  try {
    const family: Family = text.includes(':') ? 6 : 4;
    const address = family === 4 ? new Address4(text) : new Address6(text);
    const value = address.bigInt();
    return { ok: true, value: { family, value, text: fromBigInt(family, value) } };
  } catch {
    return { ok: false, message: `${text} is not a valid IPv4 or IPv6 address` };
  }
}

export function parseCidr(text: string): Parsed<Cidr> {
  const bad = { ok: false as const, message: `${text} is not a CIDR such as 10.0.1.0/24 or fd00:1::/64` };
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
  if (base !== value) return { ok: false, message: `${text} has host bits set; the network is ${canonical}` };
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
 * The network and broadcast addresses of an IPv4 subnet can't be given to an
 * interface; /31 and /32 have no such addresses (RFC 3021).
 */
export function reservedRole(cidr: Cidr, ip: Ip): 'network' | 'broadcast' | undefined {
  if (cidr.family !== 4 || cidr.prefix > 30 || !contains(cidr, ip)) return undefined;
  if (ip.value === cidr.base) return 'network';
  const broadcast = cidr.base + (1n << BigInt(32 - cidr.prefix)) - 1n;
  return ip.value === broadcast ? 'broadcast' : undefined;
}
