// Synthetic catalogs for the benchmarks: S services × T tasks over N networks and
// M nodes, K of the tasks local to the benchmarked node. Deterministic: the same
// options give the same catalog, so runs compare.
export interface SyntheticOptions {
  readonly services: number;
  readonly tasksPerService: number;
  readonly networks: number;
  /** How many tasks run on `node` (each in its own namespace). */
  readonly localTasks: number;
  /** Cluster size; tasks not local are spread over the other nodes. */
  readonly nodes?: number;
  /** Every n-th service publishes an ingress-mode port (0: none). */
  readonly publishEvery?: number;
  /** Namespace path of local task k; remote tasks get a path they never use here. */
  readonly localNetns?: (k: number) => string;
  /** The benchmarked node's own namespace and ingress sandbox (omit: the agent's own). */
  readonly hostNetns?: string;
  readonly sandboxNetns?: string;
}

export const NODE = 'node-0';

export interface SyntheticCatalog {
  readonly version: 1;
  readonly networks: Record<string, object>;
  readonly nodes: Record<string, object>;
  readonly services: Record<string, { vips: Record<string, string>; ports?: object[] }>;
  readonly tasks: Record<string, { service: string; node: string; netns: string; addresses: Record<string, string> }>;
}

const INGRESS = 'ingress';

function address(second: number, index: number): string {
  // index 0 and 1 are the network address and, by habit, the gateway.
  const host = index + 2;
  if (host > 0xfffe) throw new Error(`synthetic catalog: network 10.${second}.0.0/16 is full; use more networks`);
  return `10.${second}.${host >> 8}.${host & 0xff}`;
}

export function serviceName(i: number): string {
  return `svc-${String(i).padStart(5, '0')}`;
}

export function taskName(service: number, slot: number): string {
  return `${serviceName(service)}.${slot + 1}.t${(service * 7919 + slot).toString(36).padStart(6, '0')}`;
}

/**
 * Which global task indexes (service × T + slot) are local: spread evenly over the
 * services, and local task i on network i mod N, so every network has local tasks.
 */
export function localTaskIndexes(services: number, tasksPerService: number, networks: number, k: number): number[] {
  if (k > services * tasksPerService) throw new Error(`synthetic catalog: ${k} local tasks but only ${services * tasksPerService} tasks`);
  const used = new Map<number, number>();
  return Array.from({ length: k }, (_, i) => {
    let service = Math.floor((i * services) / k);
    service = Math.min(services - 1, service - (service % networks) + (i % networks));
    // Where services are fewer than local tasks, a service gets several local slots.
    for (let tries = 0; (used.get(service) ?? 0) >= tasksPerService; tries++) {
      if (tries > services) throw new Error(`synthetic catalog: no free task for local task ${i}`);
      service = (service + 1) % services;
    }
    const slot = used.get(service) ?? 0;
    used.set(service, slot + 1);
    return service * tasksPerService + slot;
  });
}

export function syntheticCatalog(o: SyntheticOptions): SyntheticCatalog {
  const nodeCount = o.nodes ?? 10;
  const publishEvery = o.publishEvery ?? 10;
  const localNetns = o.localNetns ?? ((k: number) => `/run/netns/bench-task-${k}`);
  if (o.networks < 1 || o.networks > 200) throw new Error('synthetic catalog: 1 to 200 networks');

  const networks: Record<string, object> = { [INGRESS]: { subnet: '10.255.0.0/16', ingress: true } };
  const nextIndex: number[] = [];
  for (let n = 0; n < o.networks; n++) {
    networks[`net-${n}`] = { subnet: `10.${n + 1}.0.0/16` };
    nextIndex.push(0);
  }
  const nodes: Record<string, object> = {};
  for (let n = 0; n < nodeCount; n++) {
    const sandbox = n === 0 && o.sandboxNetns !== undefined ? o.sandboxNetns : '/run/netns/ingress_sbox';
    nodes[`node-${n}`] = {
      address: `192.0.2.${10 + n}`,
      ...(n === 0 && o.hostNetns !== undefined ? { netns: o.hostNetns } : {}),
      ingressSandbox: { netns: sandbox, address: `10.255.0.${2 + n}` },
    };
  }

  const local = new Map(localTaskIndexes(o.services, o.tasksPerService, o.networks, o.localTasks).map((g, k) => [g, k]));
  const services: SyntheticCatalog['services'] = {};
  const tasks: SyntheticCatalog['tasks'] = {};
  let ingressIndex = 254; // after the sandboxes' 10.255.0.x
  for (let i = 0; i < o.services; i++) {
    const n = i % o.networks;
    const net = `net-${n}`;
    const published = publishEvery > 0 && i % publishEvery === 0;
    const name = serviceName(i);
    services[name] = {
      vips: { [net]: address(n + 1, nextIndex[n]!++) },
      ...(published ? { ports: [{ target: 80, published: 30000 + i / publishEvery }] } : {}),
    };
    for (let slot = 0; slot < o.tasksPerService; slot++) {
      const g = i * o.tasksPerService + slot;
      const k = local.get(g);
      const addresses: Record<string, string> = { [net]: address(n + 1, nextIndex[n]!++) };
      if (published) addresses[INGRESS] = address(255, ingressIndex++);
      tasks[taskName(i, slot)] = {
        service: name,
        node: k === undefined ? `node-${1 + (g % Math.max(1, nodeCount - 1))}` : NODE,
        netns: k === undefined ? `/run/netns/remote-${g}` : localNetns(k),
        addresses,
      };
    }
  }
  return { version: 1, networks, nodes, services, tasks };
}

/** The catalog with a load balancer on `node` for `network` (SPEC §1 nodes.*.loadBalancers). */
export function withLoadBalancer(raw: SyntheticCatalog, network: string, balancer: { netns: string; address: string }, node = NODE): SyntheticCatalog {
  const current = raw.nodes[node] as { loadBalancers?: Record<string, object> } | undefined;
  if (current === undefined) throw new Error(`synthetic catalog: no node ${node}`);
  if (raw.networks[network] === undefined) throw new Error(`synthetic catalog: no network ${network}`);
  return { ...raw, nodes: { ...raw.nodes, [node]: { ...current, loadBalancers: { ...current.loadBalancers, [network]: balancer } } } };
}

export interface AddedService {
  /** Service number, past the catalog's own (serviceName(index)). */
  readonly index: number;
  readonly network: string;
  readonly tasks: number;
  /** Namespaces of the tasks on `node`, the first tasks; the rest run on the other nodes in turn. */
  readonly localNetns: readonly string[];
  /**
   * Third octet of the block its VIP and task addresses take in the network's
   * /16 (addresses .1 up); syntheticCatalog fills from the bottom, so a high
   * block is free. Checked: a taken address throws.
   */
  readonly block: number;
}

/** The catalog with one more vip-mode service and its running tasks, some local. */
export function withService(raw: SyntheticCatalog, s: AddedService, node = NODE): SyntheticCatalog {
  const name = serviceName(s.index);
  if (raw.services[name] !== undefined) throw new Error(`synthetic catalog: service ${name} exists`);
  const subnet = (raw.networks[s.network] as { subnet?: string } | undefined)?.subnet;
  const m = subnet === undefined ? null : /^10\.(\d+)\.0\.0\/16$/.exec(subnet);
  if (!m) throw new Error(`synthetic catalog: network ${s.network} is not one of its 10.N.0.0/16 networks`);
  if (s.localNetns.length > s.tasks) throw new Error(`synthetic catalog: ${s.localNetns.length} local tasks but ${s.tasks} tasks`);
  if (!Number.isInteger(s.block) || s.block < 1 || s.block > 254 || s.tasks + 1 > 254) throw new Error('synthetic catalog: the block is a third octet 1–254 with room for the VIP and every task');
  const remote = Object.keys(raw.nodes).filter((n) => n !== node);
  if (remote.length === 0 && s.localNetns.length < s.tasks) throw new Error('synthetic catalog: no other node for the remote tasks');
  const at = (i: number) => `10.${m[1]}.${s.block}.${i + 1}`;
  const taken = new Set(Object.values(raw.services).flatMap((v) => Object.values(v.vips)));
  for (const task of Object.values(raw.tasks)) for (const address of Object.values(task.addresses)) taken.add(address);
  const fresh = Array.from({ length: s.tasks + 1 }, (_, i) => at(i));
  const clash = fresh.find((a) => taken.has(a));
  if (clash !== undefined) throw new Error(`synthetic catalog: ${clash} is taken; pick another block`);
  const tasks: SyntheticCatalog['tasks'] = { ...raw.tasks };
  for (let slot = 0; slot < s.tasks; slot++) {
    const local = s.localNetns[slot];
    tasks[taskName(s.index, slot)] = {
      service: name,
      node: local === undefined ? remote[slot % remote.length]! : node,
      netns: local ?? `/run/netns/remote-${name}-${slot}`,
      addresses: { [s.network]: at(slot + 1) },
    };
  }
  return { ...raw, services: { ...raw.services, [name]: { vips: { [s.network]: at(0) } } }, tasks };
}
