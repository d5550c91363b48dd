// The agent's watch on PREFIX/v1/ (SPEC §6), the way flannel and Calico watch:
// list, watch from the listing's revision + 1, and on anything going wrong with
// the watch — an error, compaction, a disconnect — drop the watcher, list again
// and diff. etcd3's own resume is never used: on reconnect it restarts from the
// store's current revision + 1, not from the last event delivered, so a
// disconnect during a replay can skip events (research/agent.md). While etcd
// cannot be listed the last view stays; the listing is retried with backoff.
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import type { ValidationPath } from '../catalog/incremental.js';
import type { ValidationResult } from '../catalog/validate.js';
import { ClusterCatalog, changedKeys } from './incremental.js';
import { catalogOf, rootOf } from './layout.js';
import { type Listing, listPrefix, nextRevision } from './list.js';
import { type ClusterView, type KeyEvent, type Part, EMPTY_VIEW, applyEvents, backoffMs, changedParts, isCompaction, viewOf } from './view.js';

export interface ClusterSnapshot {
  /** The store revision this view is at. */
  readonly revision: string;
  readonly view: ClusterView;
  /** The union of the catalog's keys, validated exactly as a file is. */
  readonly catalog: ValidationResult;
  /** What differs from the snapshot emitted before (everything, for the first). */
  readonly changed: ReadonlySet<Part>;
  /** How the catalog was validated when it changed: by difference from the last, or in full. */
  readonly validation?: ValidationPath;
}

export type SourceState = { readonly state: 'up' } | { readonly state: 'down'; readonly since: number; readonly error: string };

/** Why the watch listed again. */
export type RelistReason = 'compacted' | 'error' | 'disconnected';

export interface Timers {
  now(): number;
  setTimer(fn: () => void, ms: number): () => void;
}

export interface WatchOptions {
  readonly client: Etcd3;
  readonly prefix: string;
  /** A listing already read (the agent's start): watched from its revision + 1 without listing again. */
  readonly initial?: ClusterSnapshot;
  readonly onSnapshot: (snapshot: ClusterSnapshot) => void;
  /** Called on each change between up and down. */
  readonly onSource: (state: SourceState) => void;
  readonly onRelist?: (reason: RelistReason, error: string) => void;
  readonly timers?: Timers;
  /**
   * 'incremental' (default): each change validated by difference (incremental.ts);
   * 'full': the whole union validated on every change, as before issue 15 (benchmarks compare the two).
   */
  readonly validation?: ValidationPath;
  /** Between failed listings (default 250 ms doubling to 5 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

export interface ClusterWatch {
  /** No snapshot or source change is reported after this. */
  stop(): void;
}

const systemTimers: Timers = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** One listing as a snapshot: what the agent reads at start, and what each relist diffs. */
export async function listCluster(client: Etcd3, prefix: string): Promise<ClusterSnapshot> {
  return snapshotOf(prefix, await listPrefix(client, rootOf(prefix)), EMPTY_VIEW, undefined);
}

function snapshotOf(prefix: string, listing: Listing, before: ClusterView, previous: ClusterSnapshot | undefined): ClusterSnapshot {
  const view = viewOf(prefix, [...listing.entries].map(([key, { value }]) => [key, value] as const));
  const changed = previous === undefined ? new Set<Part>(['catalog', 'live', 'health']) : changedParts(before, view);
  const catalog = previous !== undefined && !changed.has('catalog') ? previous.catalog : catalogOf(prefix, view.objects);
  return { revision: listing.revision, view, catalog, changed };
}

type State =
  /** A listing is in flight (attempt: failures in a row before it). */
  | { readonly state: 'listing'; readonly attempt: number }
  | { readonly state: 'waiting'; readonly attempt: number; readonly cancel: () => void }
  | { readonly state: 'watching'; readonly watcher: Watcher }
  | { readonly state: 'stopped' };

export function watchCluster(options: WatchOptions): ClusterWatch {
  const { client, prefix } = options;
  const timers = options.timers ?? systemTimers;
  const limits = options.backoff ?? { initialMs: 250, maxMs: 5_000 };
  let state: State = { state: 'listing', attempt: 0 };
  let last: ClusterSnapshot | undefined = options.initial;
  // The union, validated change by change (incremental.ts); made from the first view the watch has.
  let union: ClusterCatalog | undefined = options.initial === undefined || options.validation === 'full'
    ? undefined
    : new ClusterCatalog(prefix, options.initial.view.objects, options.initial.catalog);
  let source: SourceState = { state: 'up' };
  // Read through a call: the state changes under an await, which narrowing cannot see.
  const current = (): State => state;

  const setSource = (next: SourceState): void => {
    if (next.state === source.state) return;
    source = next;
    options.onSource(next);
  };

  const emit = (snapshot: ClusterSnapshot): void => {
    last = snapshot;
    if (snapshot.changed.size > 0) options.onSnapshot(snapshot);
  };

  /** Drops the watcher; etcd3 may still report on it, which nobody hears. */
  const dropWatcher = (watcher: Watcher): void => {
    watcher.removeAllListeners();
    // An 'error' with no listener would throw.
    watcher.on('error', () => {});
    // Not awaited: a cancel while the stream is down can wait for an 'end' that never comes.
    void watcher.cancel().catch(() => {});
  };

  const list = async (attempt: number): Promise<void> => {
    state = { state: 'listing', attempt };
    let listing: Listing;
    try {
      listing = await listPrefix(client, rootOf(prefix));
    } catch (error) {
      if (current().state !== 'listing') return; // stopped meanwhile
      setSource({ state: 'down', since: timers.now(), error: describe(error) });
      const cancel = timers.setTimer(() => {
        if (current().state === 'waiting') void list(attempt + 1);
      }, backoffMs(attempt, limits));
      state = { state: 'waiting', attempt: attempt + 1, cancel };
      return;
    }
    if (current().state !== 'listing') return;
    setSource({ state: 'up' });
    emit(relisted(listing));
    watchFrom(listing.revision);
  };

  /** A fresh listing as a snapshot: the catalog by difference from the last view, when there was one. */
  const relisted = (listing: Listing): ClusterSnapshot => {
    const before = last?.view ?? EMPTY_VIEW;
    if (options.validation === 'full') return snapshotOf(prefix, listing, before, last);
    const view = viewOf(prefix, [...listing.entries].map(([key, { value }]) => [key, value] as const));
    if (last === undefined || union === undefined) {
      union = new ClusterCatalog(prefix, view.objects);
      return { revision: listing.revision, view, catalog: union.result, changed: new Set<Part>(['catalog', 'live', 'health']), validation: 'full' };
    }
    const changed = changedParts(before, view);
    if (!changed.has('catalog')) return { revision: listing.revision, view, catalog: last.catalog, changed };
    const update = union.update(changedKeys(before.objects, view.objects), view.objects);
    return { revision: listing.revision, view, catalog: update.result, changed, validation: update.path };
  };

  const relist = (watcher: Watcher, reason: RelistReason, error: unknown): void => {
    if (state.state !== 'watching' || state.watcher !== watcher) return;
    dropWatcher(watcher);
    options.onRelist?.(reason, describe(error));
    void list(0);
  };

  const watchFrom = (revision: string): void => {
    const watcher = client.watch().prefix(rootOf(prefix)).startRevision(nextRevision(revision)).watcher();
    state = { state: 'watching', watcher };
    watcher.on('data', (response: IWatchResponse) => {
      if (state.state !== 'watching' || state.watcher !== watcher || last === undefined) return;
      const events: KeyEvent[] = response.events.map((event) => event.type === 'Put'
        ? { type: 'put', key: event.kv.key.toString('utf8'), value: event.kv.value.toString('utf8') }
        : { type: 'delete', key: event.kv.key.toString('utf8') });
      // In place: the watch owns its view's object map (viewOf made it); snapshots handed out are read for live and health only.
      const { view, changed } = applyEvents(prefix, last.view, events, { inPlace: options.validation !== 'full' });
      if (!changed.has('catalog')) {
        emit({ revision: response.header.revision, view, catalog: last.catalog, changed });
        return;
      }
      if (options.validation === 'full') {
        emit({ revision: response.header.revision, view, catalog: catalogOf(prefix, view.objects), changed, validation: 'full' });
        return;
      }
      union ??= new ClusterCatalog(prefix, last.view.objects, last.catalog);
      const update = union.update(events.map((event) => event.key), view.objects);
      emit({ revision: response.header.revision, view, catalog: update.result, changed, validation: update.path });
    });
    watcher.on('disconnected', (error: unknown) => relist(watcher, 'disconnected', error));
    watcher.on('error', (error: unknown) => relist(watcher, isCompaction(describe(error)) ? 'compacted' : 'error', error));
  };

  if (options.initial === undefined) void list(0);
  else watchFrom(options.initial.revision);

  return {
    stop() {
      const was = state;
      state = { state: 'stopped' };
      if (was.state === 'waiting') was.cancel();
      if (was.state === 'watching') dropWatcher(was.watcher);
    },
  };
}
