// What the lab builds for a catalog (SPEC §7), as data: the plumbing a network
// driver would provide, worked out here without touching anything, so build.ts
// only carries it out and the tests can read it. Pure.
//
//   outside ── underlay ── node-N host (eth0: node address)
//                            └─ sb0 172.18.N.1 ─ veth ─ gw0 172.18.N.2 ingress sandbox ─┐
//   one segment (a bridge in its own namespace) per network:                         │
//     ingress: sandboxes and the tasks' ingress addresses ───────────────────────────┘
//     appnet…: the tasks and each node's load balancer
//
// The host ↔ sandbox link and its routes are those of the kernel lane's mesh
// scenario (test/vm/mesh.scenario.ts), as docker_gwbridge links a Swarm node to
// its ingress sandbox: the node reaches the sandbox's ingress address over the
// veth, and the sandbox answers clients through the node.
import { overlap, parseCidr, parseIp } from '../catalog/ip.js';
import type { Catalog } from '../catalog/types.js';

/** What a namespace plays in the lab. */
export type NamespaceRole =
  | { readonly kind: 'node'; readonly node: string }
  | { readonly kind: 'task'; readonly task: string; readonly node: string }
  | { readonly kind: 'ingress-sandbox'; readonly node: string }
  | { readonly kind: 'load-balancer'; readonly node: string; readonly network: string }
  /** A bridge: one network (or the underlay) as a single L2 segment. */
  | { readonly kind: 'segment'; readonly network: string | null }
  | { readonly kind: 'outside' };

export interface LabNamespace {
  readonly name: string;
  readonly role: NamespaceRole;
}

/** `ns` plugged into the bridge of `segment` as `ifname`, holding `cidr`. */
export interface LabPlug {
  readonly ns: string;
  readonly segment: string;
  readonly ifname: string;
  readonly cidr: string;
}

/** A point-to-point veth. */
export interface LabWire {
  readonly a: string;
  readonly aIf: string;
  readonly aCidr: string;
  readonly b: string;
  readonly bIf: string;
  readonly bCidr: string;
}

export interface LabRoute {
  readonly ns: string;
  /** After `ip route add`. */
  readonly args: readonly string[];
}

/**
 * In `segment`, ARP requests from `from`'s port to `to`'s port are dropped unless
 * they ask for `allow`. Every node's load balancer holds the network's VIPs, and
 * on one flat bridge all of them would answer a task's ARP for a VIP; Swarm's
 * overlay answers ARP per node instead. So a task (or a balancer) reaches only
 * its own node's balancer by ARP, except for another balancer's own address.
 */
export interface ArpGuard {
  readonly segment: string;
  readonly from: string;
  readonly to: string;
  readonly allow: string;
}

export interface LabTask {
  readonly name: string;
  readonly node: string;
  readonly ns: string;
  /** What its whoami server listens on: 80 and every port its service's probe names. */
  readonly ports: readonly number[];
  /** Only running tasks get a server. */
  readonly running: boolean;
}

export interface LabNode {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
}

export interface LabTopology {
  /** In the order they are made; every one a name under /run/netns. */
  readonly namespaces: readonly LabNamespace[];
  readonly plugs: readonly LabPlug[];
  readonly wires: readonly LabWire[];
  readonly routes: readonly LabRoute[];
  readonly arpGuards: readonly ArpGuard[];
  readonly nodes: readonly LabNode[];
  readonly tasks: readonly LabTask[];
  /** The namespace outside every node, on the underlay, that plays a client of the published ports. */
  readonly outside: { readonly ns: string; readonly address: string };
}

export type TopologyResult = { readonly ok: true; readonly topology: LabTopology } | { readonly ok: false; readonly problems: readonly string[] };

export const LAB_PREFIX = 'vipmesh-lab-';
export const OUTSIDE = `${LAB_PREFIX}outside`;
export const UNDERLAY = `${LAB_PREFIX}underlay`;
export const segmentOf = (network: string): string => `${LAB_PREFIX}net-${network}`;
/** The port the whoami servers answer on (the catalog's target ports are 80, as traefik/whoami's). */
export const WHOAMI_PORT = 80;
/** docker_gwbridge's place: 172.18.N.0/24 links node N to its sandbox. */
const GW_NET = parseCidr('172.18.0.0/16');

// What `ip netns` accepts as a name and Plumbing.ns makes.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** NAME of /run/netns/NAME, else undefined. */
export function netnsName(path: string): string | undefined {
  const match = /^\/run\/netns\/([^/]+)$/.exec(path);
  return match !== null && NAME.test(match[1]!) ? match[1] : undefined;
}

const sortedKeys = (record: Readonly<Record<string, unknown>>): string[] => Object.keys(record).sort();

export function labTopology(catalog: Catalog): TopologyResult {
  const problems: string[] = [];
  const namespaces: LabNamespace[] = [];
  const owner = new Map<string, string>();

  /** Each namespace plays one part: two nodes on one machine cannot share one. */
  const claim = (path: string, where: string, role: NamespaceRole): string | undefined => {
    const name = netnsName(path);
    if (name === undefined) {
      problems.push(`${where}: ${path} is not a namespace the lab can make: give /run/netns/NAME (NAME of letters, digits, '.', '_', '-', at most 64)`);
      return undefined;
    }
    const before = owner.get(name);
    if (before !== undefined) {
      problems.push(`${where}: ${path} is ${before}'s as well; on one machine every node's namespaces must differ`);
      return undefined;
    }
    owner.set(name, where);
    namespaces.push({ name, role });
    return name;
  };

  for (const [name, network] of Object.entries(catalog.networks)) {
    if (network.family !== 4) problems.push(`networks.${name}: the lab plumbs IPv4 networks only`);
    else if (overlapsGwNet(network.subnet)) {
      problems.push(`networks.${name}: ${network.subnet} overlaps 172.18.0.0/16, where the lab links each node to its ingress sandbox`);
    }
  }

  // Segments first: everything else is plugged into them.
  claim(`/run/netns/${UNDERLAY}`, 'the lab\'s underlay', { kind: 'segment', network: null });
  const segments = new Map<string, string>();
  for (const network of sortedKeys(catalog.networks)) {
    const ns = claim(`/run/netns/${segmentOf(network)}`, `the lab's segment for network ${network}`, { kind: 'segment', network });
    if (ns !== undefined) segments.set(network, ns);
  }
  const prefixOf = (network: string): number => {
    const cidr = parseCidr(catalog.networks[network]!.subnet);
    return cidr.ok ? cidr.value.prefix : 32;
  };
  const plugs: LabPlug[] = [];
  const wires: LabWire[] = [];
  const routes: LabRoute[] = [];

  // The underlay: every node's address in one /24, which the outside client shares.
  const nodeNames = sortedKeys(catalog.nodes);
  const underlay = underlayOf(nodeNames.map((n) => catalog.nodes[n]!.address), problems);
  const outsideAddress = underlay === undefined ? undefined : freeHost(underlay, nodeNames.map((n) => catalog.nodes[n]!.address));
  if (underlay !== undefined && outsideAddress === undefined) problems.push(`nodes: no address is left in ${underlay}.0/24 for the lab's outside client`);
  claim(`/run/netns/${OUTSIDE}`, 'the lab\'s outside client', { kind: 'outside' });
  if (outsideAddress !== undefined) plugs.push({ ns: OUTSIDE, segment: UNDERLAY, ifname: 'eth0', cidr: `${outsideAddress}/24` });

  const nodes: LabNode[] = [];
  const loadBalancers: { node: string; network: string; ns: string; address: string }[] = [];
  nodeNames.forEach((nodeName, i) => {
    const node = catalog.nodes[nodeName]!;
    const where = `nodes.${nodeName}`;
    const n = i + 1;
    if (node.netns === undefined) {
      problems.push(`${where}.netns: the lab plays each node in its own namespace: give /run/netns/NAME`);
      return;
    }
    const host = claim(node.netns, `${where}.netns`, { kind: 'node', node: nodeName });
    if (host === undefined) return;
    nodes.push({ name: nodeName, ns: host, address: node.address });
    plugs.push({ ns: host, segment: UNDERLAY, ifname: 'eth0', cidr: `${node.address}/24` });
    if (node.ingressSandbox !== undefined) {
      const sandbox = node.ingressSandbox;
      const sbox = claim(sandbox.netns, `${where}.ingressSandbox.netns`, { kind: 'ingress-sandbox', node: nodeName });
      const ingress = Object.values(catalog.networks).find((net) => net.ingress);
      if (n > 255) problems.push(`${where}: the lab links at most 255 nodes to their sandboxes (172.18.N.0/24)`);
      else if (sbox !== undefined && ingress !== undefined) {
        wires.push({ a: host, aIf: 'sb0', aCidr: `172.18.${n}.1/24`, b: sbox, bIf: 'gw0', bCidr: `172.18.${n}.2/24` });
        const segment = segments.get(ingress.name);
        if (segment !== undefined) plugs.push({ ns: sbox, segment, ifname: 'eth1', cidr: `${sandbox.address}/${prefixOf(ingress.name)}` });
        routes.push({ ns: host, args: [`${sandbox.address}/32`, 'via', `172.18.${n}.2`] });
        routes.push({ ns: sbox, args: ['default', 'via', `172.18.${n}.1`] });
      }
    }
    for (const network of sortedKeys(node.loadBalancers ?? {})) {
      const lb = node.loadBalancers![network]!;
      const ns = claim(lb.netns, `${where}.loadBalancers.${network}.netns`, { kind: 'load-balancer', node: nodeName, network });
      const segment = segments.get(network);
      if (ns === undefined || segment === undefined) continue;
      plugs.push({ ns, segment, ifname: 'eth0', cidr: `${lb.address}/${prefixOf(network)}` });
      loadBalancers.push({ node: nodeName, network, ns, address: lb.address });
    }
  });

  const tasks: LabTask[] = [];
  const onNetwork: { ns: string; node: string; network: string }[] = [];
  for (const taskName of sortedKeys(catalog.tasks)) {
    const task = catalog.tasks[taskName]!;
    const ns = claim(task.netns, `tasks.${taskName}.netns`, { kind: 'task', task: taskName, node: task.node });
    if (ns === undefined) continue;
    sortedKeys(task.addresses).forEach((network, i) => {
      const segment = segments.get(network);
      if (segment === undefined) return;
      plugs.push({ ns, segment, ifname: `eth${i}`, cidr: `${task.addresses[network]!}/${prefixOf(network)}` });
      onNetwork.push({ ns, node: task.node, network });
    });
    const probe = task.service === undefined ? undefined : catalog.services[task.service]?.healthcheck?.probe;
    const ports = new Set([WHOAMI_PORT]);
    if (probe !== undefined && probe.kind !== 'exec') ports.add(probe.port);
    tasks.push({ name: taskName, node: task.node, ns, ports: [...ports].sort((a, b) => a - b), running: task.state === 'running' });
  }

  const arpGuards: ArpGuard[] = [];
  for (const lb of loadBalancers) {
    const segment = segments.get(lb.network)!;
    const others = [
      ...onNetwork.filter((t) => t.network === lb.network && t.node !== lb.node),
      ...loadBalancers.filter((other) => other.network === lb.network && other.node !== lb.node),
    ];
    for (const from of others) arpGuards.push({ segment, from: from.ns, to: lb.ns, allow: lb.address });
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    topology: { namespaces, plugs, wires, routes, arpGuards, nodes, tasks, outside: { ns: OUTSIDE, address: outsideAddress! } },
  };
}

function overlapsGwNet(subnet: string): boolean {
  const cidr = parseCidr(subnet);
  return cidr.ok && GW_NET.ok && overlap(cidr.value, GW_NET.value);
}

/** The one /24 all node addresses share, or a problem. */
function underlayOf(addresses: readonly string[], problems: string[]): string | undefined {
  const bases = new Set<string>();
  for (const address of addresses) {
    const ip = parseIp(address);
    if (!ip.ok || ip.value.family !== 4) {
      problems.push(`nodes: the lab's underlay is IPv4: ${address} is not an IPv4 address`);
      return undefined;
    }
    bases.add(address.split('.').slice(0, 3).join('.'));
  }
  if (bases.size === 0) {
    problems.push('nodes: the lab needs at least one node');
    return undefined;
  }
  if (bases.size > 1) {
    problems.push(`nodes: the lab puts every node on one underlay /24, but the node addresses lie in ${[...bases].sort().map((b) => `${b}.0/24`).join(', ')}`);
    return undefined;
  }
  return [...bases][0];
}

/** In the underlay A.B.C.0/24: .100, else the highest host address no node holds. */
function freeHost(base: string, taken: readonly string[]): string | undefined {
  const used = new Set(taken);
  for (const last of [100, ...Array.from({ length: 254 }, (_, i) => 254 - i)]) {
    const candidate = `${base}.${last}`;
    if (!used.has(candidate)) return candidate;
  }
  return undefined;
}
