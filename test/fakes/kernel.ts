// An in-memory Kernel for unit tests and benchmarks: iptables tables per
// namespace and family (fed the restore text reconcile renders, with
// `--noflush` semantics), IPVS fwmark services, sysctls, namespaces that exist
// or vanish, IPVS present or absent, and failures on demand. Every write is all
// or nothing: a rejected restore, IPVS batch or sysctl batch changes nothing.
// Stricter than the kernel where that catches bugs (a jump to a missing chain,
// deleting a rule that is not there, adding an IPVS service twice), never looser.
import { posix } from 'node:path';
import type { Family } from '../../src/catalog/types.js';
import { jumpTarget } from '../../src/kernel/parse-iptables-save.js';
import {
  KernelError, type IpvsOp, type Kernel, type NamespaceId, type ObservedAddress, type ObservedIptables, type ObservedIpvs,
  type ObservedRealServer, type ObservedService, type ObservedTable,
} from '../../src/kernel/types.js';
import { BUILTIN_CHAINS, CHAIN_PREFIX, TABLES, type Sysctl, type Table } from '../../src/plan/types.js';

export type KernelCall = Exclude<keyof Kernel, 'namespaceExists' | 'namespaceId'>;

export interface FakeKernelOptions {
  /** Namespace paths that exist at the start; 'any': every path does (existence is someone else's). */
  readonly namespaces?: readonly string[] | 'any';
  /** Is IPVS in the kernel (default true)? */
  readonly ipvs?: boolean;
  /** Path prefixes that are symlinks (default: /var/run → /run, as on Debian). */
  readonly symlinks?: Readonly<Record<string, string>>;
}

export interface Injected {
  /** Only in this namespace (any spelling); default every one. */
  readonly netns?: string | null;
  /** Thrown instead of doing the call; default a KernelError that fits the call. */
  readonly error?: Error;
  /** How many calls fail (default 1). */
  readonly times?: number;
}

export interface FakeKernel extends Kernel {
  /** Every call made, in order, with the namespace as the caller spelled it. */
  readonly calls: { readonly call: KernelCall | 'namespaceExists' | 'namespaceId'; readonly netns: string | null }[];
  /** Namespaces whose DNS flows were forgotten, in order. */
  readonly forgotten: string[];
  addNamespace(netns: string): void;
  /** The namespace vanishes with everything in it, as `ip netns delete` does. */
  removeNamespace(netns: string): void;
  setIpvsAvailable(available: boolean): void;
  /** The next matching call(s) fail and change nothing. */
  fail(call: KernelCall, injected?: Injected): void;
  /** Runs before every call, e.g. to delete a namespace mid-pass. */
  beforeCall(hook: (call: KernelCall, netns: string | null) => void | Promise<void>): void;
  /** vipmesh's and foreign chains alike: chain → rules (built-in chains included). */
  rules(netns: string | null, family: Family, table: Table): ReadonlyMap<string, readonly string[]>;
  /** `table/CHAIN` of every VIPMESH- chain of a family. */
  vipmeshChains(netns: string | null, family?: Family): string[];
  ipvsServices(netns: string | null): ObservedService[];
  setConnections(netns: string | null, fwmark: number, address: string, port: number, active: number, inactive: number): void;
  sysctl(netns: string | null, name: string): string | undefined;
  setSysctl(netns: string | null, name: string, value: string): void;
  /** An address put there by someone (the network's plumbing, an operator). */
  addInterfaceAddress(netns: string | null, address: ObservedAddress): void;
  addresses(netns: string | null): ObservedAddress[];
}

const BUILTINS: Readonly<Record<Table, readonly string[]>> = {
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** Sysctls every namespace has, at a new namespace's values. */
const BASE_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.ip_forward': '0',
  'net.ipv4.conf.all.route_localnet': '0',
  'net.ipv6.conf.all.forwarding': '0',
};

/** The IPVS knobs, which exist only where ip_vs is. */
const VS_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.vs.conntrack': '0',
  'net.ipv4.vs.expire_nodest_conn': '0',
  'net.ipv4.vs.expire_quiescent_template': '0',
  'net.ipv4.vs.conn_reuse_mode': '1',
};

const isVs = (name: string) => name.startsWith('net.ipv4.vs.') || name.startsWith('net.ipv6.vs.');

type Chains = Map<string, string[]>;
type Tables = Map<Table, Chains>;

interface FakeService {
  scheduler: string;
  persistence: number;
  servers: Map<string, ObservedRealServer>;
}

interface Namespace {
  readonly iptables: Map<Family, Tables>;
  ipvs: Map<number, FakeService>;
  readonly sysctls: Map<string, string>;
  /** Interface addresses, in the order they were added. */
  addresses: ObservedAddress[];
}

function emptyTables(): Tables {
  return new Map(TABLES.map((t) => [t, new Map(BUILTINS[t].map((c) => [c, [] as string[]]))]));
}

function copyTables(tables: Tables): Tables {
  return new Map([...tables].map(([t, chains]) => [t, new Map([...chains].map(([c, rules]) => [c, [...rules]]))]));
}

const NO_IPVS = 'the kernel lacks IPVS (ip_vs is not available: Protocol not available)';

export function createFakeKernel(options: FakeKernelOptions = {}): FakeKernel {
  const symlinks = Object.entries(options.symlinks ?? { '/var/run': '/run' });
  const anyExists = options.namespaces === 'any';
  const existing = new Set<string>();
  const removed = new Set<string>();
  const spaces = new Map<string, Namespace>();
  let ipvsAvailable = options.ipvs ?? true;
  const calls: FakeKernel['calls'] = [];
  const forgotten: string[] = [];
  const injected: { call: KernelCall; netns: string | null | undefined; error: Error | undefined; left: number }[] = [];
  const hooks: ((call: KernelCall, netns: string | null) => void | Promise<void>)[] = [];

  /** The one name of a path, as the file system resolves it. */
  const canonical = (netns: string | null): string => {
    if (netns === null) return 'host';
    let path = posix.normalize(netns);
    for (const [from, to] of symlinks) if (path === from || path.startsWith(`${from}/`)) path = to + path.slice(from.length);
    return path;
  };
  const exists = (netns: string | null): boolean => {
    if (netns === null) return true;
    const path = canonical(netns);
    return anyExists ? !removed.has(path) : existing.has(path);
  };
  const describe = (netns: string | null) => (netns === null ? "the agent's own namespace" : `namespace ${netns}`);
  const space = (netns: string | null): Namespace => {
    if (!exists(netns)) throw new KernelError(`namespace ${netns} does not exist`, 'no-namespace');
    const key = canonical(netns);
    let ns = spaces.get(key);
    if (ns === undefined) {
      ns = { iptables: new Map(), ipvs: new Map(), sysctls: new Map(Object.entries(BASE_SYSCTLS)), addresses: [] };
      spaces.set(key, ns);
    }
    return ns;
  };
  const tablesOf = (ns: Namespace, family: Family): Tables => {
    let tables = ns.iptables.get(family);
    if (tables === undefined) ns.iptables.set(family, (tables = emptyTables()));
    return tables;
  };
  const sysctlValue = (ns: Namespace, name: string): string | undefined =>
    isVs(name) ? (ipvsAvailable ? ns.sysctls.get(name) ?? VS_SYSCTLS[name] : undefined) : ns.sysctls.get(name);

  const enter = async (call: KernelCall, netns: string | null): Promise<Namespace> => {
    calls.push({ call, netns });
    for (const hook of hooks) await hook(call, netns);
    const ns = space(netns);
    const at = injected.findIndex((f) => f.call === call && (f.netns === undefined || canonical(f.netns) === canonical(netns)));
    if (at >= 0) {
      const f = injected[at]!;
      if (--f.left <= 0) injected.splice(at, 1);
      throw f.error ?? defaultError(call, describe(netns));
    }
    return ns;
  };

  const kernel: FakeKernel = {
    calls,
    forgotten,
    async namespaceExists(netns) {
      calls.push({ call: 'namespaceExists', netns });
      return exists(netns);
    },
    async namespaceId(netns): Promise<NamespaceId | undefined> {
      calls.push({ call: 'namespaceId', netns });
      return exists(netns) ? `fake:${canonical(netns)}` : undefined;
    },
    async readIptables(netns, family) {
      const ns = await enter('readIptables', netns);
      return observe(tablesOf(ns, family));
    },
    async restoreIptables(netns, family, text) {
      const ns = await enter('restoreIptables', netns);
      const staged = copyTables(tablesOf(ns, family));
      restore(staged, text, `the IPv${family} rules for ${describe(netns)}`);
      ns.iptables.set(family, staged);
    },
    async readIpvs(netns, fwmarks): Promise<ObservedIpvs> {
      const ns = await enter('readIpvs', netns);
      if (!ipvsAvailable) return { available: false, reason: NO_IPVS };
      const services = [...ns.ipvs].filter(([mark]) => fwmarks === undefined || fwmarks.includes(mark)).map(([mark, s]) => observed(mark, s));
      return { available: true, services };
    },
    async applyIpvs(netns, ops) {
      if (ops.length === 0) return;
      const ns = await enter('applyIpvs', netns);
      if (!ipvsAvailable) throw new KernelError(`cannot program IPVS in ${describe(netns)}: ${NO_IPVS}`, 'no-ipvs');
      ns.ipvs = applyOps(ns.ipvs, ops, describe(netns));
    },
    async readSysctls(netns, names) {
      const ns = await enter('readSysctls', netns);
      return new Map(names.map((name) => [name, sysctlValue(ns, name)]));
    },
    async writeSysctls(netns, values: readonly Sysctl[]) {
      if (values.length === 0) return;
      const ns = await enter('writeSysctls', netns);
      for (const { name, value } of values) {
        if (sysctlValue(ns, name) === undefined) {
          throw isVs(name)
            ? new KernelError(`sysctl ${name} does not exist in ${describe(netns)}: the kernel lacks IPVS (ip_vs is not loaded)`, 'no-ipvs')
            : new KernelError(`sysctl ${name} does not exist in ${describe(netns)}`, 'other');
        }
        if (!/^\d+$/.test(value)) throw new KernelError(`cannot set sysctl ${name}=${value} in ${describe(netns)}: Invalid argument`, 'rejected');
      }
      for (const { name, value } of values) ns.sysctls.set(name, value);
    },
    async forgetDnsFlows(netns) {
      await enter('forgetDnsFlows', netns);
      forgotten.push(netns);
      return 0;
    },
    async readAddresses(netns) {
      const ns = await enter('readAddresses', netns);
      return ns.addresses.map((a) => ({ ...a }));
    },
    async applyAddresses(netns, ops) {
      if (ops.length === 0) return;
      const ns = await enter('applyAddresses', netns);
      const staged = [...ns.addresses];
      for (const op of ops) {
        const at = staged.findIndex((a) => a.index === op.index && a.address === op.address && a.prefixLength === op.prefixLength);
        const link = staged.find((a) => a.index === op.index);
        if (op.kind === 'add' && at >= 0) throw new KernelError(`adding ${op.address}/${op.prefixLength}: Request rejected: EEXIST`, 'rejected');
        if (op.kind === 'add' && link === undefined) throw new KernelError(`adding ${op.address}/${op.prefixLength}: no interface ${op.index}`, 'rejected');
        if (op.kind === 'delete' && at < 0) throw new KernelError(`deleting ${op.address}/${op.prefixLength}: Request rejected: EADDRNOTAVAIL`, 'rejected');
        if (op.kind === 'add') staged.push({ index: op.index, name: link!.name, address: op.address, prefixLength: op.prefixLength });
        else staged.splice(at, 1);
      }
      ns.addresses = staged;
    },
    addInterfaceAddress(netns, address) {
      space(netns).addresses.push({ ...address });
    },
    addresses(netns) {
      return space(netns).addresses.map((a) => ({ ...a }));
    },

    addNamespace(netns) {
      const path = canonical(netns);
      existing.add(path);
      removed.delete(path);
    },
    removeNamespace(netns) {
      const path = canonical(netns);
      existing.delete(path);
      removed.add(path);
      spaces.delete(path);
    },
    setIpvsAvailable(available) {
      ipvsAvailable = available;
    },
    fail(call, how = {}) {
      injected.push({ call, netns: how.netns, error: how.error, left: how.times ?? 1 });
    },
    beforeCall(hook) {
      hooks.push(hook);
    },
    rules(netns, family, table) {
      return tablesOf(space(netns), family).get(table)!;
    },
    vipmeshChains(netns, family = 4) {
      const tables = tablesOf(space(netns), family);
      return TABLES.flatMap((t) => [...tables.get(t)!.keys()].filter((c) => c.startsWith(CHAIN_PREFIX)).map((c) => `${t}/${c}`));
    },
    ipvsServices(netns) {
      return [...space(netns).ipvs].map(([mark, s]) => observed(mark, s));
    },
    setConnections(netns, fwmark, address, port, active, inactive) {
      const server = space(netns).ipvs.get(fwmark)?.servers.get(`${address}:${port}`);
      if (server === undefined) throw new Error(`fake kernel: no real server ${address}:${port} on fwmark ${fwmark} in ${describe(netns)}`);
      space(netns).ipvs.get(fwmark)!.servers.set(`${address}:${port}`, { ...server, activeConnections: active, inactiveConnections: inactive });
    },
    sysctl(netns, name) {
      return sysctlValue(space(netns), name);
    },
    setSysctl(netns, name, value) {
      space(netns).sysctls.set(name, value);
    },
  };
  for (const netns of Array.isArray(options.namespaces) ? options.namespaces : []) kernel.addNamespace(netns);
  return kernel;
}

function defaultError(call: KernelCall, where: string): KernelError {
  switch (call) {
    case 'restoreIptables': return new KernelError(`iptables-restore rejected the rules for ${where}: injected failure`, 'rejected');
    case 'applyIpvs': return new KernelError(`ipvsadm -R failed in ${where}: injected failure`, 'rejected');
    case 'writeSysctls': return new KernelError(`cannot set sysctls in ${where}: injected failure`, 'rejected');
    default: return new KernelError(`${call} failed in ${where}: injected failure`, 'other');
  }
}

/** What iptables-save shows of vipmesh: its chains, and the jumps to them from built-in chains. */
function observe(tables: Tables): ObservedIptables {
  const view = (table: Table): ObservedTable => {
    const all = tables.get(table)!;
    const chains = new Map<string, readonly string[]>();
    const jumps: { from: string; spec: string }[] = [];
    for (const [name, rules] of all) {
      if (name.startsWith(CHAIN_PREFIX)) chains.set(name, [...rules]);
      else if ((BUILTIN_CHAINS as readonly string[]).includes(name)) {
        for (const spec of rules) if (jumpTarget(spec)?.startsWith(CHAIN_PREFIX)) jumps.push({ from: name, spec });
      }
    }
    return { chains, jumps };
  };
  return { mangle: view('mangle'), nat: view('nat'), filter: view('filter') };
}

function isTable(name: string): name is Table {
  return (TABLES as readonly string[]).includes(name);
}

/**
 * Applies `iptables-restore --noflush` text to `tables` in place (the caller
 * passes a copy and keeps it only on success). A declared user chain is created
 * or, existing, flushed; a declared built-in chain keeps its rules.
 */
function restore(tables: Tables, text: string, what: string): void {
  let table: Chains | undefined;
  let name = '';
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const fail = (why: string): never => {
      throw new KernelError(`iptables-restore rejected ${what}: line ${index + 1} failed (${why}): ${line}`, 'rejected');
    };
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      if (table !== undefined) fail('COMMIT expected');
      name = line.slice(1);
      if (!isTable(name)) fail(`unknown table ${name}`);
      table = tables.get(name as Table)!;
      return;
    }
    if (table === undefined) fail('no table');
    const chains = table!;
    if (line === 'COMMIT') {
      table = undefined;
      return;
    }
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      if (BUILTINS[name as Table].includes(chain)) return;
      if (!chain.startsWith(CHAIN_PREFIX) && !/^[A-Za-z0-9_-]+$/.test(chain)) fail(`bad chain name ${chain}`);
      chains.set(chain, []);
      return;
    }
    const [verb, chain, ...rest] = line.split(' ');
    const spec = rest.join(' ');
    const rules = chains.get(chain ?? '');
    if (rules === undefined) fail(`no chain ${chain}`);
    const target = jumpTarget(spec);
    if ((verb === '-A' || verb === '-I') && target?.startsWith(CHAIN_PREFIX) && !chains.has(target)) fail(`no chain ${target} to jump to`);
    switch (verb) {
      case '-A':
        rules!.push(spec);
        return;
      case '-I':
        rules!.unshift(spec);
        return;
      case '-D': {
        const at = rules!.indexOf(spec);
        if (at < 0) fail('no such rule');
        rules!.splice(at, 1);
        return;
      }
      case '-F':
        rules!.length = 0;
        return;
      case '-X':
        if (BUILTINS[name as Table].includes(chain!)) fail('cannot delete a built-in chain');
        if (rules!.length > 0) fail('chain not empty');
        for (const other of chains.values()) if (other.some((r) => jumpTarget(r) === chain)) fail('chain still referenced');
        chains.delete(chain!);
        return;
      default:
        fail(`unknown command ${verb}`);
    }
  });
  if (table !== undefined) throw new KernelError(`iptables-restore rejected ${what}: COMMIT expected at the end`, 'rejected');
}

function observed(fwmark: number, s: FakeService): ObservedService {
  return { fwmark, scheduler: s.scheduler, persistence: s.persistence, realServers: [...s.servers.values()] };
}

/** The services after `ops`, or a rejection naming the first op that cannot be done (nothing changed). */
function applyOps(current: ReadonlyMap<number, FakeService>, ops: readonly IpvsOp[], where: string): Map<number, FakeService> {
  const next = new Map(current);
  const copied = new Set<number>();
  const service = (fwmark: number, op: IpvsOp): FakeService => {
    const found = next.get(fwmark);
    if (found === undefined) throw new KernelError(`ipvsadm -R failed in ${where}: ${op.kind} fwmark ${fwmark}: No such service`, 'rejected');
    if (!copied.has(fwmark)) {
      const copy = { ...found, servers: new Map(found.servers) };
      next.set(fwmark, copy);
      copied.add(fwmark);
      return copy;
    }
    return found;
  };
  const reject = (op: IpvsOp, why: string): never => {
    throw new KernelError(`ipvsadm -R failed in ${where}: ${op.kind} fwmark ${op.fwmark}: ${why}`, 'rejected');
  };
  for (const op of ops) {
    switch (op.kind) {
      case 'add-service':
        if (next.has(op.fwmark)) reject(op, 'Service already exists');
        next.set(op.fwmark, { scheduler: op.scheduler, persistence: op.persistence, servers: new Map() });
        copied.add(op.fwmark);
        break;
      case 'edit-service': {
        const s = service(op.fwmark, op);
        s.scheduler = op.scheduler;
        s.persistence = op.persistence;
        break;
      }
      case 'delete-service':
        service(op.fwmark, op);
        next.delete(op.fwmark);
        copied.delete(op.fwmark);
        break;
      case 'add-real-server': {
        const s = service(op.fwmark, op);
        const key = `${op.address}:${op.port}`;
        if (s.servers.has(key)) reject(op, 'Destination already exists');
        s.servers.set(key, { address: op.address, port: op.port, weight: op.weight, forward: 'Masq', activeConnections: 0, inactiveConnections: 0 });
        break;
      }
      case 'edit-real-server': {
        const s = service(op.fwmark, op);
        const key = `${op.address}:${op.port}`;
        const server = s.servers.get(key);
        if (server === undefined) reject(op, 'No such destination');
        s.servers.set(key, { ...server!, weight: op.weight, forward: 'Masq' });
        break;
      }
      case 'delete-real-server': {
        const s = service(op.fwmark, op);
        if (!s.servers.delete(`${op.address}:${op.port}`)) reject(op, 'No such destination');
        break;
      }
    }
  }
  return next;
}

/**
 * A real kernel for iptables and the other sysctls, with IPVS and its vs.*
 * sysctls from `fake`: for benchmarks on a machine whose kernel has no IPVS.
 */
export function withFakeIpvs(real: Kernel, fake: FakeKernel): Kernel {
  return {
    ...real,
    readIpvs: (netns, fwmarks) => fake.readIpvs(netns, fwmarks),
    applyIpvs: (netns, ops) => fake.applyIpvs(netns, ops),
    async readSysctls(netns, names) {
      const values = await real.readSysctls(netns, names.filter((n) => !isVs(n)));
      const knobs = names.filter(isVs);
      const vs = knobs.length > 0 ? await fake.readSysctls(netns, knobs) : new Map<string, string | undefined>();
      return new Map(names.map((n) => [n, isVs(n) ? vs.get(n) : values.get(n)]));
    },
    async writeSysctls(netns, values) {
      await fake.writeSysctls(netns, values.filter((v) => isVs(v.name)));
      await real.writeSysctls(netns, values.filter((v) => !isVs(v.name)));
    },
  };
}
