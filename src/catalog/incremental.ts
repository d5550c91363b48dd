// Validation of one change to a valid catalog, in time proportional to the change
// (issue 15). A change is object-level: which services and tasks were put or
// deleted, with their new values as written. The objects it names are read and
// checked by the same code as a full validation (readDraft and the check-*.ts
// functions, over a small document: every network and node, the changed
// services and tasks, the services those tasks name and the tasks of the changed
// services); what they share with the rest of the catalog — names, addresses,
// namespaces, published ports, tasks → their service — is checked against
// indexes kept beside the accepted catalog.
//
// The fast path only ever says "valid". Whenever it finds anything wrong, or the
// change is one it does not judge (a network or node put or deleted, a catalog
// not valid before), it validates the whole document as validateCatalog always
// did, so a refused catalog's problems are exactly those of a full validation.
// Soundness of "valid": every check of validate.ts either looks only at one
// object and at networks/nodes (re-run on the small document), or is a clash
// between two objects (a name, an address, a namespace, a port) that the
// indexes count over the whole catalog. test/unit/catalog/incremental.test.ts
// holds the two paths to the same verdicts, and the same catalog, on random
// change sequences.
import { readDraft, meshPorts, type ServiceEntry } from './draft.js';
import { checkDuplicateAddresses } from './check-addresses.js';
import { checkNamespaces } from './check-namespaces.js';
import { checkNames } from './check-names.js';
import { checkNetworks } from './check-networks.js';
import { checkNodes } from './check-nodes.js';
import { checkPorts } from './check-ports.js';
import { checkServices } from './check-services.js';
import { checkTasks } from './check-tasks.js';
import { COLLECTIONS, type Collection, type ObjectChange, rememberDerivation } from './change.js';
import { emptyNames } from './names.js';
import { rememberTaskList, taskList } from './task-list.js';
import type { Catalog, CatalogProblem, Names, Service, Task } from './types.js';
import { validateCatalog, type ValidationResult } from './validate.js';

export { COLLECTIONS, type Collection, type ObjectChange } from './change.js';

/** How the last change was validated: for logs, benchmarks and tests. */
export type ValidationPath = 'incremental' | 'full';

export interface IncrementalResult {
  readonly result: ValidationResult;
  readonly path: ValidationPath;
}

type Sections = Record<Collection, Map<string, unknown>>;

/** Counts per key: a clash is a count above one. */
class Counter<K> {
  readonly counts = new Map<K, number>();
  add(key: K, by: number): void {
    const next = (this.counts.get(key) ?? 0) + by;
    if (next === 0) this.counts.delete(key);
    else this.counts.set(key, next);
  }
  get(key: K): number {
    return this.counts.get(key) ?? 0;
  }
}

const portKey = (port: { published: number; protocol: string }): string => `${port.published}/${port.protocol}`;
const hostPorts = (service: Service) => service.ports.filter((p) => p.mode === 'host');

/** What a valid catalog shares between its objects, counted. */
class Indexes {
  /** Lowercased service names and aliases (what DNS answers for a service). */
  readonly serviceNames = new Counter<string>();
  readonly taskNames = new Counter<string>();
  /** network NUL address. */
  readonly addresses = new Counter<string>();
  /** node NUL netns: node roles and running tasks. */
  readonly namespaces = new Counter<string>();
  readonly mesh = new Counter<string>();
  /** port key → node → host-mode claims there. */
  readonly hostClaims = new Map<string, Counter<string>>();
  /** service → node → its running tasks there (for host-mode ports). */
  readonly running = new Map<string, Counter<string>>();
  readonly tasksOf = new Map<string, Set<string>>();

  constructor(private readonly ingress: string | undefined) {}

  node(name: string, node: Catalog['nodes'][string], by: number): void {
    if (node.netns !== undefined) this.namespaces.add(`${name}\0${node.netns}`, by);
    if (node.ingressSandbox !== undefined) {
      this.namespaces.add(`${name}\0${node.ingressSandbox.netns}`, by);
      if (this.ingress !== undefined) this.addresses.add(`${this.ingress}\0${node.ingressSandbox.address}`, by);
    }
    for (const [network, balancer] of Object.entries(node.loadBalancers ?? {})) {
      this.namespaces.add(`${name}\0${balancer.netns}`, by);
      this.addresses.add(`${network}\0${balancer.address}`, by);
    }
  }

  service(service: Service, by: number): void {
    this.serviceNames.add(service.name.toLowerCase(), by);
    for (const alias of service.aliases) this.serviceNames.add(alias.toLowerCase(), by);
    for (const [network, vip] of Object.entries(service.vips)) this.addresses.add(`${network}\0${vip}`, by);
    for (const { port } of meshPorts(service)) this.mesh.add(portKey(port), by);
  }

  task(task: Task, by: number): void {
    this.taskNames.add(task.name.toLowerCase(), by);
    for (const network in task.addresses) this.addresses.add(`${network}\0${task.addresses[network]}`, by);
    if (task.state === 'running') {
      this.namespaces.add(`${task.node}\0${task.netns}`, by);
      let byNode = this.running.get(task.service ?? '');
      if (task.service !== undefined) {
        if (byNode === undefined) this.running.set(task.service, byNode = new Counter());
        byNode.add(task.node, by);
      }
    }
    if (task.service !== undefined) {
      let tasks = this.tasksOf.get(task.service);
      if (tasks === undefined) this.tasksOf.set(task.service, tasks = new Set());
      if (by > 0) tasks.add(task.name);
      else tasks.delete(task.name);
      if (tasks.size === 0) this.tasksOf.delete(task.service);
    }
  }

  /** The host-mode claims of one service: each node it runs a task on claims each of its host ports. */
  hostPortsOf(service: Service, by: number): void {
    const ports = hostPorts(service);
    if (ports.length === 0) return;
    for (const [node] of this.running.get(service.name)?.counts ?? []) {
      for (const port of ports) {
        let byNode = this.hostClaims.get(portKey(port));
        if (byNode === undefined) this.hostClaims.set(portKey(port), byNode = new Counter());
        byNode.add(node, by);
      }
    }
  }
}

interface Valid {
  readonly catalog: Catalog;
  readonly indexes: Indexes;
  /** Service and task names, sorted (the order of a catalog's records and task list). */
  readonly serviceOrder: string[];
  readonly taskOrder: string[];
}

/** Index of `name` in sorted `list`, or where it would go. */
function search(list: readonly string[], name: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as string) < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function indexesOf(catalog: Catalog): Indexes {
  const ingress = Object.values(catalog.networks).find((n) => n.ingress)?.name;
  const indexes = new Indexes(ingress);
  for (const [name, node] of Object.entries(catalog.nodes)) indexes.node(name, node, 1);
  for (const service of Object.values(catalog.services)) indexes.service(service, 1);
  for (const task of taskList(catalog)) indexes.task(task, 1);
  for (const service of Object.values(catalog.services)) indexes.hostPortsOf(service, 1);
  return indexes;
}

/**
 * A catalog kept as its objects as written, validated change by change. Not
 * pure (it holds the indexes and updates them), but its answers are those of
 * validateCatalog on the whole document.
 */
export class IncrementalCatalog {
  private readonly sections: Sections;
  private valid: Valid | undefined;
  private last: ValidationResult;

  /** From plain objects by collection (a document's sections, or etcd's values parsed). */
  constructor(sections: Partial<Record<Collection, Iterable<readonly [string, unknown]>>>, known?: ValidationResult) {
    this.sections = {
      networks: new Map(sections.networks ?? []), nodes: new Map(sections.nodes ?? []),
      services: new Map(sections.services ?? []), tasks: new Map(sections.tasks ?? []),
    };
    this.last = known ?? validateCatalog(this.document());
    this.valid = this.last.ok ? this.validOf(this.last.catalog) : undefined;
  }

  get result(): ValidationResult {
    return this.last;
  }

  /** The whole document, as validateCatalog reads it. */
  document(): Record<string, unknown> {
    const document: Record<string, unknown> = { version: 1 };
    for (const collection of COLLECTIONS) {
      const section = this.sections[collection];
      if (section.size > 0) document[collection] = Object.fromEntries(section);
    }
    return document;
  }

  private validOf(catalog: Catalog): Valid {
    const sorted = (record: object) => Object.keys(record).sort();
    return { catalog, indexes: indexesOf(catalog), serviceOrder: sorted(catalog.services), taskOrder: taskList(catalog).map((t) => t.name) };
  }

  /** Applies the changes (in order; a later one for the same object wins) and validates the result. */
  apply(changes: readonly ObjectChange[]): IncrementalResult {
    const last = new Map<string, ObjectChange>();
    for (const change of changes) last.set(`${change.collection}/${change.name}`, change);
    const effective = [...last.values()].filter((c) => c.value !== undefined || this.sections[c.collection].has(c.name));
    const before = this.valid;
    const old = new Map(effective.map((c) => [`${c.collection}/${c.name}`, this.sections[c.collection].get(c.name)] as const));
    for (const c of effective) {
      if (c.value === undefined) this.sections[c.collection].delete(c.name);
      else this.sections[c.collection].set(c.name, c.value);
    }
    if (effective.length === 0) return { result: this.last, path: 'incremental' };
    const simple = before !== undefined && effective.every((c) => c.collection === 'services' || c.collection === 'tasks');
    const quick = simple ? this.quick(before, effective, old) : undefined;
    if (quick !== undefined) {
      this.valid = quick;
      this.last = { ok: true, catalog: quick.catalog };
      return { result: this.last, path: 'incremental' };
    }
    this.last = validateCatalog(this.document());
    this.valid = this.last.ok ? this.validOf(this.last.catalog) : undefined;
    return { result: this.last, path: 'full' };
  }

  /** The new state when the change is valid by the fast path's judgement; undefined: judge it in full. */
  private quick(before: Valid, changes: readonly ObjectChange[], old: ReadonlyMap<string, unknown>): Valid | undefined {
    const services = new Map<string, unknown>();
    const tasks = new Map<string, unknown>();
    const putServices = changes.filter((c) => c.collection === 'services' && c.value !== undefined).map((c) => c.name);
    const putTasks = changes.filter((c) => c.collection === 'tasks' && c.value !== undefined).map((c) => c.name);
    for (const name of putServices) services.set(name, this.sections.services.get(name));
    for (const name of putTasks) tasks.set(name, this.sections.tasks.get(name));
    // The tasks of a changed service are judged again against it.
    for (const name of putServices) {
      for (const task of before.indexes.tasksOf.get(name) ?? []) {
        if (this.sections.tasks.has(task)) tasks.set(task, this.sections.tasks.get(task));
      }
    }
    // …and a changed task against its service, as it now is.
    for (const value of tasks.values()) {
      const service = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['service'] : undefined;
      if (typeof service === 'string' && this.sections.services.has(service)) services.set(service, this.sections.services.get(service));
    }
    const small: Record<string, unknown> = { version: 1 };
    if (this.sections.networks.size > 0) small['networks'] = Object.fromEntries(this.sections.networks);
    if (this.sections.nodes.size > 0) small['nodes'] = Object.fromEntries(this.sections.nodes);
    if (services.size > 0) small['services'] = Object.fromEntries(services);
    if (tasks.size > 0) small['tasks'] = Object.fromEntries(tasks);
    const problems: CatalogProblem[] = [];
    const draft = readDraft(small, problems);
    if (problems.length > 0) return undefined;
    problems.push(
      ...checkNames(draft), ...checkNetworks(draft), ...checkNodes(draft), ...checkServices(draft),
      ...checkTasks(draft), ...checkNamespaces(draft), ...checkDuplicateAddresses(draft), ...checkPorts(draft),
    );
    if (problems.length > 0) return undefined;

    // The old objects, as the accepted catalog holds them; the new, as just read.
    const oldServices = new Map<string, Service>();
    const oldTasks = new Map<string, Task>();
    const newServices = new Map<string, ServiceEntry['service']>();
    const newTasks = new Map<string, Task>();
    for (const c of changes) {
      const was = old.get(`${c.collection}/${c.name}`);
      if (c.collection === 'services') {
        if (was !== undefined) oldServices.set(c.name, before.catalog.services[c.name] as Service);
        if (c.value !== undefined) newServices.set(c.name, draft.services.entries.get(c.name)!.service);
      } else {
        if (was !== undefined) oldTasks.set(c.name, before.catalog.tasks[c.name] as Task);
        if (c.value !== undefined) newTasks.set(c.name, draft.tasks.entries.get(c.name)!);
      }
    }

    // The indexes are updated in place; a refusal rebuilds them from the full validation's catalog.
    const indexes = before.indexes;
    const touched = new Set<string>();
    for (const s of [...oldServices.values(), ...newServices.values()]) touched.add(s.name);
    for (const t of [...oldTasks.values(), ...newTasks.values()]) if (t.service !== undefined) touched.add(t.service);
    const serviceNow = (name: string): Service | undefined =>
      newServices.get(name) ?? (oldServices.has(name) ? undefined : before.catalog.services[name]);
    const serviceThen = (name: string): Service | undefined => before.catalog.services[name];
    for (const name of touched) {
      const then = serviceThen(name);
      if (then !== undefined) indexes.hostPortsOf(then, -1);
    }
    for (const s of oldServices.values()) indexes.service(s, -1);
    for (const t of oldTasks.values()) indexes.task(t, -1);
    for (const s of newServices.values()) indexes.service(s, 1);
    for (const t of newTasks.values()) indexes.task(t, 1);
    for (const name of touched) {
      const now = serviceNow(name);
      if (now !== undefined) indexes.hostPortsOf(now, 1);
    }
    const ok = this.clashFree(indexes, newServices, newTasks, oldServices, touched, serviceNow);
    if (!ok) return undefined;

    // The catalog: the services record in name order as toCatalog makes it; the tasks record and list below.
    const serviceOrder = before.serviceOrder;
    const taskOrder = before.taskOrder;
    for (const name of oldServices.keys()) if (!newServices.has(name)) serviceOrder.splice(search(serviceOrder, name), 1);
    for (const name of newServices.keys()) if (!oldServices.has(name)) serviceOrder.splice(search(serviceOrder, name), 0, name);
    const servicesRecord = oldServices.size + newServices.size === 0
      ? before.catalog.services
      : record(serviceOrder, (name) => newServices.get(name) ?? (before.catalog.services[name] as Service));
    // The task list: the parent's, copied (a memcpy) and edited where the changed names sit, not rebuilt by lookups.
    const taskValues: Task[] = taskList(before.catalog).slice();
    for (const name of oldTasks.keys()) {
      if (newTasks.has(name)) continue;
      const at = search(taskOrder, name);
      taskOrder.splice(at, 1);
      taskValues.splice(at, 1);
    }
    for (const [name, task] of newTasks) {
      const at = search(taskOrder, name);
      if (taskOrder[at] === name) taskValues[at] = task;
      else {
        taskOrder.splice(at, 0, name);
        taskValues.splice(at, 0, task);
      }
    }
    // The tasks record is changed in place and handed on: building one of 100 000 names again costs more than
    // the rest of a change (issue 15). The catalog it came from is the one just replaced; its old tasks travel
    // in the derivation for the planner. A new name goes last in the record's own order, which nothing relies
    // on (types.ts); the task list stays in name order.
    const tasksRecord = before.catalog.tasks as Record<string, Task>;
    for (const name of oldTasks.keys()) if (!newTasks.has(name)) delete tasksRecord[name];
    for (const [name, task] of newTasks) tasksRecord[name] = task;
    const catalog: Catalog = {
      version: 1, networks: before.catalog.networks, nodes: before.catalog.nodes, services: servicesRecord, tasks: tasksRecord as Names<Task>,
    };
    rememberTaskList(catalog, taskValues);
    rememberDerivation(catalog, {
      parent: before.catalog, services: touchedServices(oldServices, newServices), tasks: new Set([...oldTasks.keys(), ...newTasks.keys()]), previousTasks: oldTasks,
    });
    return { catalog, indexes, serviceOrder, taskOrder };
  }

  /** The cross-object checks the change touches, against the indexes as updated. */
  private clashFree(
    indexes: Indexes, newServices: ReadonlyMap<string, Service>, newTasks: ReadonlyMap<string, Task>,
    oldServices: ReadonlyMap<string, Service>, touched: ReadonlySet<string>, serviceNow: (name: string) => Service | undefined,
  ): boolean {
    // Names: a service name or alias once among services and not a task's; a task name once and not a service's.
    for (const s of newServices.values()) {
      for (const name of [s.name, ...s.aliases]) {
        const lower = name.toLowerCase();
        if (indexes.serviceNames.get(lower) !== 1 || indexes.taskNames.get(lower) > 0) return false;
      }
    }
    for (const t of newTasks.values()) {
      const lower = t.name.toLowerCase();
      if (indexes.taskNames.get(lower) !== 1 || indexes.serviceNames.get(lower) > 0) return false;
      if (t.service !== undefined && serviceNow(t.service) === undefined) return false;
      if (t.state === 'running' && indexes.namespaces.get(`${t.node}\0${t.netns}`) !== 1) return false;
      for (const network in t.addresses) if (indexes.addresses.get(`${network}\0${t.addresses[network]}`) !== 1) return false;
    }
    for (const s of newServices.values()) {
      for (const [network, vip] of Object.entries(s.vips)) if (indexes.addresses.get(`${network}\0${vip}`) !== 1) return false;
    }
    // A service deleted while tasks still name it.
    for (const name of oldServices.keys()) if (!newServices.has(name) && indexes.tasksOf.has(name)) return false;
    // Ports: the keys the change claimed or released, judged as check-ports.ts judges a node's claims.
    const keys = new Set<string>();
    for (const s of [...oldServices.values(), ...newServices.values()]) for (const { port } of meshPorts(s)) keys.add(portKey(port));
    for (const name of touched) {
      const now = serviceNow(name);
      if (now === undefined) continue;
      for (const port of hostPorts(now)) keys.add(portKey(port));
      // Two running tasks of one host-mode service on one node.
      if (hostPorts(now).length > 0) for (const count of indexes.running.get(name)?.counts.values() ?? []) if (count > 1) return false;
    }
    for (const key of keys) {
      const mesh = indexes.mesh.get(key);
      if (mesh > 1) return false;
      for (const count of indexes.hostClaims.get(key)?.counts.values() ?? []) if (count + mesh > 1) return false;
    }
    return true;
  }
}

function record<T>(order: readonly string[], value: (name: string, i: number) => T): Names<T> {
  const out = emptyNames<T>();
  for (let i = 0; i < order.length; i++) out[order[i] as string] = value(order[i] as string, i);
  return out as Names<T>;
}

const touchedServices = (a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): Set<string> => new Set([...a.keys(), ...b.keys()]);
