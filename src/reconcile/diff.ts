// One namespace: desired vs observed → the minimal writes. Pure.
import type { Family } from '../catalog/types.js';
import type { Sysctl } from '../plan/types.js';
import { diffAddresses } from './diff-addresses.js';
import { diffIpvs } from './diff-ipvs.js';
import { diffIptables } from './diff-iptables.js';
import type { Change, DesiredNamespace, DiffOptions, NamespaceChanges, ObservedNamespace } from './types.js';

export function diffNamespace(desired: DesiredNamespace, observed: ObservedNamespace, options: DiffOptions): NamespaceChanges {
  const restore = new Map<Family, string>();
  const changes: Change[] = [];
  for (const family of [4, 6] as const) {
    if (!observed.iptables.has(family) && !desired.chains.some((c) => c.family === family)) continue;
    const result = diffIptables(family, desired.chains, observed.iptables.get(family), options.manageDns);
    if (result.restore !== '') restore.set(family, result.restore);
    changes.push(...result.changes);
  }
  const ipvs = diffIpvs(desired.ipvs, observed.ipvs, options);
  changes.push(...ipvs.changes);
  const sysctls: Sysctl[] = [];
  for (const s of desired.sysctls) {
    const current = observed.sysctls.get(s.name);
    if (current === s.value) continue;
    // vs.* knobs appear only once ip_vs is loaded (the IPVS writes load it); on a
    // kernel without IPVS they cannot exist, and the IPVS failure already says why.
    if (!observed.ipvs.available && s.name.startsWith('net.ipv4.vs.')) continue;
    sysctls.push(s);
    changes.push({ text: `~ sysctl ${s.name} ${current ?? '(absent)'} -> ${s.value}`, drift: true });
  }
  const owned = options.ownedAddresses ?? [];
  const addresses = observed.addresses === undefined
    ? { ops: [], changes: [], owned }
    : diffAddresses(desired.addresses ?? [], observed.addresses, owned);
  changes.push(...addresses.changes);
  return { restore, ipvs: ipvs.ops, sysctls, changes, draining: ipvs.draining, addresses: addresses.ops, ownedAddresses: addresses.owned };
}
