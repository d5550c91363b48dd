// What an agent holds of PREFIX/v1/ (SPEC §6): the catalog's object keys, the
// nodes with a live key, and the probe verdicts agents published. Pure: a
// listing or a watch response in, a new view and the parts it changed out, so
// the watch (watch.ts) only moves bytes and decides when to list again.
import { meaningOf } from './layout.js';

/** A probe verdict as an agent publishes it under PREFIX/v1/health/TASK. */
export interface SharedHealth {
  /** The node whose agent probed the task: a verdict about another placement is ignored. */
  readonly node: string;
  /** The probe scheduler's verdict (agent/probes.ts): only `healthy` serves. */
  readonly state: 'starting' | 'healthy' | 'unhealthy' | 'namespace-gone';
  /** ISO time the verdict began. */
  readonly since: string;
  readonly reason?: string;
}

const SHARED_STATES: ReadonlySet<string> = new Set(['starting', 'healthy', 'unhealthy', 'namespace-gone']);

export const healthValue = (health: SharedHealth): string => JSON.stringify(health);

/** A published verdict, or undefined for a value no agent of ours wrote (ignored, never fatal). */
export function parseHealth(value: string): SharedHealth | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { node, state, since, reason } = parsed as Record<string, unknown>;
  if (typeof node !== 'string' || typeof state !== 'string' || !SHARED_STATES.has(state) || typeof since !== 'string') return undefined;
  return { node, state: state as SharedHealth['state'], since, ...(typeof reason === 'string' ? { reason } : {}) };
}

export interface ClusterView {
  /** The catalog's keys (PREFIX/v1/{networks,nodes,services,tasks}/NAME) → their values. */
  readonly objects: ReadonlyMap<string, string>;
  /** Nodes whose agent holds its liveness lease (PREFIX/v1/live/NODE). */
  readonly live: ReadonlySet<string>;
  /** Task → the verdict its node's agent published. */
  readonly health: ReadonlyMap<string, SharedHealth>;
}

export type Part = 'catalog' | 'live' | 'health';

export const EMPTY_VIEW: ClusterView = { objects: new Map(), live: new Set(), health: new Map() };

export type KeyEvent = { readonly type: 'put'; readonly key: string; readonly value: string } | { readonly type: 'delete'; readonly key: string };

export function viewOf(prefix: string, entries: Iterable<readonly [string, string]>): ClusterView {
  return applyEvents(prefix, EMPTY_VIEW, [...entries].map(([key, value]) => ({ type: 'put', key, value }))).view;
}

/**
 * The events of one watch response (one transaction's worth), applied in order.
 * `inPlace`: the view's object map is changed where it is rather than copied —
 * for its one owner (the watch), as copying 110 000 keys per event costs more
 * than validating the change (issue 15); the view handed in must not be read
 * for its objects as they were.
 */
export function applyEvents(
  prefix: string, view: ClusterView, events: readonly KeyEvent[], options: { readonly inPlace?: boolean } = {},
): { view: ClusterView; changed: ReadonlySet<Part> } {
  let objects: Map<string, string> | undefined = options.inPlace === true ? view.objects as Map<string, string> : undefined;
  let live: Set<string> | undefined;
  let health: Map<string, SharedHealth> | undefined;
  const changed = new Set<Part>();
  for (const event of events) {
    const meaning = meaningOf(prefix, event.key);
    switch (meaning.kind) {
      case 'object': {
        const before = (objects ?? view.objects).get(event.key);
        const after = event.type === 'put' ? event.value : undefined;
        if (before === after) break;
        objects ??= new Map(view.objects);
        if (after === undefined) objects.delete(event.key);
        else objects.set(event.key, after);
        changed.add('catalog');
        break;
      }
      case 'live': {
        const had = (live ?? view.live).has(meaning.node);
        if (had === (event.type === 'put')) break;
        live ??= new Set(view.live);
        if (event.type === 'put') live.add(meaning.node);
        else live.delete(meaning.node);
        changed.add('live');
        break;
      }
      case 'health': {
        const before = (health ?? view.health).get(meaning.task);
        const after = event.type === 'put' ? parseHealth(event.value) : undefined;
        if (sameHealth(before, after)) break;
        health ??= new Map(view.health);
        if (after === undefined) health.delete(meaning.task);
        else health.set(meaning.task, after);
        changed.add('health');
        break;
      }
      case 'other':
        break;
    }
  }
  if (objects === view.objects && live === undefined && health === undefined) return { view, changed };
  return { view: { objects: objects ?? view.objects, live: live ?? view.live, health: health ?? view.health }, changed };
}

/** What differs between two views: after a fresh listing, what the agent missed. */
export function changedParts(before: ClusterView, after: ClusterView): ReadonlySet<Part> {
  const changed = new Set<Part>();
  if (!sameMap(before.objects, after.objects, (a, b) => a === b)) changed.add('catalog');
  if (before.live.size !== after.live.size || [...after.live].some((node) => !before.live.has(node))) changed.add('live');
  if (!sameMap(before.health, after.health, sameHealth)) changed.add('health');
  return changed;
}

function sameMap<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>, same: (x: V | undefined, y: V | undefined) => boolean): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (!b.has(key) || !same(value, b.get(key))) return false;
  return true;
}

function sameHealth(a: SharedHealth | undefined, b: SharedHealth | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.node === b.node && a.state === b.state && a.since === b.since && a.reason === b.reason;
}

/** Waits between failed listings: `initialMs` doubling up to `maxMs`. */
export function backoffMs(attempt: number, limits: { readonly initialMs: number; readonly maxMs: number }): number {
  return Math.min(limits.maxMs, limits.initialMs * 2 ** Math.min(attempt, 30));
}

/**
 * A watch error that means the history it asked for is gone: compaction. etcd
 * 3.4 cancels such a watch with its compact_revision set and no reason, which
 * etcd3 reports as "Watcher canceled: " and nothing more.
 */
export const isCompaction = (message: string): boolean => /compacted/i.test(message) || /^Watcher canceled:\s*$/.test(message);
