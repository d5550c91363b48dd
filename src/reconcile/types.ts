import type { Family } from '../catalog/types.js';
import type { ObservedIptables, ObservedIpvs } from '../kernel/types.js';
import type { NamespacePlan, Sysctl } from '../plan/types.js';

/** What one namespace holds now, as far as vipmesh is concerned. */
export interface ObservedNamespace {
  readonly iptables: ReadonlyMap<Family, ObservedIptables>;
  readonly ipvs: ObservedIpvs;
  readonly sysctls: ReadonlyMap<string, string | undefined>;
}

/** One line of a change summary. `drift` is false for a drain in progress. */
export interface Change {
  readonly text: string;
  readonly drift: boolean;
}

export interface NamespaceChanges {
  /** iptables-restore text per family; absent when that family needs nothing. */
  readonly restore: ReadonlyMap<Family, string>;
  /** ipvsadm -R lines. */
  readonly ipvs: readonly string[];
  readonly sysctls: readonly Sysctl[];
  readonly changes: readonly Change[];
  /** Real servers draining after this pass: key → when draining started (ms). */
  readonly draining: ReadonlyMap<string, number>;
}

export interface DiffOptions {
  /** False while no agent holds resolver ports: VIPMESH-DNS-* chains are left as they are. */
  readonly manageDns: boolean;
  readonly now: number;
  /** Drain start times recorded by earlier passes, by drainKey(). */
  readonly drainStarted: ReadonlyMap<string, number>;
  /** Real-server address → is its task still running (undefined: not in the catalog). */
  readonly taskRunning: (address: string) => boolean | undefined;
}

export type DesiredNamespace = Pick<NamespacePlan, 'chains' | 'ipvs' | 'sysctls'>;

export const NOTHING: DesiredNamespace = { chains: [], ipvs: [], sysctls: [] };
