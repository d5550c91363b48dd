// The resolver's record snapshot: every name each local task may ask for, built
// from the catalog in one pass and swapped whole on every catalog change. Pure.
//
// Layout, for the hot path: one table per network (lower-case name → records,
// reverse name → PTR record), built once and shared by every namespace attached
// to that network; a view per asking namespace is just its networks in name
// order. Records are pre-encoded on the wire (owner = the question, 0xC00C), so
// answering copies bytes and encodes nothing.
//
// Every name also answers as `<name>.<network>` (Docker's form, and what the PTR
// answers say): a table holds its names a second time, qualified with its own
// network, so such a name costs a lookup, not a split. That second map is built
// the first time a name ending in `.<network>` is asked (a few ms for a table of
// 10 000 names, once per snapshot), so neither the build nor tables nobody asks
// that way pay for it; names of other shapes never touch it. Precedence, as in Docker
// (its sandbox tries the whole name before reading the tail as a network): a name
// is first looked up as it is on every network of the task, and only when none
// knows it is it read as qualified. Services and aliases are single labels, so
// only a dotted task name can look qualified: a task named `api.front` answers
// `api.front` even to a task on network front where service `api` lives
// (`api.front.front` is that VIP then); where the task `api.front` is not visible,
// `api.front` is service api on front. A qualified name answers from its own
// network only, never from the task's first network.
import type { Catalog, Family, Service, Task } from '../catalog/types.js';
import { namesOf } from '../catalog/names.js';
import { compareText } from '../plan/marks.js';
import { serves } from '../plan/serving.js';
import {
  encodeAddressRecord,
  encodeName,
  encodeRecord,
  TYPE_A,
  TYPE_AAAA,
  TYPE_ANY,
  TYPE_PTR,
} from './wire.js';

export interface LocalRecord {
  readonly type: typeof TYPE_A | typeof TYPE_AAAA | typeof TYPE_PTR;
  /** The address (A, AAAA) or the target name (PTR), as text. */
  readonly data: string;
  /** The whole record on the wire: owner 0xC00C (the question's name), class IN, TTL 600. */
  readonly wire: Uint8Array;
}

export type Lookup =
  /** Records of the asked type; the array belongs to the snapshot (shuffle a copy). */
  | { readonly kind: 'answer'; readonly records: readonly LocalRecord[] }
  /** A name of ours without records of that type: NOERROR, no answers (never NXDOMAIN: musl). */
  | { readonly kind: 'nodata' }
  /** Not a name this namespace can see: forward it. */
  | { readonly kind: 'unknown' }
  /** No running local task has this namespace. */
  | { readonly kind: 'no-view' };

export interface RecordsStats {
  readonly views: number;
  readonly networks: number;
  readonly names: number;
}

export interface Records {
  /**
   * What `name` (any case, trailing dot or not) answers for `qtype` in the view of
   * the task in `netns`. A (1) and AAAA (28) answer from the first of the task's
   * networks, in name order, that has addresses of that family for the name —
   * never merged across networks; PTR (12) answers reverse names of task addresses
   * and VIPs; ANY (255) answers A and AAAA together; any other type of a known
   * name is NODATA.
   */
  lookup(netns: string, name: string, qtype: number): Lookup;
  /** Whether a running local task owns this namespace (queries from any other are dropped). */
  hasView(netns: string): boolean;
  /** Namespaces with a view (one per running local task), sorted. */
  readonly namespaces: readonly string[];
  readonly stats: RecordsStats;
}

interface NetworkTable {
  readonly name: string;
  readonly family: Family;
  /** Lower-case name → its records on this network (empty: known, but nothing serves). */
  readonly names: Map<string, readonly LocalRecord[]>;
  /** `.<network>`, lower case: what every qualified name of this table ends with. */
  readonly suffix: string;
  /** The names as `<name>.<network>`, the same record arrays; built on first use (qualifiedNames). */
  qualified: Map<string, readonly LocalRecord[]> | null;
  /**
   * Address key (see addressKey) → the owner of the PTR target `<owner>.<network>`:
   * a task's name, or a service's for its VIP.
   */
  readonly reverse: Map<string, string>;
  /** PTR records encoded on first use: most addresses are never asked about. */
  readonly ptrCache: Map<string, LocalRecord>;
}

const NO_VIEW: Lookup = { kind: 'no-view' };
const UNKNOWN: Lookup = { kind: 'unknown' };
const NODATA: Lookup = { kind: 'nodata' };

/**
 * What the records are built from. `gone` holds namespaces known to be gone (the
 * task's process died, the namespace was deleted) while the catalog still lists
 * their tasks running: such a local task is treated as not serving (SPEC §5) —
 * no answers about it, and no view for it — without the catalog being rewritten.
 */
export interface RecordsInput {
  readonly catalog: Catalog;
  readonly node: string;
  readonly probes: ReadonlyMap<string, boolean>;
  readonly gone?: ReadonlySet<string>;
}

/** Entries handled between two yields of buildRecordsInSteps. */
const STEP = 256;

export function buildRecords(catalog: Catalog, node: string, probes: ReadonlyMap<string, boolean>, gone?: ReadonlySet<string>): Records {
  const steps = buildRecordsInSteps({ catalog, node, probes, ...(gone === undefined ? {} : { gone }) });
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * buildRecords cut into steps: it yields every few hundred entries, so whoever
 * drives it can answer queries between steps (a 10 000-service catalog takes
 * about half a second to build, too long to hold a resolver's event loop).
 * The catalog must not change while the steps run.
 */
export function* buildRecordsInSteps(input: RecordsInput): Generator<void, Records, void> {
  const { catalog, node, probes } = input;
  const gone = input.gone ?? NOTHING_GONE;
  // The services and tasks are read from the catalog before the first yield:
  // the resolver's copy is patched in place (catalog-patch.ts), so a build must
  // not read them again later (networks are never patched).
  const tasks = Object.values(catalog.tasks);
  const services = Object.values(catalog.services);
  yield;
  // Whether a task serves reads its service (for local tasks only): from the services as read.
  const asRead: Catalog = { ...catalog, services: namesOf(services.map((s) => [s.name, s] as const)) };
  const isGone = (task: Task) => task.node === node && gone.has(task.netns);
  const localServing = new Set<string>();
  const localServices = new Set<string>();
  for (const task of tasks) {
    if (task.node !== node) continue;
    if (task.service !== undefined) localServices.add(task.service);
    if (serves(asRead, task, node, probes) && !isGone(task)) localServing.add(task.name);
  }
  yield;
  const views = viewNetworks(catalog, node, tasks, isGone);
  const needed = new Set<string>();
  for (const networks of views.values()) for (const network of networks) needed.add(network);

  // Only networks some local task sits on get a table: a node sees a slice of a big cluster.
  const tables = new Map<string, NetworkTable>();
  for (const name of [...needed].sort(compareText)) {
    const network = catalog.networks[name];
    if (network === undefined) continue;
    tables.set(name, {
      name, family: network.family, names: new Map(), suffix: `.${name.toLowerCase()}`, qualified: null, reverse: new Map(), ptrCache: new Map(),
    });
  }
  const basis: Basis = { node, tables, members: new Map(), localServices, merged: false };
  const add = (table: NetworkTable, key: string, records: readonly LocalRecord[]): void => {
    const existing = table.names.get(key);
    // Validation rejects names that collide; should one slip through, both answer (as Docker merges).
    if (existing !== undefined) basis.merged = true;
    table.names.set(key, existing === undefined ? records : [...existing, ...records]);
  };
  yield;

  // service → network → its serving tasks' address records there (in catalog order: answers are shuffled)
  const taskRecords = basis.members;
  for (let i = 0; i < tasks.length; i++) {
    if (i % STEP === STEP - 1) yield;
    const task = tasks[i]!;
    let taskKey: string | undefined;
    for (const networkName in task.addresses) {
      const table = tables.get(networkName);
      if (table === undefined) continue;
      if (taskKey === undefined) {
        if (!(task.node === node ? localServing.has(task.name) : servesRemote(task))) break;
        taskKey = task.name.toLowerCase();
      }
      const record = addressRecord(task.addresses[networkName]!);
      if (record === null) continue;
      add(table, taskKey, [record]);
      if (!addReverse(table, record, task.name)) basis.merged = true;
      if (task.service === undefined) continue;
      member(taskRecords, task.service, networkName).set(task.name, record);
    }
  }

  for (let i = 0; i < services.length; i++) {
    if (i % STEP === STEP - 1) yield;
    const service = services[i]!;
    for (const networkName of service.networks) {
      const table = tables.get(networkName);
      if (table === undefined) continue;
      for (const [key, records, vip] of serviceEntries(service, networkName, taskRecords)) {
        add(table, key, records);
        if (vip !== undefined && !addReverse(table, vip, service.name)) basis.merged = true;
      }
    }
  }

  const viewTables = new Map<string, readonly NetworkTable[]>();
  for (const [netns, networks] of views) {
    viewTables.set(netns, networks.flatMap((n) => tables.get(n) ?? []));
  }
  return new Snapshot(viewTables, statsOf(viewTables.size, tables), basis);
}

/** What a snapshot was built from, kept so that a change can patch it (patchRecords). */
interface Basis {
  readonly node: string;
  readonly tables: ReadonlyMap<string, NetworkTable>;
  /** service → network → serving task → its address record there. */
  readonly members: Map<string, Map<string, Map<string, LocalRecord>>>;
  /** Services with a task on this node: their tasks' serving depends on them (healthchecks). */
  readonly localServices: ReadonlySet<string>;
  /** Two objects claimed one name or address (an invalid catalog): only a full build knows what answers then. */
  merged: boolean;
}

function member(members: Basis['members'], service: string, network: string): Map<string, LocalRecord> {
  let byNetwork = members.get(service);
  if (byNetwork === undefined) members.set(service, (byNetwork = new Map()));
  let tasks = byNetwork.get(network);
  if (tasks === undefined) byNetwork.set(network, (tasks = new Map()));
  return tasks;
}

/** A remote task serves on the catalog's word alone (serving.ts). */
const servesRemote = (task: Task): boolean => task.state === 'running' && task.health !== 'unhealthy';

/**
 * The keys a service owns on one network: `tasks.<name>` and `tasks.<alias>`
 * (its serving tasks), then its name and aliases (its VIP, or the tasks for
 * dnsrr); the third item of a name's entry is the VIP's record, for PTR.
 */
function serviceEntries(service: Service, network: string, members: Basis['members']): [string, readonly LocalRecord[], LocalRecord | undefined][] {
  const names = serviceNames(service);
  const tasks = members.get(service.name)?.get(network);
  const serving: readonly LocalRecord[] = tasks === undefined ? [] : [...tasks.values()];
  // tasks.<alias> too: an alias stands for the service in every name it has.
  const out: [string, readonly LocalRecord[], LocalRecord | undefined][] = names.map((n) => [`tasks.${n}`, serving, undefined]);
  const vip = vipRecord(service, network) ?? undefined;
  const answers: readonly LocalRecord[] = service.endpointMode === 'vip' ? (vip === undefined ? [] : [vip]) : serving;
  for (const key of names) out.push([key, answers, vip]);
  return out;
}

/** A service's name and aliases as keys (lower case). */
const serviceNames = (service: Service): string[] => [service.name, ...service.aliases].map((n) => n.toLowerCase());

/** Every key a service owns on a network: `tasks.<name>`, `tasks.<alias>`, then its name and aliases. */
const serviceKeys = (service: Service): string[] => {
  const names = serviceNames(service);
  return [...names.map((n) => `tasks.${n}`), ...names];
};

/** The record of a service's VIP on a network; null for dnsrr, or where it has none. */
function vipRecord(service: Service, network: string): LocalRecord | null {
  if (service.endpointMode !== 'vip') return null;
  const address = service.vips[network];
  return address === undefined ? null : addressRecord(address);
}

function statsOf(views: number, tables: ReadonlyMap<string, NetworkTable>): RecordsStats {
  let names = 0;
  for (const table of tables.values()) names += table.names.size + table.reverse.size;
  return { views, networks: tables.size, names };
}

const NOTHING_GONE: ReadonlySet<string> = new Set();

/** The namespaces of the running local tasks, sorted: where the resolver serves (a view each, unless gone). */
export function localNamespaces(catalog: Catalog, node: string): string[] {
  const out = new Set<string>();
  for (const name in catalog.tasks) {
    const task = catalog.tasks[name]!;
    if (task.node === node && task.state === 'running') out.add(task.netns);
  }
  return [...out].sort(compareText);
}

/** netns → the non-ingress networks of the running local task there, in name order. */
function viewNetworks(catalog: Catalog, node: string, tasks: readonly Task[], isGone: (task: Task) => boolean): Map<string, string[]> {
  const views = new Map<string, string[]>();
  const local = tasks.filter((t) => t.node === node && t.state === 'running' && !isGone(t)).sort((a, b) => compareText(a.name, b.name));
  for (const task of local) {
    // Validation keeps namespaces unique per task; should two share one, the first by name keeps it.
    if (views.has(task.netns)) continue;
    const networks = Object.keys(task.addresses)
      .filter((n) => catalog.networks[n] !== undefined && !catalog.networks[n].ingress)
      .sort(compareText);
    views.set(task.netns, networks);
  }
  return views;
}

function addressRecord(address: string): LocalRecord | null {
  const wire = encodeAddressRecord(address);
  if (wire === null) return null;
  return { type: wire.length === 16 ? TYPE_A : TYPE_AAAA, data: address, wire };
}

/** False when another owner has the address already (it keeps it). */
function addReverse(table: NetworkTable, record: LocalRecord, owner: string): boolean {
  const key = addressKey(record);
  if (table.reverse.has(key)) return table.reverse.get(key) === owner; // an address is unique on a network; the first claim wins
  table.reverse.set(key, owner);
  return true;
}

/**
 * How reverse lookups are keyed: the dotted quad for IPv4, the 32 hex digits for
 * IPv6 — both what a well-formed in-addr.arpa / ip6.arpa name spells backwards.
 */
function addressKey(record: LocalRecord): string {
  // The catalog's IPv4 text is canonical (no leading zeros), as reverseKey requires of arpa labels.
  if (record.type === TYPE_A) return record.data;
  const rdata = record.wire.subarray(12);
  let hex = '';
  for (const b of rdata) hex += (b >> 4).toString(16) + (b & 0xf).toString(16);
  return hex;
}

const IN_ADDR = '.in-addr.arpa';
const IP6 = '.ip6.arpa';

/** The address key a reverse name stands for, or undefined if it isn't a full, well-formed one. */
function reverseKey(name: string): string | undefined {
  if (name.endsWith(IN_ADDR)) {
    const labels = name.slice(0, -IN_ADDR.length).split('.');
    if (labels.length !== 4 || !labels.every((l) => /^(?:0|[1-9]\d{0,2})$/.test(l) && Number(l) <= 255)) return undefined;
    return `${labels[3]}.${labels[2]}.${labels[1]}.${labels[0]}`;
  }
  if (name.endsWith(IP6)) {
    const body = name.slice(0, -IP6.length);
    if (body.length !== 63 || !/^(?:[0-9a-f]\.){31}[0-9a-f]$/.test(body)) return undefined;
    let hex = '';
    for (let i = body.length - 1; i >= 0; i -= 2) hex += body[i];
    return hex;
  }
  return undefined;
}

class Snapshot implements Records {
  readonly namespaces: readonly string[];

  constructor(
    readonly views: ReadonlyMap<string, readonly NetworkTable[]>,
    readonly stats: RecordsStats,
    /** Undefined for the empty snapshot. */
    readonly basis?: Basis,
  ) {
    this.namespaces = [...views.keys()].sort(compareText);
  }

  hasView(netns: string): boolean {
    return this.views.has(netns);
  }

  lookup(netns: string, name: string, qtype: number): Lookup {
    const view = this.views.get(netns);
    if (view === undefined) return NO_VIEW;
    const key = normalise(name);
    if (qtype === TYPE_A || qtype === TYPE_AAAA) {
      const family = qtype === TYPE_A ? 4 : 6;
      let known = false;
      for (const table of view) {
        const records = table.names.get(key);
        if (records === undefined) continue;
        if (table.family === family && records.length > 0) return { kind: 'answer', records };
        known = true;
      }
      if (known) return NODATA;
      return qualifiedAddresses(view, key, family) ?? (reverseKnown(view, key) ? NODATA : UNKNOWN);
    }
    if (qtype === TYPE_PTR) {
      const address = reverseKey(key);
      if (address !== undefined) {
        for (const table of view) {
          const owner = table.reverse.get(address);
          if (owner !== undefined) return { kind: 'answer', records: [ptrRecord(table, address, owner)] };
        }
      }
      return namesKnown(view, key) ? NODATA : UNKNOWN;
    }
    if (qtype === TYPE_ANY) {
      const a = this.lookup(netns, key, TYPE_A);
      const aaaa = this.lookup(netns, key, TYPE_AAAA);
      if (a.kind === 'answer' || aaaa.kind === 'answer') {
        return {
          kind: 'answer',
          records: [...(a.kind === 'answer' ? a.records : []), ...(aaaa.kind === 'answer' ? aaaa.records : [])],
        };
      }
      return a;
    }
    return namesKnown(view, key) || reverseKnown(view, key) ? NODATA : UNKNOWN;
  }
}

function ptrRecord(table: NetworkTable, address: string, owner: string): LocalRecord {
  let record = table.ptrCache.get(address);
  if (record === undefined) {
    const target = `${owner}.${table.name}`;
    record = { type: TYPE_PTR, data: target, wire: encodeRecord(TYPE_PTR, encodeName(target)) };
    table.ptrCache.set(address, record);
  }
  return record;
}

/** The table's names as `<name>.<network>`, built on first use. */
function qualifiedNames(table: NetworkTable): ReadonlyMap<string, readonly LocalRecord[]> {
  if (table.qualified === null) {
    table.qualified = new Map();
    for (const [key, records] of table.names) table.qualified.set(key + table.suffix, records);
  }
  return table.qualified;
}

/** A or AAAA records of `key` read as `<name>.<network>`; undefined when it is no such name. */
function qualifiedAddresses(view: readonly NetworkTable[], key: string, family: Family): Lookup | undefined {
  for (const table of view) {
    if (!key.endsWith(table.suffix)) continue;
    const records = qualifiedNames(table).get(key);
    if (records === undefined) return undefined;
    return table.family === family && records.length > 0 ? { kind: 'answer', records } : NODATA;
  }
  return undefined;
}

function namesKnown(view: readonly NetworkTable[], key: string): boolean {
  for (const table of view) {
    if (table.names.has(key)) return true;
    if (key.endsWith(table.suffix) && qualifiedNames(table).has(key)) return true;
  }
  return false;
}

function reverseKnown(view: readonly NetworkTable[], key: string): boolean {
  if (!key.endsWith('.arpa')) return false;
  const address = reverseKey(key);
  if (address === undefined) return false;
  for (const table of view) if (table.reverse.has(address)) return true;
  return false;
}

function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.length > 0 && lower.charCodeAt(lower.length - 1) === 0x2e ? lower.slice(0, -1) : lower;
}

/** The snapshot before the first catalog: no views, every query from any namespace is dropped. */
export const EMPTY_RECORDS: Records = new Snapshot(new Map(), { views: 0, networks: 0, names: 0 });

/**
 * One change between the catalog a snapshot was built from and the next: the
 * changed services and tasks as they were before (undefined: not there). Their
 * values now are the next catalog's. Networks and nodes are the same.
 */
export interface RecordsChange {
  readonly services: ReadonlyMap<string, Service | undefined>;
  readonly tasks: ReadonlyMap<string, Task | undefined>;
}

/** More changed objects than this: a full build in steps, rather than one patch that holds the loop. */
export const PATCH_LIMIT = 2000;

/**
 * The snapshot of `catalog`, made by patching `previous` (built from the
 * catalog before `change`, with the same probes and gone namespaces) in place:
 * only the names and reverse entries of the changed services and tasks, and the
 * names of the services whose serving tasks changed, are made again. `previous`
 * must not answer anything afterwards (its tables are the new snapshot's).
 *
 * Undefined — nothing touched — when a patch could not be sure to equal a full
 * build: a change to a task of this node or to a service one of them belongs to
 * (views, probes, healthchecks), a snapshot or change where two objects claim
 * one name or address (a full build merges them), or a change too big to make
 * in one go. test/unit/resolver/records-patch.test.ts holds patches equal to
 * full builds on random change sequences.
 */
export function patchRecords(previous: Records, catalog: Catalog, change: RecordsChange): Records | undefined {
  if (!(previous instanceof Snapshot) || previous.basis === undefined || previous.basis.merged) return undefined;
  if (change.services.size + change.tasks.size > PATCH_LIMIT) return undefined;
  const basis = previous.basis;
  const { node, tables, members } = basis;
  for (const [name, before] of change.tasks) {
    const after = catalog.tasks[name];
    if (before?.node === node || after?.node === node) return undefined;
  }
  for (const name of change.services.keys()) if (basis.localServices.has(name)) return undefined;

  // What the changed objects held before (removed) and will hold (added), checked before anything is touched.
  const taskEntries = (task: Task | undefined): [NetworkTable, string, LocalRecord][] => {
    if (task === undefined || !servesRemote(task)) return [];
    const out: [NetworkTable, string, LocalRecord][] = [];
    for (const network in task.addresses) {
      const table = tables.get(network);
      if (table === undefined) continue;
      const record = addressRecord(task.addresses[network]!);
      if (record !== null) out.push([table, network, record]);
    }
    return out;
  };
  const serviceNetworks = (service: Service | undefined): NetworkTable[] =>
    service === undefined ? [] : service.networks.flatMap((n) => tables.get(n) ?? []);

  const removed = new Set<string>();
  const removedReverse = new Set<string>();
  const at = (table: NetworkTable, key: string) => `${table.name}\0${key}`;
  for (const [name, before] of change.tasks) {
    for (const [table, , record] of taskEntries(before)) {
      removed.add(at(table, name.toLowerCase()));
      if (table.reverse.get(addressKey(record)) === name) removedReverse.add(at(table, addressKey(record)));
    }
  }
  for (const [name, before] of change.services) {
    if (before === undefined) continue;
    for (const table of serviceNetworks(before)) {
      for (const key of serviceKeys(before)) removed.add(at(table, key));
      const vip = vipRecord(before, table.name);
      if (vip !== null && table.reverse.get(addressKey(vip)) === name) removedReverse.add(at(table, addressKey(vip)));
    }
  }
  const added = new Set<string>();
  const addedReverse = new Map<string, string>();
  const claim = (table: NetworkTable, key: string): boolean => {
    const k = at(table, key);
    if (added.has(k) || (table.names.has(key) && !removed.has(k))) return false;
    added.add(k);
    return true;
  };
  const claimReverse = (table: NetworkTable, record: LocalRecord, owner: string): boolean => {
    const address = addressKey(record);
    const k = at(table, address);
    const mine = addedReverse.get(k);
    if (mine !== undefined) return mine === owner;
    const holder = table.reverse.get(address);
    if (holder !== undefined && holder !== owner && !removedReverse.has(k)) return false;
    addedReverse.set(k, owner);
    return true;
  };
  for (const name of change.tasks.keys()) {
    for (const [table, , record] of taskEntries(catalog.tasks[name])) {
      if (!claim(table, name.toLowerCase()) || !claimReverse(table, record, name)) return undefined;
    }
  }
  for (const name of change.services.keys()) {
    const after = catalog.services[name];
    if (after === undefined) continue;
    for (const table of serviceNetworks(after)) {
      for (const key of serviceKeys(after)) if (!claim(table, key)) return undefined;
      const vip = vipRecord(after, table.name);
      if (vip !== null && !claimReverse(table, vip, name)) return undefined;
    }
  }

  // Sure now: patch. First what the changed objects held before.
  const set = (table: NetworkTable, key: string, records: readonly LocalRecord[]): void => {
    table.names.set(key, records);
    table.qualified?.set(key + table.suffix, records);
  };
  const unset = (table: NetworkTable, key: string): void => {
    table.names.delete(key);
    table.qualified?.delete(key + table.suffix);
  };
  const unsetReverse = (table: NetworkTable, record: LocalRecord, owner: string): void => {
    const address = addressKey(record);
    if (table.reverse.get(address) !== owner) return;
    table.reverse.delete(address);
    table.ptrCache.delete(address);
  };
  /** service → the networks where its serving tasks changed. */
  const dirty = new Map<string, Set<string>>();
  const touch = (service: string | undefined, network: string): void => {
    if (service === undefined) return;
    let networks = dirty.get(service);
    if (networks === undefined) dirty.set(service, (networks = new Set()));
    networks.add(network);
  };
  for (const [name, before] of change.tasks) {
    for (const [table, network, record] of taskEntries(before)) {
      unset(table, name.toLowerCase());
      unsetReverse(table, record, name);
      if (before!.service !== undefined) members.get(before!.service)?.get(network)?.delete(name);
      touch(before!.service, network);
    }
  }
  for (const [name, before] of change.services) {
    if (before === undefined) continue;
    for (const table of serviceNetworks(before)) {
      for (const key of serviceKeys(before)) unset(table, key);
      const vip = vipRecord(before, table.name);
      if (vip !== null) unsetReverse(table, vip, name);
    }
  }
  // Then what they hold now.
  for (const name of change.tasks.keys()) {
    const task = catalog.tasks[name]!;
    for (const [table, network, record] of taskEntries(catalog.tasks[name])) {
      set(table, name.toLowerCase(), [record]);
      const address = addressKey(record);
      table.reverse.set(address, name);
      table.ptrCache.delete(address);
      if (task.service !== undefined) member(members, task.service, network).set(name, record);
      touch(task.service, network);
    }
  }
  const place = (service: Service, table: NetworkTable): void => {
    for (const [key, records, vip] of serviceEntries(service, table.name, members)) {
      set(table, key, records);
      if (vip !== undefined) {
        const address = addressKey(vip);
        table.reverse.set(address, service.name);
        table.ptrCache.delete(address);
      }
    }
  };
  for (const name of change.services.keys()) {
    const after = catalog.services[name];
    if (after !== undefined) for (const table of serviceNetworks(after)) place(after, table);
  }
  // Services that stayed as they were but whose serving tasks changed: the same keys, new records.
  for (const [name, networks] of dirty) {
    if (change.services.has(name)) continue;
    const service = catalog.services[name];
    if (service === undefined) continue;
    for (const table of serviceNetworks(service)) if (networks.has(table.name)) place(service, table);
  }
  return new Snapshot(previous.views, statsOf(previous.views.size, tables), basis);
}
