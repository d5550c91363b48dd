// A short digest of what one namespace should hold, stored after a pass that
// applied it without error. A partial pass (the agent between full ones) skips
// every namespace whose digest is unchanged, so one catalog change costs work in
// the namespaces it touches, not in all of them (kube-proxy's partial sync).
import { createHash, type Hash } from 'node:crypto';
import type { RealServer, VirtualService } from '../plan/types.js';
import { isDnsChain } from './diff-iptables.js';
import type { DesiredNamespace } from './types.js';

/**
 * The digest of the JSON text of [manageDns, chains, ipvs, sysctls(, addresses)].
 * The plan shares one real-server list between every namespace that balances the
 * same service on the same network (at K = 200, 200 namespaces × 1,000 lists of
 * 10), so each list is spelled once and its bytes fed to the hash from then on;
 * the bytes hashed, and so the digest, are those of the whole text.
 */
export function fingerprint(desired: DesiredNamespace, manageDns: boolean): string {
  const chains = manageDns ? desired.chains : desired.chains.filter((c) => !isDnsChain(c.name));
  // Addresses only where there are some: the digests of every other namespace stay as they were.
  const addresses = desired.addresses ?? [];
  const hash = createHash('sha256');
  hash.update(`[${JSON.stringify(manageDns)},${JSON.stringify(chains)},[`);
  desired.ipvs.forEach((vs, i) => {
    if (i > 0) hash.update(',');
    virtualServiceJson(hash, vs);
  });
  hash.update(`],${JSON.stringify(desired.sysctls)}${addresses.length === 0 ? '' : `,${JSON.stringify(addresses)}`}]`);
  return hash.digest('base64url').slice(0, 22);
}

const spelled = new WeakMap<readonly RealServer[], Buffer>();
// What stands for the real-server list while the rest of a virtual service is
// spelled: a key and a number, which no string value in JSON text can look like
// (its quotes are escaped), and no nested object of a service has that key.
const HOLE = '"realServers":0';

function virtualServiceJson(hash: Hash, vs: VirtualService): void {
  // The spread keeps every key where it was, so the text reads as the whole one.
  const text = JSON.stringify({ ...vs, realServers: 0 });
  const at = text.indexOf(HOLE);
  let servers = spelled.get(vs.realServers);
  if (servers === undefined) spelled.set(vs.realServers, servers = Buffer.from(JSON.stringify(vs.realServers)));
  hash.update(text.slice(0, at + HOLE.length - 1));
  hash.update(servers);
  hash.update(text.slice(at + HOLE.length));
}
