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

/** A failure the operator should read as one sentence, e.g. "the kernel lacks IPVS (…)". */
export class KernelError extends Error {
  constructor(message: string, readonly kind: 'no-namespace' | 'no-ipvs' | 'rejected' | 'backend' | 'other') {
    super(message);
    this.name = 'KernelError';
  }
}

export interface Kernel {
  /** Does the namespace exist (null = the agent's own, always)? */
  namespaceExists(netns: string | null): Promise<boolean>;
  /** vipmesh's chains and jumps in every table of one family. */
  readIptables(netns: string | null, family: Family): Promise<ObservedIptables>;
  /** One `iptables-restore --noflush -w` transaction; throws KernelError quoting the failing line. */
  restoreIptables(netns: string | null, family: Family, text: string): Promise<void>;
  /** Every IPVS service in the namespace (the caller keeps vipmesh's by fwmark), with counters. */
  /** With fwmarks: only those services (the ones missing are simply absent). */
  readIpvs(netns: string | null, fwmarks?: readonly number[]): Promise<ObservedIpvs>;
  /** Sends `ipvsadm -R` commands (-A/-E/-D/-a/-e/-d lines); the caller reads back to confirm. */
  applyIpvs(netns: string | null, commands: readonly string[]): Promise<void>;
  /** Current values; undefined where the sysctl does not exist (e.g. ip_vs not loaded). */
  readSysctls(netns: string | null, names: readonly string[]): Promise<Map<string, string | undefined>>;
  writeSysctls(netns: string | null, values: readonly Sysctl[]): Promise<void>;
  /**
   * Deletes the namespace's conntrack entries for 127.0.0.11:53, so clients that
   * keep their source port follow a DNS redirect whose port changed.
   */
  forgetDnsFlows(netns: string): Promise<number>;
}
