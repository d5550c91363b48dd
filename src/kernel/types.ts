// What the kernel adapters report and accept. The reconciler sees the kernel only
// through the Kernel interface, so it can be unit-tested with a fake; the real
// implementation (kernel/index.ts) is the only code that spawns processes.
import type { Family } from '../catalog/types.js';
import type { Sysctl, Table } from '../plan/types.js';

/** One table's vipmesh objects as iptables-save prints them. Foreign rules are not kept. */
export interface ObservedTable {
  /** VIPMESH-* chain → its rule specs in order (without `-A <chain> `). */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** Rules in built-in chains whose target is a VIPMESH-* chain, in order. */
  readonly jumps: readonly { readonly from: string; readonly spec: string }[];
}

export type ObservedIptables = Readonly<Record<Table, ObservedTable>>;

export interface ObservedRealServer {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** ipvsadm's forwarding method: Masq, Route, Tunnel, Local. */
  readonly forward: string;
  readonly activeConnections: number;
  readonly inactiveConnections: number;
}

export interface ObservedService {
  readonly fwmark: number;
  readonly scheduler: string;
  /** Persistence timeout in seconds; 0 = not persistent. */
  readonly persistence: number;
  readonly realServers: readonly ObservedRealServer[];
}

export type ObservedIpvs =
  | { readonly available: true; readonly services: readonly ObservedService[] }
  | { readonly available: false; readonly reason: string };

/**
 * One change to a namespace's IPVS state, in the kernel's own nouns (moby/ipvs:
 * NewService, UpdateService, DelService, NewDestination, UpdateDestination,
 * DelDestination), for vipmesh's subset: fwmark services, masquerading real
 * servers. Only the adapter turns these into `ipvsadm -R` text.
 */
export type IpvsOp =
  | { readonly kind: 'add-service' | 'edit-service'; readonly fwmark: number; readonly scheduler: string; readonly persistence: number }
  | { readonly kind: 'delete-service'; readonly fwmark: number }
  | {
    readonly kind: 'add-real-server' | 'edit-real-server';
    readonly fwmark: number;
    readonly address: string;
    readonly port: number;
    readonly weight: number;
  }
  | { readonly kind: 'delete-real-server'; readonly fwmark: number; readonly address: string; readonly port: number };

/** An address on an interface of a namespace, as rtnetlink lists it. */
export interface ObservedAddress {
  /** The interface's index and name. */
  readonly index: number;
  readonly name: string;
  readonly address: string;
  readonly prefixLength: number;
}

/** One change to a namespace's interface addresses. */
export interface AddressOp {
  readonly kind: 'add' | 'delete';
  /** The interface's index. */
  readonly index: number;
  readonly address: string;
  readonly prefixLength: number;
}

export type KernelErrorKind = 'no-namespace' | 'no-ipvs' | 'rejected' | 'timeout' | 'backend' | 'other';

/** A failure the operator should read as one sentence, e.g. "the kernel lacks IPVS (…)". */
export class KernelError extends Error {
  constructor(message: string, readonly kind: KernelErrorKind) {
    super(message);
    this.name = 'KernelError';
  }
}

/** What makes two namespace paths one namespace: the nsfs file's device and inode. */
export type NamespaceId = string;

export interface Kernel {
  /** Does the namespace exist (null = the agent's own, always)? */
  namespaceExists(netns: string | null): Promise<boolean>;
  /**
   * Equal for every spelling of one namespace (`/run/netns//x`, `/var/run/netns/x`,
   * `/proc/PID/ns/net`); undefined when the path does not exist. One stat, no spawn.
   */
  namespaceId(netns: string | null): Promise<NamespaceId | undefined>;
  /** vipmesh's chains and jumps in every table of one family. */
  readIptables(netns: string | null, family: Family): Promise<ObservedIptables>;
  /** One `iptables-restore --noflush -w` transaction; throws KernelError quoting the failing line. */
  restoreIptables(netns: string | null, family: Family, text: string): Promise<void>;
  /**
   * Every IPVS service in the namespace (the caller keeps vipmesh's by fwmark), with
   * counters; with fwmarks, only those services (the ones missing are simply absent).
   */
  readIpvs(netns: string | null, fwmarks?: readonly number[]): Promise<ObservedIpvs>;
  /**
   * Applies the changes in order, as one batch (one `ipvsadm -R`). ipvsadm reports
   * only its last line's failure, so the caller reads back to confirm.
   */
  applyIpvs(netns: string | null, ops: readonly IpvsOp[]): Promise<void>;
  /** Current values; undefined where the sysctl does not exist (e.g. ip_vs not loaded). */
  readSysctls(netns: string | null, names: readonly string[]): Promise<Map<string, string | undefined>>;
  writeSysctls(netns: string | null, values: readonly Sysctl[]): Promise<void>;
  /**
   * Deletes the namespace's conntrack entries for 127.0.0.11:53, so clients that
   * keep their source port follow a DNS redirect whose port changed.
   */
  forgetDnsFlows(netns: string): Promise<number>;
  /** Every interface address in the namespace (rtnetlink). */
  readAddresses(netns: string | null): Promise<readonly ObservedAddress[]>;
  /** Adds and deletes addresses in order; stops at the first refused, with a KernelError saying which. */
  applyAddresses(netns: string | null, ops: readonly AddressOp[]): Promise<void>;
}
