// What a pass leaves in state.json for the next one: the namespaces to keep
// looking at, drain start times, the VIP fwmarks programmed, and the fingerprint
// of each plan applied without error.
import { vipKey, type NamespacePlan, type NodePlan } from '../plan/types.js';
import type { ManagedNamespace, StoredState } from '../state/store.js';
import { fingerprint } from './fingerprint.js';
import type { NamespaceTarget } from './targets.js';
import type { Failure, Mode } from './types.js';

export interface Handled {
  readonly target: NamespaceTarget;
  readonly result: { readonly errors: readonly Failure[]; readonly gone: boolean };
  /** Real servers draining after this pass: drainKey() → since when (ms). */
  readonly draining?: ReadonlyMap<string, number>;
  /** The VIP addresses vipmesh owns there after this pass; undefined: not looked at, as before. */
  readonly addresses?: readonly string[];
}

export interface NextStateInput {
  readonly mode: Mode;
  /** The stored state the pass started from (spellings merged). */
  readonly state: StoredState;
  /** The plan the pass applied. */
  readonly plan: NodePlan;
  readonly handled: readonly Handled[];
  readonly skipped: readonly NamespaceTarget[];
  readonly notHandled: readonly NamespaceTarget[];
  readonly manages: (target: NamespaceTarget) => boolean;
}

/** The VIP marks a plan programs in one namespace; port services are not VIPs. */
function vipMarks(ns: NamespacePlan): Record<string, number> {
  const marks: Record<string, number> = {};
  for (const vs of ns.ipvs) {
    const balances = vs.balances;
    if (balances.kind === 'vip') marks[vipKey(balances)] = vs.fwmark;
  }
  return marks;
}

export function nextState(next: NextStateInput): StoredState {
  const { state } = next;
  const cleanup = next.mode === 'cleanup';
  const namespaces: Record<string, ManagedNamespace> = {};
  const draining: Record<string, Record<string, number>> = {};
  const marks: Record<string, Record<string, number>> = {};
  const applied: Record<string, string> = {};
  const addresses: Record<string, readonly string[]> = {};
  const keepAddresses = (key: string, value: readonly string[] | undefined) => {
    if (value !== undefined && value.length > 0) addresses[key] = [...value];
  };
  const planned = new Map(next.plan.namespaces.map((ns) => [ns.key, ns]));
  const keepMarks = (key: string, value: Readonly<Record<string, number>> | undefined) => {
    if (value !== undefined && Object.keys(value).length > 0) marks[key] = { ...value };
  };
  const managed = (target: NamespaceTarget) => {
    namespaces[target.key] = { netns: target.netns, role: target.role };
  };

  for (const { target, result, draining: drains, addresses: owned } of next.handled) {
    // Addresses vanish with their namespace; otherwise what the pass found, or what was known.
    if (!result.gone) keepAddresses(target.key, owned ?? state.addresses?.[target.key]);
    // Keep what is planned, what could not be cleaned yet, and what still holds an address of ours, for the next pass.
    const ns = cleanup ? undefined : planned.get(target.key);
    if (ns !== undefined || (!result.gone && result.errors.length > 0) || addresses[target.key] !== undefined) managed(target);
    if (drains !== undefined && drains.size > 0) draining[target.key] = Object.fromEntries(drains);
    if (ns === undefined) continue;
    // The plan was made with the marks programmed there, so it holds them all.
    keepMarks(target.key, vipMarks(ns));
    if (result.errors.length === 0 && !result.gone) applied[target.key] = fingerprint(ns, next.manages(target));
  }
  for (const target of next.skipped) {
    managed(target);
    keepAddresses(target.key, state.addresses?.[target.key]);
    keepMarks(target.key, state.marks[target.key]);
    applied[target.key] = state.applied[target.key]!;
  }
  // Not looked at: everything known of them stays as it was.
  for (const target of next.notHandled) {
    managed(target);
    keepAddresses(target.key, state.addresses?.[target.key]);
    const drains = state.draining[target.key];
    if (drains !== undefined) draining[target.key] = { ...drains };
    keepMarks(target.key, state.marks[target.key]);
    const fingerprinted = state.applied[target.key];
    if (fingerprinted !== undefined) applied[target.key] = fingerprinted;
  }
  return Object.keys(addresses).length === 0 ? { namespaces, draining, marks, applied } : { namespaces, draining, marks, applied, addresses };
}
