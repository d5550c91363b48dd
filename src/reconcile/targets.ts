// Which namespaces a pass looks at, each once: planned now, managed before (from
// state.json), or a local task's that stopped. Paths are compared as the kernel
// sees them, so two spellings of one namespace are one target.
import type { Catalog } from '../catalog/types.js';
import type { Kernel, NamespaceId } from '../kernel/types.js';
import type { NamespaceRole, NodePlan } from '../plan/types.js';
import type { ManagedNamespace, StoredState } from '../state/store.js';
import { mapLimit } from './limit.js';

export interface NamespaceTarget extends ManagedNamespace {
  /** `host` for the agent's own namespace, otherwise the path as the plan (or state) spells it. */
  readonly key: string;
}

export function targets(plan: NodePlan, catalog: Catalog, node: string, state: StoredState, cleanup: boolean): NamespaceTarget[] {
  const found = new Map<string, NamespaceTarget>();
  const add = (key: string, netns: string | null, role: NamespaceRole) => {
    if (!found.has(key)) found.set(key, { key, netns, role });
  };
  for (const ns of plan.namespaces) add(ns.key, ns.netns, ns.role);
  for (const [key, ns] of Object.entries(state.namespaces)) add(key, ns.netns, ns.role);
  for (const task of Object.values(catalog.tasks)) {
    if (task.node === node && (task.state !== 'running' || cleanup)) add(task.netns, task.netns, 'task');
  }
  if (cleanup) {
    const self = catalog.nodes[node]!;
    add(self.netns ?? 'host', self.netns ?? null, 'host');
    if (self.ingressSandbox) add(self.ingressSandbox.netns, self.ingressSandbox.netns, 'ingress-sandbox');
    for (const balancer of Object.values(self.loadBalancers ?? {})) add(balancer.netns, balancer.netns, 'load-balancer');
  }
  return [...found.values()];
}

/** Namespace identities looked up at once (stat calls, no spawn). */
const ID_LOOKUPS = 32;

/**
 * Merges targets that are one namespace spelled twice (`/run/netns//x`, a
 * state.json entry written as `/var/run/netns/x`, a path with `..`): the first
 * spelling, the plan's, is kept, and what state.json holds under the others
 * (drain start times, marks, fingerprints) moves to it where it holds nothing yet.
 * Two planned namespaces are never merged: each has its own plan, and a catalog
 * naming one namespace twice is for validation to refuse.
 */
export async function mergeSpellings(
  kernel: Kernel, all: readonly NamespaceTarget[], planned: ReadonlySet<string>, state: StoredState,
): Promise<{ targets: readonly NamespaceTarget[]; state: StoredState }> {
  if (!all.some((t) => t.netns !== null && !planned.has(t.key))) return { targets: all, state };
  const ids = await lookUp(kernel, all);
  const first = new Map<NamespaceId, NamespaceTarget>();
  const moved = new Map<string, string>();
  const kept: NamespaceTarget[] = [];
  all.forEach((target, i) => {
    const id = ids[i];
    const same = id === undefined ? undefined : first.get(id);
    if (same !== undefined && !planned.has(target.key)) {
      moved.set(target.key, same.key);
      return;
    }
    if (id !== undefined && same === undefined) first.set(id, target);
    kept.push(target);
  });
  return moved.size === 0 ? { targets: all, state } : { targets: kept, state: rekey(state, moved) };
}

function lookUp(kernel: Kernel, all: readonly NamespaceTarget[]): Promise<(NamespaceId | undefined)[]> {
  // An unreadable path merges with nothing; handling it will say what is wrong.
  return mapLimit(all, ID_LOOKUPS, async (t) => (t.netns === null ? undefined : kernel.namespaceId(t.netns).catch(() => undefined)));
}

function rekey(state: StoredState, moved: ReadonlyMap<string, string>): StoredState {
  const move = <T>(record: Readonly<Record<string, T>>): Record<string, T> => {
    const out: Record<string, T> = {};
    for (const [key, value] of Object.entries(record)) if (!moved.has(key)) out[key] = value;
    for (const [from, to] of moved) {
      const value = record[from];
      if (value !== undefined && out[to] === undefined) out[to] = value;
    }
    return out;
  };
  const namespaces = Object.fromEntries(Object.entries(state.namespaces).filter(([key]) => !moved.has(key)));
  const rekeyed = { namespaces, draining: move(state.draining), marks: move(state.marks), applied: move(state.applied) };
  return state.addresses === undefined ? rekeyed : { ...rekeyed, addresses: move(state.addresses) };
}
