// Addresses on overlay networks: VIPs, task addresses, ingress sandbox and
// load-balancer addresses all share each network's subnet.
import { presence, type Draft } from './draft.js';
import { contains, dottedQuadValue, parseIp, parseCidr, placeV4, reservedRole, type Cidr, type Ip } from './ip.js';
import { compareText, joinPath, problem, quoted, shown } from './problems.js';
import type { CatalogProblem, Network } from './types.js';

/** Addresses in the draft passed the schema, so they parse; a throw here is a bug. */
export function ipOf(text: string): Ip {
  const parsed = parseIp(text);
  if (!parsed.ok) throw new Error(`internal: unparsed address ${text}`);
  return parsed.value;
}

/** Parsed once per network: every address on it is checked against it. */
const cidrs = new WeakMap<Network, Cidr>();

export function cidrOf(network: Network): Cidr {
  const known = cidrs.get(network);
  if (known !== undefined) return known;
  const parsed = parseCidr(network.subnet);
  if (!parsed.ok) throw new Error(`internal: unparsed subnet ${network.subnet}`);
  cidrs.set(network, parsed.value);
  return parsed.value;
}

const familyName = (family: 4 | 6): string => (family === 4 ? 'IPv4' : 'IPv6');

/** placeProblem() would find nothing, told cheaply: a dotted quad that is a host address of `network`. */
export function plainlyFits(network: Network, text: string): boolean {
  const quad = network.family === 4 ? dottedQuadValue(text) : undefined;
  return quad !== undefined && placeV4(cidrOf(network), quad) === 'host';
}

/** Whether `text` can be an interface address on `network`: same family, inside, not reserved. */
export function placeProblem(network: Network, text: string, path: string): CatalogProblem | undefined {
  const cidr = cidrOf(network);
  const quad = network.family === 4 ? dottedQuadValue(text) : undefined;
  if (quad !== undefined) {
    // The same verdicts as below, for the common case, in plain numbers.
    const place = placeV4(cidr, quad);
    if (place === 'outside') return problem(path, `${text} is not inside ${shown(network.name)}'s subnet ${network.subnet}`);
    if (place === 'host') return undefined;
    return problem(path, `${text} is the ${place} address of ${shown(network.name)}'s subnet ${network.subnet}`);
  }
  const ip = ipOf(text);
  if (ip.family !== network.family) {
    return problem(path, `${text} is an ${familyName(ip.family)} address but ${shown(network.name)} is an `
      + `${familyName(network.family)} network (${network.subnet})`);
  }
  if (!contains(cidr, ip)) return problem(path, `${text} is not inside ${shown(network.name)}'s subnet ${network.subnet}`);
  const role = reservedRole(cidr, ip);
  if (role !== undefined) return problem(path, `${text} is the ${role} address of ${shown(network.name)}'s subnet ${network.subnet}`);
  return undefined;
}

/** An address on a network named by the catalog: the network must exist, then the address must fit. */
export function addressProblem(draft: Draft, networkName: string, text: string, path: string): CatalogProblem | undefined {
  const network = draft.networks.entries.get(networkName);
  if (network !== undefined) return placeProblem(network, text, path);
  return presence(draft.networks, networkName) === 'missing' ? problem(path, `unknown network ${quoted(networkName)}`) : undefined;
}

/**
 * Where an address is used; its path is spelled only for a problem. A node uses
 * one as its ingress sandbox's, or as the load balancer's on `network`.
 */
interface Use {
  readonly section: 'services' | 'tasks' | 'nodes';
  readonly name: string;
  readonly network: string;
  readonly role?: 'sandbox' | 'load-balancer';
}

const FIELD = { services: 'vips', tasks: 'addresses' } as const;

function pathOf({ section, name, network, role }: Use): string {
  if (section !== 'nodes') return joinPath(`${joinPath(section, name)}.${FIELD[section]}`, network);
  return role === 'load-balancer'
    ? `${joinPath(`${joinPath('nodes', name)}.loadBalancers`, network)}.address`
    : `${joinPath('nodes', name)}.ingressSandbox.address`;
}

/** Every use of an address after the first (in path order) on the same network is an error naming the first. */
export function checkDuplicateAddresses(draft: Draft): CatalogProblem[] {
  // Grouped by network and address, so only the rare shared address pays for sorting by path.
  const byNetwork = new Map<string, Map<string, Use | Use[]>>();
  for (const network of draft.networks.entries.keys()) byNetwork.set(network, new Map());
  const add = (address: string, use: Use): void => {
    const onNetwork = byNetwork.get(use.network);
    if (onNetwork === undefined) return; // an unknown network: reported elsewhere
    const earlier = onNetwork.get(address);
    if (earlier === undefined) onNetwork.set(address, use);
    else if (Array.isArray(earlier)) earlier.push(use);
    else onNetwork.set(address, [earlier, use]);
  };
  for (const [name, { service }] of draft.services.entries) {
    for (const [network, address] of Object.entries(service.vips)) add(address, { section: 'services', name, network });
  }
  for (const [name, task] of draft.tasks.entries) {
    for (const network in task.addresses) {
      add(task.addresses[network] as string, { section: 'tasks', name, network });
    }
  }
  if (draft.ingress !== undefined) {
    for (const [name, node] of draft.nodes.entries) {
      if (node.ingressSandbox === undefined) continue;
      add(node.ingressSandbox.address, { section: 'nodes', name, network: draft.ingress.name, role: 'sandbox' });
    }
  }
  for (const [name, node] of draft.nodes.entries) {
    for (const [network, balancer] of Object.entries(node.loadBalancers ?? {})) {
      add(balancer.address, { section: 'nodes', name, network, role: 'load-balancer' });
    }
  }
  const out: CatalogProblem[] = [];
  for (const onNetwork of byNetwork.values()) {
    for (const [address, shared] of onNetwork) {
      if (!Array.isArray(shared)) continue;
      // Stable, as the sort of every use was: equal paths keep their order.
      const [owner, ...later] = shared.map(pathOf).sort(compareText);
      for (const path of later) out.push(problem(path, `${address} is already used by ${owner ?? ''}`));
    }
  }
  return out;
}
