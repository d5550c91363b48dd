// Address ordering for deterministic output: numeric, not textual (10.0.1.10 after 10.0.1.9).
import { Address4, Address6 } from 'ip-address';

function numeric(address: string): bigint {
  return address.includes(':') ? new Address6(address).bigInt() : new Address4(address).bigInt();
}

export function compareAddresses(a: string, b: string): number {
  const fa = a.includes(':') ? 6 : 4;
  const fb = b.includes(':') ? 6 : 4;
  if (fa !== fb) return fa - fb;
  const na = numeric(a);
  const nb = numeric(b);
  return na < nb ? -1 : na > nb ? 1 : 0;
}
