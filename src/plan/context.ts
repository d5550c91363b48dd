// What every namespace planner needs, computed once per node plan.
import { taskList } from '../catalog/task-list.js';
import type { Catalog, Service, Task } from '../catalog/types.js';
import { sortByAddress } from './address.js';
import { compareText } from './marks.js';
import { serves } from './serving.js';
import { type Balanced, type Chain, type NodeFacts, type RealServer, type Sysctl, type VirtualService } from './types.js';

export interface PlanContext {
  readonly catalog: Catalog;
  readonly node: string;
  readonly facts: NodeFacts;
  /** Every service, by name. */
  readonly services: readonly Service[];
  /** Non-ingress network → indexes into `services` of the vip-mode services with a VIP on it, ascending. */
  readonly vipServices: ReadonlyMap<string, readonly number[]>;
  /** Service name → its serving tasks, by name. */
  readonly servingTasks: ReadonlyMap<string, readonly Task[]>;
  /**
   * realServers() by service, network and port: every local task sharing a
   * network balances the same VIPs over the same servers.
   */
  readonly realServerLists: Map<string, Map<string, Map<number, readonly RealServer[]>>>;
  /** Networks with a load balancer on this node: their VIPs are balanced there, not in the tasks. */
  readonly balancedNetworks: ReadonlySet<string>;
  /** The ingress network's name, if the catalog has one (at most one, by validation). */
  readonly ingressNetwork: string | undefined;
}

export function makeContext(catalog: Catalog, node: string, facts: NodeFacts): PlanContext {
  const servingTasks = new Map<string, Task[]>();
  for (const task of taskList(catalog)) {
    if (task.service === undefined || !serves(catalog, task, node, facts.probes)) continue;
    const list = servingTasks.get(task.service);
    if (list) list.push(task);
    else servingTasks.set(task.service, [task]);
  }
  // Each list sorted on its own: the order a sort of all tasks would give them, with far fewer comparisons.
  for (const list of servingTasks.values()) list.sort((a, b) => compareText(a.name, b.name));
  const services = sortedServices(catalog);
  const vipServices = vipServicesOf(catalog, services);
  const balancedNetworks = new Set(Object.keys(catalog.nodes[node]?.loadBalancers ?? {}));
  const ingressNetwork = Object.values(catalog.networks).find((n) => n.ingress)?.name;
  return { catalog, node, facts, services, vipServices, servingTasks, realServerLists: new Map(), balancedNetworks, ingressNetwork };
}

/** PlanContext.vipServices of `services` (sorted by name). */
export function vipServicesOf(catalog: Catalog, services: readonly Service[]): Map<string, number[]> {
  const vipServices = new Map<string, number[]>();
  services.forEach((service, index) => {
    if (service.endpointMode !== 'vip') return;
    for (const network of service.networks) {
      if (catalog.networks[network]?.ingress || service.vips[network] === undefined) continue;
      const list = vipServices.get(network);
      if (list === undefined) vipServices.set(network, [index]);
      else if (list[list.length - 1] !== index) list.push(index);
    }
  });
  return vipServices;
}

export function sortedServices(catalog: Catalog): Service[] {
  return Object.values(catalog.services).sort((a, b) => compareText(a.name, b.name));
}

/** The service's serving tasks on one network, as real servers at `port` (shared: don't modify). */
export function realServers(ctx: PlanContext, service: string, network: string, port: number): readonly RealServer[] {
  let byNetwork = ctx.realServerLists.get(service);
  if (byNetwork === undefined) ctx.realServerLists.set(service, byNetwork = new Map());
  let byPort = byNetwork.get(network);
  if (byPort === undefined) byNetwork.set(network, byPort = new Map());
  const known = byPort.get(port);
  if (known !== undefined) return known;
  const servers: RealServer[] = [];
  for (const task of ctx.servingTasks.get(service) ?? []) {
    const address = task.addresses[network];
    if (address !== undefined) servers.push({ address, port, weight: task.weight, task: task.name });
  }
  const sorted = sortByAddress(servers);
  byPort.set(port, sorted);
  return sorted;
}

/**
 * The two chains every IPVS namespace holds: fwmarks set where its traffic enters
 * (PREROUTING in the sandbox, OUTPUT in a task, INPUT in a load balancer) and
 * SNAT of marked traffic.
 */
export function markAndSnatChains(markFrom: 'PREROUTING' | 'OUTPUT' | 'INPUT', marks: readonly string[], snat: readonly string[]): Chain[] {
  return [
    { family: 4, table: 'mangle', name: `VIPMESH-${markFrom}`, group: 'datapath', jumps: [{ from: markFrom, match: '' }], rules: marks },
    { family: 4, table: 'nat', name: 'VIPMESH-POSTROUTING', group: 'datapath', jumps: [{ from: 'POSTROUTING', match: '' }], rules: snat },
  ];
}

/** An fwmark virtual service with the service's load-balancing settings. */
export function virtualService(
  service: Service, balances: Balanced, fwmark: number, label: string, servers: readonly RealServer[],
): VirtualService {
  return {
    balances,
    label,
    fwmark,
    scheduler: service.lb.scheduler,
    persistence: service.lb.persistence,
    drainTimeout: service.lb.drainTimeout,
    realServers: servers,
  };
}

/** `uname -r` → [major, minor]; an unparsable release counts as new. */
function kernelVersion(release: string): [number, number] {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : [Number.MAX_SAFE_INTEGER, 0];
}

/**
 * IPVS knobs for a namespace holding vipmesh virtual services. conn_reuse_mode=0
 * avoided 1 s SYN stalls before 5.9; from 5.9 on the default is right and 0
 * would send port-reusing clients to drained servers.
 */
export function ipvsSysctls(kernelRelease: string): Sysctl[] {
  const [major, minor] = kernelVersion(kernelRelease);
  const sysctls: Sysctl[] = [];
  if (major < 5 || (major === 5 && minor < 9)) sysctls.push({ name: 'net.ipv4.vs.conn_reuse_mode', value: '0' });
  sysctls.push(
    { name: 'net.ipv4.vs.conntrack', value: '1' },
    { name: 'net.ipv4.vs.expire_nodest_conn', value: '1' },
    { name: 'net.ipv4.vs.expire_quiescent_template', value: '1' },
  );
  return sysctls;
}

export function sortSysctls(sysctls: Iterable<Sysctl>): Sysctl[] {
  const byName = new Map<string, Sysctl>();
  for (const s of sysctls) byName.set(s.name, s);
  return [...byName.values()].sort((a, b) => compareText(a.name, b.name));
}
