// Re-planning after a change (issue 15): when the catalog to plan was derived
// from the one planned last by a change to services and tasks only
// (catalog/change.ts), only the namespaces the change reaches are planned again;
// every other NamespacePlan is the previous one, the same object. What reaches
// what, read off the planners:
//  - a service's real servers are its serving tasks: a changed task touches its
//    service (before and after the change);
//  - the host namespace holds every published port (and host-mode ones' local
//    tasks): planned again when a touched service has a port, before or after;
//  - the ingress sandbox balances the services with an ingress-mode port;
//  - a load balancer balances the vip-mode services with a VIP on its network;
//  - a task namespace balances the VIPs on its networks, filters by its
//    service's ingress ports, and is its own task: planned again when it
//    changed, when its service is touched, or when a touched service has a VIP
//    on one of its networks;
//  - a namespace whose marks or resolver ports in the node facts differ.
// The result equals planNode from scratch byte for byte:
// test/unit/plan/incremental.test.ts compares them on random change sequences.
import { derivationOf } from '../catalog/change.js';
import { taskList } from '../catalog/task-list.js';
import type { Catalog, Service, Task } from '../catalog/types.js';
import { makeContext, type PlanContext, sortedServices, vipServicesOf } from './context.js';
import { planHostNamespace } from './host.js';
import { planLoadBalancer } from './load-balancer.js';
import { compareText } from './marks.js';
import { planSandboxNamespace } from './sandbox.js';
import { serves } from './serving.js';
import { planTaskNamespace } from './task.js';
import type { NamespacePlan, NodeFacts, NodePlan } from './types.js';

/** What the last plan was made from, kept to plan the next one by difference. */
export interface PlanState {
  readonly catalog: Catalog;
  readonly node: string;
  readonly facts: NodeFacts;
  readonly plan: NodePlan;
  readonly ctx: PlanContext;
  /** Service → its tasks' names (every task, serving or not). */
  readonly tasksOf: Map<string, Set<string>>;
  /**
   * The running local tasks planned, by name: an unchanged one is taken from here, not from the catalog's
   * tasks record, which a later change may already have changed in place (catalog/incremental.ts).
   */
  readonly local: ReadonlyMap<string, Task>;
}

export type PlanPath = 'same' | 'incremental' | 'full';

function tasksOfCatalog(catalog: Catalog): Map<string, Set<string>> {
  const tasksOf = new Map<string, Set<string>>();
  for (const task of taskList(catalog)) {
    if (task.service === undefined) continue;
    let set = tasksOf.get(task.service);
    if (set === undefined) tasksOf.set(task.service, set = new Set());
    set.add(task.name);
  }
  return tasksOf;
}

/** The namespaces in planNode's order: host, sandbox, load balancers by network, tasks by name. */
function assemble(ctx: PlanContext, host: NamespacePlan | undefined, sandbox: NamespacePlan | undefined,
  balancers: readonly NamespacePlan[], tasks: readonly NamespacePlan[]): NodePlan {
  const namespaces: NamespacePlan[] = [];
  if (host !== undefined && host.chains.length > 0) namespaces.push(host);
  if (sandbox !== undefined) namespaces.push(sandbox);
  namespaces.push(...balancers, ...tasks);
  return { node: ctx.node, namespaces };
}

/** planNode's work, keeping what the next plan by difference needs. */
export function planFull(catalog: Catalog, node: string, facts: NodeFacts): PlanState {
  const ctx = makeContext(catalog, node, facts);
  const host = planHostNamespace(ctx);
  const sandbox = planSandboxNamespace(ctx);
  const balancers: NamespacePlan[] = [];
  const balancerOf = catalog.nodes[node]?.loadBalancers;
  for (const network of [...ctx.balancedNetworks].sort(compareText)) {
    const plan = planLoadBalancer(ctx, network, balancerOf![network]!);
    if (plan !== undefined) balancers.push(plan);
  }
  const local = taskList(catalog).filter((t) => t.node === node && t.state === 'running').sort((a, b) => compareText(a.name, b.name));
  const tasks = local.map((task) => planTaskNamespace(ctx, task));
  return {
    catalog, node, facts, plan: assemble(ctx, host, sandbox, balancers, tasks), ctx, tasksOf: tasksOfCatalog(catalog),
    local: new Map(local.map((task) => [task.name, task])),
  };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [key, value] of a) if (!b.has(key) || !sameValue(value, b.get(key))) return false;
    return true;
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || a instanceof Map || b instanceof Map) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Namespace keys whose facts differ; undefined when facts differ beyond namespaces (plan in full). */
function factsDiffer(a: NodeFacts, b: NodeFacts): Set<string> | undefined {
  if (a.kernelRelease !== b.kernelRelease || !sameValue(a.probes, b.probes)) return undefined;
  const keys = new Set<string>();
  for (const [x, y] of [[a.marks, b.marks], [a.resolverPorts, b.resolverPorts]] as const) {
    for (const key of new Set([...x.keys(), ...y.keys()])) if (!sameValue(x.get(key), y.get(key))) keys.add(key);
  }
  return keys;
}

/**
 * The plan of `catalog` by difference from `last` when it can be had so (the
 * same node, `catalog` derived from last's by a change to services and tasks,
 * the same facts but for some namespaces'); undefined otherwise.
 */
export function planByDifference(last: PlanState, catalog: Catalog, node: string, facts: NodeFacts): { state: PlanState; path: PlanPath } | undefined {
  if (last.node !== node) return undefined;
  const dirtyKeys = factsDiffer(last.facts, facts);
  if (dirtyKeys === undefined) return undefined;
  if (last.catalog === catalog) {
    if (dirtyKeys.size === 0) return { state: { ...last, facts }, path: 'same' };
    return { state: replan(last, catalog, facts, new Set(), new Set(), new Map(), dirtyKeys), path: 'incremental' };
  }
  const derivation = derivationOf(catalog);
  if (derivation === undefined || derivation.parent !== last.catalog) return undefined;
  return { state: replan(last, catalog, facts, derivation.services, derivation.tasks, derivation.previousTasks, dirtyKeys), path: 'incremental' };
}

function replan(last: PlanState, catalog: Catalog, facts: NodeFacts, changedServices: ReadonlySet<string>,
  changedTasks: ReadonlySet<string>, previousTasks: ReadonlyMap<string, Task>, dirtyKeys: ReadonlySet<string>): PlanState {
  const before = last.catalog;
  const node = last.node;
  const own = <T>(record: Readonly<Record<string, T>>, name: string): T | undefined => (Object.hasOwn(record, name) ? record[name] : undefined);
  const touched = new Set(changedServices);
  const tasksOf = last.tasksOf;
  for (const name of changedTasks) {
    // The parent's tasks record may be the one changed in place (catalog/incremental.ts): its old versions come with the change.
    const was = previousTasks.get(name);
    const now = own(catalog.tasks, name);
    if (was?.service !== undefined) {
      touched.add(was.service);
      const set = tasksOf.get(was.service);
      set?.delete(name);
      if (set?.size === 0) tasksOf.delete(was.service);
    }
    if (now?.service !== undefined) {
      touched.add(now.service);
      let set = tasksOf.get(now.service);
      if (set === undefined) tasksOf.set(now.service, set = new Set());
      set.add(name);
    }
  }
  // The context: serving tasks again for the touched services only; the service list again if any changed.
  const servingTasks = new Map(last.ctx.servingTasks);
  for (const service of touched) {
    const list: Task[] = [];
    for (const name of tasksOf.get(service) ?? []) {
      const task = catalog.tasks[name] as Task;
      if (serves(catalog, task, node, facts.probes)) list.push(task);
    }
    if (list.length === 0) servingTasks.delete(service);
    else servingTasks.set(service, list.sort((a, b) => compareText(a.name, b.name)));
  }
  const services = changedServices.size === 0 ? last.ctx.services : sortedServices(catalog);
  const vipServices = changedServices.size === 0 ? last.ctx.vipServices : vipServicesOf(catalog, services);
  const ctx: PlanContext = { ...last.ctx, catalog, facts, services, vipServices, servingTasks, realServerLists: new Map() };

  // What the touched services reach, in either version.
  const versions: Service[] = [];
  for (const name of touched) {
    const was = own(before.services, name);
    const now = own(catalog.services, name);
    if (was !== undefined) versions.push(was);
    if (now !== undefined) versions.push(now);
  }
  const published = versions.some((s) => s.ports.length > 0);
  const meshed = versions.some((s) => s.ports.some((p) => p.mode === 'ingress'));
  const vipNetworks = new Set(versions.flatMap((s) => (s.endpointMode === 'vip' ? Object.keys(s.vips) : [])));

  const previous = new Map(last.plan.namespaces.map((ns) => [ns.role === 'task' ? `task\0${ns.task}` : `${ns.role}\0${ns.role === 'load-balancer' ? ns.network : ''}`, ns] as const));
  const dirty = (ns: NamespacePlan | undefined): boolean => ns !== undefined && dirtyKeys.has(ns.key);

  const oldHost = previous.get('host\0');
  const host = published || dirty(oldHost) || oldHost === undefined && dirtyKeys.size > 0 ? planHostNamespace(ctx) : oldHost;
  const oldSandbox = previous.get('ingress-sandbox\0');
  const sandboxKey = catalog.nodes[node]?.ingressSandbox?.netns;
  const sandbox = meshed || dirty(oldSandbox) || (sandboxKey !== undefined && dirtyKeys.has(sandboxKey)) ? planSandboxNamespace(ctx) : oldSandbox;

  const balancers: NamespacePlan[] = [];
  const balancerOf = catalog.nodes[node]?.loadBalancers;
  for (const network of [...ctx.balancedNetworks].sort(compareText)) {
    const old = previous.get(`load-balancer\0${network}`);
    const balancer = balancerOf![network]!;
    const plan = vipNetworks.has(network) || dirtyKeys.has(balancer.netns) ? planLoadBalancer(ctx, network, balancer) : old;
    if (plan !== undefined) balancers.push(plan);
  }

  // Local running tasks: the previous ones, changed ones in or out.
  const local = new Map(last.local);
  for (const name of changedTasks) {
    const now = own(catalog.tasks, name);
    if (now !== undefined && now.node === node && now.state === 'running') local.set(name, now);
    else local.delete(name);
  }
  const tasks = [...local.keys()].sort(compareText).map((name) => {
    const task = local.get(name)!;
    const old = previous.get(`task\0${name}`);
    const reached = old === undefined || changedTasks.has(name) || dirtyKeys.has(task.netns)
      || (task.service !== undefined && touched.has(task.service))
      || Object.keys(task.addresses).some((network) => vipNetworks.has(network));
    return reached ? planTaskNamespace(ctx, task) : old;
  });
  return { catalog, node, facts, plan: assemble(ctx, host, sandbox, balancers, tasks), ctx, tasksOf, local };
}
