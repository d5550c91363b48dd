import type { Family } from '../catalog/types.js';
import type { AddressOp, IpvsOp, ObservedAddress, ObservedIptables, ObservedIpvs } from '../kernel/types.js';
import type { NamespacePlan, Sysctl } from '../plan/types.js';

export type Mode = 'apply' | 'diff' | 'cleanup';

/** What one namespace holds now, as far as vipmesh is concerned. */
export interface ObservedNamespace {
  readonly iptables: ReadonlyMap<Family, ObservedIptables>;
  readonly ipvs: ObservedIpvs;
  readonly sysctls: ReadonlyMap<string, string | undefined>;
  /** Interface addresses, read only where VIP addresses are planned or owned. */
  readonly addresses?: readonly ObservedAddress[];
}

/** One line of a change summary. `drift` is false for a drain in progress. */
export interface Change {
  readonly text: string;
  readonly drift: boolean;
}

export interface NamespaceChanges {
  /** iptables-restore text per family; absent when that family needs nothing. */
  readonly restore: ReadonlyMap<Family, string>;
  /** IPVS changes, in the order they are applied (one batch). */
  readonly ipvs: readonly IpvsOp[];
  readonly sysctls: readonly Sysctl[];
  readonly changes: readonly Change[];
  /** Real servers draining after this pass: key → when draining started (ms). */
  readonly draining: ReadonlyMap<string, number>;
  /** VIP addresses to add and delete (a load balancer's). */
  readonly addresses: readonly AddressOp[];
  /** The addresses vipmesh owns here once `addresses` are applied (addressKey()). */
  readonly ownedAddresses: readonly string[];
}

export interface DiffOptions {
  /** False while no agent holds resolver ports: VIPMESH-DNS-* chains are left as they are. */
  readonly manageDns: boolean;
  readonly now: number;
  /** Drain start times recorded by earlier passes, by drainKey(). */
  readonly drainStarted: ReadonlyMap<string, number>;
  /** Real-server address → is its task still running (undefined: not in the catalog). */
  readonly taskRunning: (address: string) => boolean | undefined;
  /** The VIP addresses vipmesh added here, by addressKey() (state.json). */
  readonly ownedAddresses?: readonly string[];
}

export type DesiredNamespace = Pick<NamespacePlan, 'chains' | 'ipvs' | 'sysctls' | 'addresses'>;

export const NOTHING: DesiredNamespace = { chains: [], ipvs: [], sysctls: [] };

/**
 * Why a namespace could not be brought to the plan: a small fixed set, the
 * `reason` label of vipmesh_sync_failures_total.
 */
export const FAILURE_KINDS = ['no_ipvs', 'namespace_gone', 'iptables_rejected', 'ipvs_rejected', 'timeout', 'other'] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export interface Failure {
  readonly kind: FailureKind;
  /** One sentence for the operator, as printed after `vipmesh: <namespace>: `. */
  readonly message: string;
}

/** Writes that reached the kernel (each one all or nothing), per namespace or summed. */
export interface WriteCounts {
  /** iptables-restore transactions (one per family written). */
  readonly iptables: number;
  /** IPVS batches (one `ipvsadm -R` each). */
  readonly ipvs: number;
  /** Sysctl batches. */
  readonly sysctl: number;
  /** Conntrack flushes after the resolver's ports moved. */
  readonly conntrack: number;
}

export const NO_WRITES: WriteCounts = { iptables: 0, ipvs: 0, sysctl: 0, conntrack: 0 };
