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
import type { Catalog, Family, Task } from '../catalog/types.js';
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
  const tasks = Object.values(catalog.tasks);
  yield;
  const isGone = (task: Task) => task.node === node && gone.has(task.netns);
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
  yield;

  // service → network → its serving tasks' address records there (in catalog order: answers are shuffled)
  const taskRecords = new Map<string, Map<string, LocalRecord[]>>();
  for (let i = 0; i < tasks.length; i++) {
    if (i % STEP === STEP - 1) yield;
    const task = tasks[i]!;
    let taskKey: string | undefined;
    for (const networkName in task.addresses) {
      const table = tables.get(networkName);
      if (table === undefined) continue;
      if (taskKey === undefined) {
        if (!serves(catalog, task, node, probes) || isGone(task)) break;
        taskKey = task.name.toLowerCase();
      }
      const record = addressRecord(task.addresses[networkName]!);
      if (record === null) continue;
      add(table, taskKey, [record]);
      addReverse(table, record, task.name);
      if (task.service === undefined) continue;
      let byNetwork = taskRecords.get(task.service);
      if (byNetwork === undefined) taskRecords.set(task.service, (byNetwork = new Map()));
      const list = byNetwork.get(networkName);
      if (list === undefined) byNetwork.set(networkName, [record]);
      else list.push(record);
    }
  }

  const services = Object.values(catalog.services);
  for (let i = 0; i < services.length; i++) {
    if (i % STEP === STEP - 1) yield;
    const service = services[i]!;
    const serviceKeys = [service.name, ...service.aliases].map((n) => n.toLowerCase());
    // tasks.<alias> too: an alias stands for the service in every name it has.
    const tasksKeys = serviceKeys.map((n) => `tasks.${n}`);
    for (const networkName of service.networks) {
      const table = tables.get(networkName);
      if (table === undefined) continue;
      const serving = taskRecords.get(service.name)?.get(networkName) ?? [];
      for (const key of tasksKeys) add(table, key, serving);
      let answers: readonly LocalRecord[] = serving;
      if (service.endpointMode === 'vip') {
        const vip = service.vips[networkName];
        const record = vip === undefined ? null : addressRecord(vip);
        answers = record === null ? [] : [record];
        if (record !== null) addReverse(table, record, service.name);
      }
      for (const key of serviceKeys) add(table, key, answers);
    }
  }

  const viewTables = new Map<string, readonly NetworkTable[]>();
  for (const [netns, networks] of views) {
    viewTables.set(netns, networks.flatMap((n) => tables.get(n) ?? []));
  }
  let names = 0;
  for (const table of tables.values()) names += table.names.size + table.reverse.size;
  return new Snapshot(viewTables, { views: viewTables.size, networks: tables.size, names });
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

function add(table: NetworkTable, key: string, records: readonly LocalRecord[]): void {
  const existing = table.names.get(key);
  // Validation rejects names that collide; should one slip through, both answer (as Docker merges).
  table.names.set(key, existing === undefined ? records : [...existing, ...records]);
}

function addReverse(table: NetworkTable, record: LocalRecord, owner: string): void {
  const key = addressKey(record);
  if (table.reverse.has(key)) return; // an address is unique on a network; the first claim wins
  table.reverse.set(key, owner);
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
    private readonly views: ReadonlyMap<string, readonly NetworkTable[]>,
    readonly stats: RecordsStats,
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
