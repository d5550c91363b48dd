// Reconcile one node: observe every namespace vipmesh manages or should manage,
// plan with the fwmarks already programmed, diff, and (unless only diffing) apply.
// Namespaces are handled in parallel with a bound; one failing never stops the rest.
import type { Catalog, Family } from '../catalog/types.js';
import { KernelError, type Kernel } from '../kernel/types.js';
import { planNode } from '../plan/index.js';
import type { NamespacePlan, NamespaceRole, NodeFacts, NodePlan } from '../plan/types.js';
import type { ManagedNamespace, StoredState } from '../state/store.js';
import { diffNamespace } from './diff.js';
import { diffIpvs } from './diff-ipvs.js';
import { observeNamespace, programmedMarks } from './observe.js';
import { NOTHING, type Change, type DesiredNamespace, type NamespaceChanges, type ObservedNamespace } from './types.js';

export type Mode = 'apply' | 'diff' | 'cleanup';

export interface ReconcileInput {
  readonly catalog: Catalog;
  readonly node: string;
  readonly kernel: Kernel;
  /** Resolver ports, probes and kernel release; marks come from the kernel itself. */
  readonly facts: NodeFacts;
  readonly state: StoredState;
  readonly mode: Mode;
  readonly now: number;
  readonly concurrency?: number;
}

export interface NamespaceResult {
  readonly key: string;
  readonly netns: string | null;
  readonly changes: readonly Change[];
  /** Why this namespace could not be (fully) brought to the plan. */
  readonly errors: readonly string[];
  /** What could not even be compared (diff on a kernel without IPVS). */
  readonly warnings: readonly string[];
  /** True when the namespace was gone and nothing was planned for it. */
  readonly gone: boolean;
}

export interface ReconcileResult {
  readonly namespaces: readonly NamespaceResult[];
  readonly state: StoredState;
  /** False when no agent holds resolver ports and the DNS redirect was left alone. */
  readonly dnsManaged: boolean;
}

interface Target extends ManagedNamespace {
  readonly key: string;
}

export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Every namespace to look at: planned now, managed before, or a local task's that stopped. */
function targets(plan: NodePlan, input: ReconcileInput): Target[] {
  const found = new Map<string, Target>();
  const add = (key: string, netns: string | null, role: NamespaceRole) => {
    if (!found.has(key)) found.set(key, { key, netns, role });
  };
  for (const ns of plan.namespaces) add(ns.key, ns.netns, ns.role);
  for (const [key, ns] of Object.entries(input.state.namespaces)) add(key, ns.netns, ns.role);
  for (const task of Object.values(input.catalog.tasks)) {
    if (task.node === input.node && (task.state !== 'running' || input.mode === 'cleanup')) add(task.netns, task.netns, 'task');
  }
  if (input.mode === 'cleanup') {
    const node = input.catalog.nodes[input.node]!;
    add(node.netns ?? 'host', node.netns ?? null, 'host');
    if (node.ingressSandbox) add(node.ingressSandbox.netns, node.ingressSandbox.netns, 'ingress-sandbox');
  }
  return [...found.values()];
}

function families(target: Target, desired: NamespacePlan | undefined): Family[] {
  return target.role === 'host' || desired?.chains.some((c) => c.family === 6) ? [4, 6] : [4];
}

export async function reconcileNode(input: ReconcileInput): Promise<ReconcileResult> {
  const { kernel } = input;
  const storedMarks = new Map(Object.entries(input.state.marks).map(([k, v]) => [k, new Map(Object.entries(v))]));
  const firstPlan = planNode(input.catalog, input.node, { ...input.facts, marks: storedMarks });
  const byKey = new Map(firstPlan.namespaces.map((ns) => [ns.key, ns]));
  const all = targets(firstPlan, input);
  const limit = input.concurrency ?? 8;

  // Observe first: the marks programmed in each namespace feed the final plan.
  const observed = await mapLimit(all, limit, async (target): Promise<ObservedNamespace | Error> => {
    try {
      if (!(await kernel.namespaceExists(target.netns))) return new KernelError(`namespace ${target.netns} does not exist`, 'no-namespace');
      const desired = byKey.get(target.key);
      return await observeNamespace(kernel, {
        netns: target.netns, role: target.role, families: families(target, desired),
        sysctls: desired?.sysctls.map((s) => s.name) ?? [],
      });
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  });
  const marks = new Map(storedMarks);
  all.forEach((target, i) => {
    const seen = observed[i];
    if (seen && !(seen instanceof Error)) marks.set(target.key, programmedMarks(seen));
  });
  const plan = planNode(input.catalog, input.node, { ...input.facts, marks });
  const planned = new Map(plan.namespaces.map((ns) => [ns.key, ns]));

  const taskRunning = taskIndex(input.catalog);
  const results = await mapLimit(all, limit, async (target): Promise<NamespaceResult & { after?: NamespaceChanges }> => {
    const i = all.indexOf(target);
    const seen = observed[i]!;
    const ns = input.mode === 'cleanup' ? undefined : planned.get(target.key);
    if (seen instanceof Error) {
      const gone = seen instanceof KernelError && seen.kind === 'no-namespace';
      // A namespace that is gone and no longer planned needs nothing: forget it.
      if (gone && ns === undefined) return { key: target.key, netns: target.netns, changes: [], errors: [], warnings: [], gone: true };
      return { key: target.key, netns: target.netns, changes: [], errors: [seen.message], warnings: [], gone };
    }
    const desired: DesiredNamespace = ns ?? NOTHING;
    const manageDns = input.mode === 'cleanup' || (target.netns !== null && input.facts.resolverPorts.has(target.netns));
    const drainStarted = new Map(Object.entries(input.state.draining[target.key] ?? {}));
    const options = { manageDns, now: input.now, drainStarted, taskRunning };
    const changes = diffNamespace(desired, seen, options);
    if (input.mode === 'diff') return { key: target.key, netns: target.netns, changes: changes.changes, errors: [], warnings: ipvsErrors(desired, seen, 'not compared'), gone: false, after: changes };
    const errors = await apply(kernel, target, desired, seen, changes, options);
    return { key: target.key, netns: target.netns, changes: changes.changes, errors, warnings: [], gone: false, after: changes };
  });

  return {
    namespaces: results.map(({ after: _after, ...r }) => r),
    state: nextState(input, plan, all, results, marks),
    dnsManaged: input.mode === 'cleanup' || input.facts.resolverPorts.size > 0,
  };
}

function taskIndex(catalog: Catalog): (address: string) => boolean | undefined {
  const running = new Map<string, boolean>();
  for (const task of Object.values(catalog.tasks)) {
    for (const address of Object.values(task.addresses)) running.set(address, (running.get(address) ?? false) || task.state === 'running');
  }
  return (address) => running.get(address);
}

function ipvsErrors(desired: DesiredNamespace, seen: ObservedNamespace, what = 'not written'): string[] {
  return desired.ipvs.length > 0 && !seen.ipvs.available ? [`IPVS state ${what}: ${seen.ipvs.reason}`] : [];
}

async function apply(
  kernel: Kernel, target: Target, desired: DesiredNamespace, seen: ObservedNamespace,
  changes: NamespaceChanges, options: Parameters<typeof diffNamespace>[2],
): Promise<string[]> {
  const errors: string[] = [];
  for (const [family, text] of changes.restore) {
    try {
      await kernel.restoreIptables(target.netns, family, text);
    } catch (error) {
      errors.push(`iptables${family === 6 ? ' (IPv6)' : ''}: ${message(error)}`);
    }
  }
  const ipvsReady = seen.ipvs.available;
  if (!ipvsReady) {
    errors.push(...ipvsErrors(desired, seen));
  } else if (changes.ipvs.length > 0) {
    try {
      await kernel.applyIpvs(target.netns, changes.ipvs);
      // ipvsadm -R reports only its last line's failure: read back and compare.
      const after = await kernel.readIpvs(target.netns);
      const left = diffIpvs(desired.ipvs, after, options).changes.filter((c) => c.drift);
      if (left.length > 0) errors.push(`IPVS did not take every change; still different: ${left.map((c) => c.text).join('; ')}`);
    } catch (error) {
      errors.push(`IPVS: ${message(error)}`);
    }
  }
  if (changes.sysctls.length > 0) {
    try {
      await kernel.writeSysctls(target.netns, changes.sysctls);
    } catch (error) {
      errors.push(`sysctl: ${message(error)}`);
    }
  }
  return errors;
}

function nextState(
  input: ReconcileInput, plan: NodePlan, all: readonly Target[],
  results: readonly (NamespaceResult & { after?: NamespaceChanges })[], marks: ReadonlyMap<string, ReadonlyMap<string, number>>,
): StoredState {
  if (input.mode === 'diff') return input.state;
  const namespaces: Record<string, ManagedNamespace> = {};
  const draining: Record<string, Record<string, number>> = {};
  const keptMarks: Record<string, Record<string, number>> = {};
  const planned = new Set(plan.namespaces.map((ns) => ns.key));
  all.forEach((target, i) => {
    const result = results[i]!;
    // Keep what is planned, and what could not be cleaned yet, for the next pass.
    const keep = input.mode !== 'cleanup' && planned.has(target.key);
    if (keep || (!result.gone && result.errors.length > 0)) namespaces[target.key] = { netns: target.netns, role: target.role };
    if (result.after && result.after.draining.size > 0) draining[target.key] = Object.fromEntries(result.after.draining);
    if (keep) keptMarks[target.key] = Object.fromEntries(marks.get(target.key) ?? []);
  });
  for (const ns of plan.namespaces) {
    const vips = ns.ipvs.filter((v) => v.label.includes('/'));
    if (vips.length > 0 && input.mode !== 'cleanup') keptMarks[ns.key] = Object.fromEntries(vips.map((v) => [v.label, v.fwmark]));
  }
  return { namespaces, draining, marks: keptMarks };
}
