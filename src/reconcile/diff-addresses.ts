// A load balancer's VIP addresses: planned vs present → the adds and deletes.
// Pure. Only addresses vipmesh added are ever deleted (SPEC §2): the ones it
// owns come from state.json, since an address carries no mark of who added it.
// A planned address someone else had put there already is used, never owned,
// so it stays when the VIP goes.
import type { AddressOp, ObservedAddress } from '../kernel/types.js';
import type { VipAddress } from '../plan/types.js';
import type { Change } from './types.js';

/** How an address is known in state.json: "10.0.1.2/32". */
export function addressKey(a: { readonly address: string; readonly prefixLength: number }): string {
  return `${a.address}/${a.prefixLength}`;
}

export interface AddressDiff {
  readonly ops: readonly AddressOp[];
  readonly changes: readonly Change[];
  /** What vipmesh owns once `ops` are applied. */
  readonly owned: readonly string[];
}

export function diffAddresses(
  desired: readonly VipAddress[], observed: readonly ObservedAddress[], owned: readonly string[],
): AddressDiff {
  const ops: AddressOp[] = [];
  const changes: Change[] = [];
  const mine = new Set(owned);
  const after: string[] = [];
  const wanted = new Set<string>();
  for (const vip of desired) {
    const key = addressKey(vip);
    wanted.add(key);
    // The interface on the VIP's network is the one holding the load balancer's own address.
    const link = observed.find((a) => a.address === vip.anchor);
    if (link === undefined) {
      changes.push({ text: `+ address ${key} (no interface holds the load balancer's address ${vip.anchor})`, drift: true });
      continue;
    }
    const present = observed.some((a) => a.index === link.index && addressKey(a) === key);
    if (present) {
      if (mine.has(key)) after.push(key);
      continue;
    }
    ops.push({ kind: 'add', index: link.index, address: vip.address, prefixLength: vip.prefixLength });
    changes.push({ text: `+ address ${key} on ${link.name} (${vip.service}/${vip.network})`, drift: true });
    after.push(key);
  }
  for (const key of owned) {
    if (wanted.has(key)) continue;
    for (const a of observed.filter((o) => addressKey(o) === key)) {
      ops.push({ kind: 'delete', index: a.index, address: a.address, prefixLength: a.prefixLength });
      changes.push({ text: `- address ${key} on ${a.name}`, drift: true });
    }
  }
  return { ops, changes, owned: after };
}
