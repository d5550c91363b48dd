// Reconcile one node: observe every namespace vipmesh manages or should manage,
// plan with the fwmarks already programmed, diff, and (unless only diffing) apply.
// Namespaces are handled in parallel with a bound; one failing never stops the rest.
import type { Catalog, Family } from '../catalog/types.js';
import { KernelError, type IpvsOp, type Kernel } from '../kernel/types.js';
import { planNode } from '../plan/index.js';
import { vipKey, type NamespacePlan, type NodeFacts, type NodePlan } from '../plan/types.js';
import type { StoredState } from '../state/store.js';
import { addressKey } from './diff-addresses.js';
import { diffNamespace } from './diff.js';
import { diffIpvs } from './diff-ipvs.js';
import { failure } from './failure.js';
import { fingerprint } from './fingerprint.js';
import { mapLimit } from './limit.js';
import { nextState, type Handled } from './next-state.js';
import { observeNamespace, programmedMarks } from './observe.js';
import { mergeSpellings, targets, type NamespaceTarget } from './targets.js';
import {
  NOTHING, NO_WRITES, type Change, type DesiredNamespace, type DiffOptions, type Failure, type Mode, type NamespaceChanges,
  type ObservedNamespace, type WriteCounts,
} from './types.js';

export { mapLimit } from './limit.js';
export type { NamespaceTarget } from './targets.js';

export type { Mode } from './types.js';

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
  /**
   * Once aborted, no further namespace is started; those in flight finish. The
   * result names the ones left, and the state keeps what it knew of them.
   */
  readonly signal?: AbortSignal;
}

export interface NamespaceResult extends NamespaceTarget {
  readonly changes: readonly Change[];
  /** Why this namespace could not be (fully) brought to the plan. */
  readonly errors: readonly Failure[];
  /** What could not even be compared (diff on a kernel without IPVS). */
  readonly warnings: readonly string[];
  /** True when the namespace was gone and nothing was planned for it. */
  readonly gone: boolean;
  /** What reached the kernel here. */
  readonly writes: WriteCounts;
}

export interface ReconcileResult {
  readonly namespaces: readonly NamespaceResult[];
  /** Namespaces a 'changed' pass left alone: their plan had not changed. */
  readonly skipped: readonly string[];
  /** Namespaces not started because the pass was aborted. */
  readonly notHandled: readonly NamespaceTarget[];
  readonly state: StoredState;
  /** False when no agent holds resolver ports and the DNS redirect was left alone. */
  readonly dnsManaged: boolean;
}

function families(target: NamespaceTarget, desired: NamespacePlan | undefined): Family[] {
  return target.role === 'host' || desired?.chains.some((c) => c.family === 6) ? [4, 6] : [4];
}

/** Up to this many changed services are read back one by one rather than all. */
const TARGETED_READ_BACK = 16;

/** The fwmarks to read back after applying `ops`, or undefined for the whole namespace. */
export function readBackScope(ops: readonly IpvsOp[]): ReadonlySet<number> | undefined {
  const touched = new Set(ops.map((op) => op.fwmark));
  return touched.size <= TARGETED_READ_BACK ? touched : undefined;
}

/** `owned`: the VIP addresses vipmesh owns in the namespace after the pass (undefined: as before). */
type Outcome = NamespaceResult & { after?: NamespaceChanges; owned?: readonly string[] };
const NOT_STARTED = 'not-started' as const;

function marksOf(state: StoredState): Map<string, ReadonlyMap<string, number>> {
  return new Map(Object.entries(state.marks).map(([k, v]) => [k, new Map(Object.entries(v))]));
}

export async function reconcileNode(input: ReconcileInput): Promise<ReconcileResult> {
  const planWith = (marks: ReadonlyMap<string, ReadonlyMap<string, number>>) =>
    planNode(input.catalog, input.node, { ...input.facts, marks });
  let firstPlan = planWith(marksOf(input.state));
  const merged = await mergeSpellings(
    input.kernel, targets(firstPlan, input.catalog, input.node, input.state, input.mode === 'cleanup'),
    new Set(firstPlan.namespaces.map((ns) => ns.key)), input.state,
  );
  // State kept under another spelling of a namespace now counts for it.
  const state = merged.state;
  const storedMarks = marksOf(state);
  if (state.marks !== input.state.marks) firstPlan = planWith(storedMarks);
  const firstByKey = byKey(firstPlan);
  const unchanged = (target: NamespaceTarget): boolean => {
    const ns = firstByKey.get(target.key);
    return input.scope === 'changed' && input.mode === 'apply' && ns !== undefined &&
      state.draining[target.key] === undefined && state.applied[target.key] === fingerprint(ns, manages(input, target));
  };
  const skipped: NamespaceTarget[] = [];
  const all: NamespaceTarget[] = [];
  for (const target of merged.targets) (unchanged(target) ? skipped : all).push(target);
  const limit = input.concurrency ?? 8;
  const marks = new Map<string, ReadonlyMap<string, number>>(storedMarks);
  const pass: Pass = { input, state, taskRunning: taskIndex(input.catalog), marks, storedMarks };
  const start = (planned: ReadonlyMap<string, NamespacePlan>, mayReplan: boolean) =>
    async (target: NamespaceTarget): Promise<Outcome | 'replan' | typeof NOT_STARTED> =>
      input.signal?.aborted ? NOT_STARTED : handle(pass, target, planned, mayReplan);

  // The plan used the fwmarks the last reconcile kept; where a namespace holds
  // others (state lost, or changed by hand), the ones programmed win (SPEC §2),
  // so those namespaces are planned again and handled in a second round.
  const first = await mapLimit(all, limit, start(firstByKey, true));
  const again = all.filter((_, i) => first[i] === 'replan');
  let plan = firstPlan;
  const results = new Map<NamespaceTarget, Outcome | typeof NOT_STARTED>();
  all.forEach((target, i) => {
    const r = first[i];
    if (r !== undefined && r !== 'replan') results.set(target, r);
  });
  if (again.length > 0 && input.signal?.aborted) {
    for (const target of again) results.set(target, NOT_STARTED);
  } else if (again.length > 0) {
    plan = planWith(marks);
    const second = await mapLimit(again, limit, start(byKey(plan), false));
    again.forEach((target, i) => results.set(target, second[i] as Outcome | typeof NOT_STARTED));
  }
  const handled: Handled[] = [];
  const notHandled: NamespaceTarget[] = [];
  const namespaces: NamespaceResult[] = [];
  for (const target of all) {
    const outcome = results.get(target)!;
    if (outcome === NOT_STARTED) {
      notHandled.push(target);
      continue;
    }
    const { after, owned, ...result } = outcome;
    namespaces.push(result);
    handled.push({ target, result, ...(after ? { draining: after.draining } : {}), ...(owned ? { addresses: owned } : {}) });
  }
  return {
    namespaces,
    skipped: skipped.map((t) => t.key),
    notHandled,
    state: input.mode === 'diff'
      ? input.state
      : nextState({ mode: input.mode, state, plan, handled, skipped, notHandled, manages: (t) => manages(input, t) }),
    dnsManaged: input.mode === 'cleanup' || input.facts.resolverPorts.size > 0,
  };
}

function byKey(plan: NodePlan): ReadonlyMap<string, NamespacePlan> {
  return new Map(plan.namespaces.map((ns) => [ns.key, ns]));
}

interface Pass {
  readonly input: ReconcileInput;
  /** The stored state, with entries of other spellings of a namespace moved to the one used. */
  readonly state: StoredState;
  readonly taskRunning: (address: string) => boolean | undefined;
  /** Per namespace: the fwmarks programmed there (observed), else the stored ones. */
  readonly marks: Map<string, ReadonlyMap<string, number>>;
  readonly storedMarks: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** The DNS redirect is vipmesh's to write only while an agent holds resolver ports there. */
function manages(input: ReconcileInput, target: NamespaceTarget): boolean {
  return input.mode === 'cleanup' || (target.netns !== null && input.facts.resolverPorts.has(target.netns));
}

/** Do the marks programmed for the planned VIPs differ from the stored ones? */
function marksMoved(ns: NamespacePlan, programmed: ReadonlyMap<string, number>, stored: ReadonlyMap<string, number> | undefined): boolean {
  for (const vs of ns.ipvs) {
    const balances = vs.balances;
    if (balances.kind !== 'vip') continue;
    const key = vipKey(balances);
    if (programmed.get(key) !== stored?.get(key)) return true;
  }
  return false;
}

/** Observe, diff and (unless diffing) apply one namespace. */
async function handle(pass: Pass, target: NamespaceTarget, planned: ReadonlyMap<string, NamespacePlan>, mayReplan: boolean): Promise<Outcome | 'replan'> {
  const { input } = pass;
  const { kernel } = input;
  const ns = input.mode === 'cleanup' ? undefined : planned.get(target.key);
  const base = { key: target.key, netns: target.netns, role: target.role, warnings: [], writes: NO_WRITES };
  const failed = (error: unknown): Outcome => {
    const found = failure(error, 'read');
    const gone = found.kind === 'namespace_gone';
    // A namespace that is gone and no longer planned needs nothing: forget it.
    if (gone && ns === undefined) return { ...base, changes: [], errors: [], gone: true };
    return { ...base, changes: [], errors: [found], gone };
  };
  try {
    if (!(await kernel.namespaceExists(target.netns))) return failed(goneError(target));
    const ownedAddresses = pass.state.addresses?.[target.key] ?? [];
    const seen = await observeNamespace(kernel, {
      netns: target.netns, role: target.role, families: families(target, ns),
      sysctls: ns?.sysctls.map((s) => s.name) ?? [],
      addresses: (ns?.addresses?.length ?? 0) > 0 || ownedAddresses.length > 0,
    });
    const programmed = programmedMarks(seen, ns?.ipvs ?? []);
    pass.marks.set(target.key, programmed);
    if (mayReplan && ns !== undefined && marksMoved(ns, programmed, pass.storedMarks.get(target.key))) return 'replan';
    const desired: DesiredNamespace = ns ?? NOTHING;
    const manageDns = manages(input, target);
    const drainStarted = new Map(Object.entries(pass.state.draining[target.key] ?? {}));
    const options: DiffOptions = { manageDns, now: input.now, drainStarted, taskRunning: pass.taskRunning, ownedAddresses };
    const changes = diffNamespace(desired, seen, options);
    const outcome = { ...base, changes: changes.changes, gone: false, after: changes };
    if (input.mode === 'diff') {
      return { ...outcome, errors: [], warnings: ipvsUnavailable(desired, seen, 'not compared').map((f) => f.message) };
    }
    return { ...outcome, ...(await apply(kernel, target, desired, seen, changes, options)) };
  } catch (error) {
    return failed(error);
  }
}

function goneError(target: NamespaceTarget): KernelError {
  return new KernelError(`namespace ${target.netns} does not exist`, 'no-namespace');
}

function taskIndex(catalog: Catalog): (address: string) => boolean | undefined {
  const running = new Map<string, boolean>();
  for (const task of Object.values(catalog.tasks)) {
    for (const address of Object.values(task.addresses)) running.set(address, (running.get(address) ?? false) || task.state === 'running');
  }
  return (address) => running.get(address);
}

function ipvsUnavailable(desired: DesiredNamespace, seen: ObservedNamespace, what = 'not written'): Failure[] {
  return desired.ipvs.length > 0 && !seen.ipvs.available ? [{ kind: 'no_ipvs', message: `IPVS state ${what}: ${seen.ipvs.reason}` }] : [];
}

async function apply(
  kernel: Kernel, target: NamespaceTarget, desired: DesiredNamespace, seen: ObservedNamespace,
  changes: NamespaceChanges, options: DiffOptions,
): Promise<{ errors: Failure[]; writes: WriteCounts; owned?: readonly string[] }> {
  const errors: Failure[] = [];
  const writes = { ...NO_WRITES };
  for (const [family, text] of changes.restore) {
    try {
      await kernel.restoreIptables(target.netns, family, text);
      writes.iptables++;
    } catch (error) {
      errors.push(failure(error, 'iptables', `iptables${family === 6 ? ' (IPv6)' : ''}: `));
    }
  }
  if (errors.length === 0 && options.manageDns && target.netns !== null && dnsPortsMoved(desired, seen)) {
    // A NAT mapping is fixed by a flow's first packet: without this, a client that
    // keeps its source port would go on reaching the resolver's old port.
    try {
      await kernel.forgetDnsFlows(target.netns);
      writes.conntrack++;
    } catch (error) {
      errors.push(failure(error, 'conntrack'));
    }
  }
  if (!seen.ipvs.available) {
    errors.push(...ipvsUnavailable(desired, seen));
  } else if (changes.ipvs.length > 0) {
    try {
      await kernel.applyIpvs(target.netns, changes.ipvs);
      writes.ipvs++;
      // ipvsadm -R reports only its last line's failure: read back and compare,
      // only the services written when they are few.
      const scope = readBackScope(changes.ipvs);
      const after = await kernel.readIpvs(target.netns, scope && [...scope]);
      const wanted = scope ? desired.ipvs.filter((v) => scope.has(v.fwmark)) : desired.ipvs;
      const left = diffIpvs(wanted, after, options).changes.filter((c) => c.drift);
      if (left.length > 0) {
        errors.push({ kind: 'ipvs_rejected', message: `IPVS did not take every change; still different: ${left.map((c) => c.text).join('; ')}` });
      }
    } catch (error) {
      errors.push(failure(error, 'ipvs', 'IPVS: '));
    }
  }
  if (changes.sysctls.length > 0) {
    try {
      await kernel.writeSysctls(target.netns, changes.sysctls);
      writes.sysctl++;
    } catch (error) {
      errors.push(failure(error, 'sysctl', 'sysctl: '));
    }
  }
  // Last: a VIP answers on the load balancer only once it is balanced there.
  // Without IPVS it is added all the same, as the rest of the non-IPVS state is.
  if (seen.addresses === undefined) return { errors, writes };
  const owned = await applyAddresses(kernel, target, changes, options, errors);
  if (desired.addresses?.some((a) => !seen.addresses!.some((o) => o.address === a.anchor)) === true) {
    const anchors = [...new Set(desired.addresses.map((a) => a.anchor))].join(', ');
    errors.push({ kind: 'other', message: `VIP addresses not added: no interface holds the load balancer's address ${anchors}` });
  }
  return { errors, writes, owned };
}

/** The VIP address changes; what vipmesh owns afterwards, however far they got. */
async function applyAddresses(
  kernel: Kernel, target: NamespaceTarget, changes: NamespaceChanges, options: DiffOptions, errors: Failure[],
): Promise<readonly string[]> {
  if (changes.addresses.length === 0) return changes.ownedAddresses;
  try {
    await kernel.applyAddresses(target.netns, changes.addresses);
    return changes.ownedAddresses;
  } catch (error) {
    errors.push(failure(error, 'addresses', 'addresses: '));
  }
  // Stopped part way: what is there now, of what was owned or being added, is owned.
  const claimed = new Set([...(options.ownedAddresses ?? []), ...changes.ownedAddresses]);
  try {
    const now = await kernel.readAddresses(target.netns);
    return [...new Set(now.map(addressKey))].filter((key) => claimed.has(key));
  } catch {
    return [...claimed];
  }
}

/** Was a DNS redirect in place that now points at other resolver ports? */
function dnsPortsMoved(desired: DesiredNamespace, seen: ObservedNamespace): boolean {
  const wanted = desired.chains.find((c) => c.table === 'nat' && c.name === DNS_OUTPUT);
  const had = seen.iptables.get(4)?.nat.chains.get(DNS_OUTPUT);
  return wanted !== undefined && had !== undefined && had.length > 0 && had.join('\n') !== wanted.rules.join('\n');
}

const DNS_OUTPUT = 'VIPMESH-DNS-OUTPUT';
