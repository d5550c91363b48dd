// Reconcile one node: observe every namespace vipmesh manages or should manage,
// plan with the fwmarks already programmed, diff, and (unless only diffing) apply.
// Namespaces are handled in parallel with a bound; one failing never stops the rest.
import type { Catalog, Family } from '../catalog/types.js';
import { KernelError, type Kernel } from '../kernel/types.js';
import { planNode } from '../plan/index.js';
import type { NamespacePlan, NamespaceRole, NodeFacts, NodePlan } from '../plan/types.js';
import type { ManagedNamespace, StoredState } from '../state/store.js';
import { diffNamespace } from './diff.js';
import { fingerprint } from './fingerprint.js';
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
  /**
   * 'all' (default) reads every namespace and repairs drift; 'changed' skips the
   * namespaces whose plan is the one last applied there without error, so a
   * partial pass costs work only where the catalog changed. Drift in a skipped
   * namespace waits for the next full pass.
   */
  readonly scope?: 'all' | 'changed';
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
  /** Namespaces a 'changed' pass left alone: their plan had not changed. */
  readonly skipped: readonly string[];
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

/** Up to this many changed services are read back one by one rather than all. */
const TARGETED_READ_BACK = 16;

/** The fwmarks to read back after writing `commands`, or undefined for the whole namespace. */
export function readBackScope(commands: readonly string[]): ReadonlySet<number> | undefined {
  const touched = new Set(commands.map((line) => Number(/ -f (\d+)/.exec(line)?.[1])));
  return touched.size <= TARGETED_READ_BACK ? touched : undefined;
}

type Outcome = NamespaceResult & { after?: NamespaceChanges };

export async function reconcileNode(input: ReconcileInput): Promise<ReconcileResult> {
  const storedMarks = new Map(Object.entries(input.state.marks).map(([k, v]) => [k, new Map(Object.entries(v))]));
  const firstPlan = planNode(input.catalog, input.node, { ...input.facts, marks: storedMarks });
  const firstByKey = byKey(firstPlan);
  const unchanged = (target: Target): boolean => {
    const ns = firstByKey.get(target.key);
    return input.scope === 'changed' && input.mode === 'apply' && ns !== undefined &&
      input.state.draining[target.key] === undefined && input.state.applied[target.key] === fingerprint(ns, manages(input, target));
  };
  const skipped: Target[] = [];
  const all: Target[] = [];
  for (const target of targets(firstPlan, input)) (unchanged(target) ? skipped : all).push(target);
  const limit = input.concurrency ?? 8;
  const marks = new Map<string, ReadonlyMap<string, number>>(storedMarks);
  const pass = { input, taskRunning: taskIndex(input.catalog), marks, storedMarks };

  // The plan used the fwmarks the last reconcile kept; where a namespace holds
  // others (state lost, or changed by hand), the ones programmed win (SPEC §2),
  // so those namespaces are planned again and handled in a second round.
  const first = await mapLimit(all, limit, (target) => handle(pass, target, firstByKey, true));
  const again = all.filter((_, i) => first[i] === 'replan');
  let plan = firstPlan;
  const results = new Map<Target, Outcome>();
  all.forEach((target, i) => {
    const r = first[i];
    if (r !== undefined && r !== 'replan') results.set(target, r);
  });
  if (again.length > 0) {
    plan = planNode(input.catalog, input.node, { ...input.facts, marks });
    const second = await mapLimit(again, limit, (target) => handle(pass, target, byKey(plan), false));
    again.forEach((target, i) => results.set(target, second[i] as Outcome));
  }
  const ordered = all.map((target) => results.get(target)!);
  return {
    namespaces: ordered.map(({ after: _after, ...r }) => r),
    skipped: skipped.map((t) => t.key),
    state: nextState(input, plan, all, ordered, marks, skipped),
    dnsManaged: input.mode === 'cleanup' || input.facts.resolverPorts.size > 0,
  };
}

function byKey(plan: NodePlan): ReadonlyMap<string, NamespacePlan> {
  return new Map(plan.namespaces.map((ns) => [ns.key, ns]));
}

interface Pass {
  readonly input: ReconcileInput;
  readonly taskRunning: (address: string) => boolean | undefined;
  /** Per namespace: the fwmarks programmed there (observed), else the stored ones. */
  readonly marks: Map<string, ReadonlyMap<string, number>>;
  readonly storedMarks: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** The DNS redirect is vipmesh's to write only while an agent holds resolver ports there. */
function manages(input: ReconcileInput, target: Target): boolean {
  return input.mode === 'cleanup' || (target.netns !== null && input.facts.resolverPorts.has(target.netns));
}

function sameMarks(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number> | undefined): boolean {
  if (a.size !== (b?.size ?? 0)) return false;
  for (const [label, mark] of a) if (b?.get(label) !== mark) return false;
  return true;
}

/** Observe, diff and (unless diffing) apply one namespace. */
async function handle(pass: Pass, target: Target, planned: ReadonlyMap<string, NamespacePlan>, mayReplan: boolean): Promise<Outcome | 'replan'> {
  const { input } = pass;
  const { kernel } = input;
  const ns = input.mode === 'cleanup' ? undefined : planned.get(target.key);
  const failed = (error: unknown): Outcome => {
    const gone = error instanceof KernelError && error.kind === 'no-namespace';
    // A namespace that is gone and no longer planned needs nothing: forget it.
    if (gone && ns === undefined) return { key: target.key, netns: target.netns, changes: [], errors: [], warnings: [], gone: true };
    return { key: target.key, netns: target.netns, changes: [], errors: [message(error)], warnings: [], gone };
  };
  try {
    if (!(await kernel.namespaceExists(target.netns))) return failed(new KernelError(`namespace ${target.netns} does not exist`, 'no-namespace'));
    const seen = await observeNamespace(kernel, {
      netns: target.netns, role: target.role, families: families(target, ns),
      sysctls: ns?.sysctls.map((s) => s.name) ?? [],
    });
    const programmed = programmedMarks(seen);
    pass.marks.set(target.key, programmed);
    if (mayReplan && ns !== undefined && !sameMarks(programmed, pass.storedMarks.get(target.key))) return 'replan';
    const desired: DesiredNamespace = ns ?? NOTHING;
    const manageDns = manages(input, target);
    const drainStarted = new Map(Object.entries(input.state.draining[target.key] ?? {}));
    const options = { manageDns, now: input.now, drainStarted, taskRunning: pass.taskRunning };
    const changes = diffNamespace(desired, seen, options);
    const base = { key: target.key, netns: target.netns, changes: changes.changes, gone: false, after: changes };
    if (input.mode === 'diff') return { ...base, errors: [], warnings: ipvsErrors(desired, seen, 'not compared') };
    return { ...base, errors: await apply(kernel, target, desired, seen, changes, options), warnings: [] };
  } catch (error) {
    return failed(error);
  }
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
  if (errors.length === 0 && options.manageDns && target.netns !== null && dnsPortsMoved(desired, seen)) {
    // A NAT mapping is fixed by a flow's first packet: without this, a client that
    // keeps its source port would go on reaching the resolver's old port.
    try {
      await kernel.forgetDnsFlows(target.netns);
    } catch (error) {
      errors.push(message(error));
    }
  }
  const ipvsReady = seen.ipvs.available;
  if (!ipvsReady) {
    errors.push(...ipvsErrors(desired, seen));
  } else if (changes.ipvs.length > 0) {
    try {
      await kernel.applyIpvs(target.netns, changes.ipvs);
      // ipvsadm -R reports only its last line's failure: read back and compare,
      // only the services written when they are few.
      const scope = readBackScope(changes.ipvs);
      const after = await kernel.readIpvs(target.netns, scope && [...scope]);
      const wanted = scope ? desired.ipvs.filter((v) => scope.has(v.fwmark)) : desired.ipvs;
      const left = diffIpvs(wanted, after, options).changes.filter((c) => c.drift);
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

/** Was a DNS redirect in place that now points at other resolver ports? */
function dnsPortsMoved(desired: DesiredNamespace, seen: ObservedNamespace): boolean {
  const wanted = desired.chains.find((c) => c.table === 'nat' && c.name === DNS_OUTPUT);
  const had = seen.iptables.get(4)?.nat.chains.get(DNS_OUTPUT);
  return wanted !== undefined && had !== undefined && had.length > 0 && had.join('\n') !== wanted.rules.join('\n');
}

const DNS_OUTPUT = 'VIPMESH-DNS-OUTPUT';

function nextState(
  input: ReconcileInput, plan: NodePlan, all: readonly Target[],
  results: readonly Outcome[], marks: ReadonlyMap<string, ReadonlyMap<string, number>>, skipped: readonly Target[],
): StoredState {
  if (input.mode === 'diff') return input.state;
  const namespaces: Record<string, ManagedNamespace> = {};
  const draining: Record<string, Record<string, number>> = {};
  const keptMarks: Record<string, Record<string, number>> = {};
  const applied: Record<string, string> = {};
  const planned = byKey(plan);
  all.forEach((target, i) => {
    const result = results[i]!;
    // Keep what is planned, and what could not be cleaned yet, for the next pass.
    const ns = input.mode === 'cleanup' ? undefined : planned.get(target.key);
    if (ns !== undefined || (!result.gone && result.errors.length > 0)) namespaces[target.key] = { netns: target.netns, role: target.role };
    if (result.after && result.after.draining.size > 0) draining[target.key] = Object.fromEntries(result.after.draining);
    if (ns === undefined) return;
    keptMarks[target.key] = Object.fromEntries(marks.get(target.key) ?? []);
    if (result.errors.length === 0 && !result.gone) applied[target.key] = fingerprint(ns, manages(input, target));
  });
  for (const target of skipped) {
    namespaces[target.key] = { netns: target.netns, role: target.role };
    keptMarks[target.key] = Object.fromEntries(marks.get(target.key) ?? []);
    applied[target.key] = input.state.applied[target.key]!;
  }
  for (const ns of plan.namespaces) {
    const vips = ns.ipvs.filter((v) => v.label.includes('/'));
    if (vips.length > 0 && input.mode !== 'cleanup') keptMarks[ns.key] = Object.fromEntries(vips.map((v) => [v.label, v.fwmark]));
  }
  return { namespaces, draining, marks: keptMarks, applied };
}
