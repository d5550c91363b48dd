// A short digest of what one namespace should hold, stored after a pass that
// applied it without error. A partial pass (the agent between full ones) skips
// every namespace whose digest is unchanged, so one catalog change costs work in
// the namespaces it touches, not in all of them (kube-proxy's partial sync).
import { createHash } from 'node:crypto';
import { isDnsChain } from './diff-iptables.js';
import type { DesiredNamespace } from './types.js';

export function fingerprint(desired: DesiredNamespace, manageDns: boolean): string {
  const chains = manageDns ? desired.chains : desired.chains.filter((c) => !isDnsChain(c.name));
  // Addresses only where there are some: the digests of every other namespace stay as they were.
  const addresses = desired.addresses ?? [];
  const text = JSON.stringify(addresses.length === 0
    ? [manageDns, chains, desired.ipvs, desired.sysctls]
    : [manageDns, chains, desired.ipvs, desired.sysctls, addresses]);
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}
