// Address ordering for deterministic output: numeric, not textual (10.0.1.10 after 10.0.1.9).
import { Address4, Address6 } from 'ip-address';
import { dottedQuadValue } from '../catalog/ip.js';

interface Order { readonly family: 4 | 6; readonly value: bigint | number }

/** A dotted quad is read as a plain number, without ip-address objects. */
function orderOf(address: string): Order {
  if (address.includes(':')) return { family: 6, value: new Address6(address).bigInt() };
  return { family: 4, value: dottedQuadValue(address) ?? new Address4(address).bigInt() };
}

function compareOrders(a: Order, b: Order): number {
  if (a.family !== b.family) return a.family - b.family;
  // A number and a bigint compare by value.
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function compareAddresses(a: string, b: string): number {
  return compareOrders(orderOf(a), orderOf(b));
}

/**
 * Items sorted by address as compareAddresses orders them (stably), reading each
 * address once rather than once per comparison.
 */
export function sortByAddress<T extends { readonly address: string }>(items: readonly T[]): T[] {
  const keyed = items.map((item) => ({ item, order: orderOf(item.address) }));
  keyed.sort((a, b) => compareOrders(a.order, b.order));
  return keyed.map(({ item }) => item);
}
