// fwmarks vipmesh owns. Everything lives in one 24-bit block so cleanup and
// reconcile can recognise their own IPVS services by mark alone:
//   0x56000000 + 0x10000 × IP protocol + port   ingress published ports
//   0x56900000 … 0x56ffffff                     VIPs, hashed from service/network
// Protocol numbers 6, 17 and 132 keep the port marks below 0x56850000, so the
// two kinds never meet.
import type { Protocol } from '../catalog/types.js';

export const MARK_BASE = 0x56000000;
export const MARK_LAST = 0x56ffffff;
const VIP_FIRST = 0x56900000;
const VIP_SLOTS = MARK_LAST - VIP_FIRST + 1;

export const PROTOCOL_NUMBERS: Readonly<Record<Protocol, number>> = { tcp: 6, udp: 17, sctp: 132 };

export function isVipmeshMark(mark: number): boolean {
  return mark >= MARK_BASE && mark <= MARK_LAST;
}

export function isVipMark(mark: number): boolean {
  return mark >= VIP_FIRST && mark <= MARK_LAST;
}

export function portMark(protocol: Protocol, published: number): number {
  return MARK_BASE + 0x10000 * PROTOCOL_NUMBERS[protocol] + published;
}

/** FNV-1a, 32 bit: stable across releases and platforms, which a mark must be. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export function vipHomeMark(label: string): number {
  return VIP_FIRST + (fnv1a(label) % VIP_SLOTS);
}

/**
 * Marks for the VIPs of one namespace. A VIP that already has a mark there keeps
 * it; the rest take their hash slot, probing upward past taken slots in name
 * order, so adding or removing another service never moves an existing mark.
 */
export function assignVipMarks(
  labels: readonly string[],
  existing: ReadonlyMap<string, number> | undefined,
): Map<string, number> {
  const wanted = new Set(labels);
  const result = new Map<string, number>();
  const taken = new Set<number>();
  for (const [label, mark] of [...(existing ?? [])].sort(([a], [b]) => compareText(a, b))) {
    if (wanted.has(label) && isVipMark(mark) && !taken.has(mark)) {
      result.set(label, mark);
      taken.add(mark);
    }
  }
  for (const label of [...wanted].sort(compareText)) {
    if (result.has(label)) continue;
    let mark = vipHomeMark(label);
    while (taken.has(mark)) mark = mark === MARK_LAST ? VIP_FIRST : mark + 1;
    result.set(label, mark);
    taken.add(mark);
  }
  return result;
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
