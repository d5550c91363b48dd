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
// Stands for the real-server list in a virtual service's text; JSON escapes the
// control character, so no label or name can spell it.
const HOLE = '\u0000realServers';
const HOLE_JSON = JSON.stringify(HOLE);

function virtualServiceJson(hash: Hash, vs: VirtualService): void {
  const text = JSON.stringify(vs, function (this: unknown, key: string, value: unknown) {
    return this === vs && key === 'realServers' ? HOLE : value;
  });
  const at = text.indexOf(HOLE_JSON);
  if (at < 0) {
    hash.update(text);
    return;
  }
  let servers = spelled.get(vs.realServers);
  if (servers === undefined) spelled.set(vs.realServers, servers = Buffer.from(JSON.stringify(vs.realServers)));
  hash.update(text.slice(0, at));
  hash.update(servers);
  hash.update(text.slice(at + HOLE_JSON.length));
}
