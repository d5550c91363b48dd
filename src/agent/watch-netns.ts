// Named network namespaces coming and going under /run/netns (SPEC §5). The
// directory may not exist until the first `ip netns add`: it is waited for.
//
// `ip netns add` creates an empty file and only then bind-mounts the new
// namespace onto it, and `ip netns delete` unmounts before it unlinks; no inotify
// event marks the mount. So a name counts only once it holds a namespace (the
// same nsfs check the reconciler makes), and a file still waiting for its mount
// is looked at again shortly. No fallback poll: /run is a local tmpfs, where
// inotify misses nothing, and the periodic full pass covers the rest.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { namespaceExists } from '../kernel/index.js';
import type { Clock } from './clock.js';
import { type WatchDir, watchDir } from './watch-dir.js';

export interface NetnsChange {
  readonly change: 'appeared' | 'vanished';
  /** The name under the directory, as `ip netns` shows it. */
  readonly name: string;
}

export interface NetnsWatchOptions {
  readonly clock: Clock;
  readonly onChange: (change: NetnsChange) => void;
  /** A problem the watch survived, for the log. */
  readonly onError: (message: string) => void;
  /** Where iproute2 keeps named namespaces (default /run/netns). */
  readonly dir?: string;
  /** Seams for unit tests; the real file system by default. */
  readonly watchDir?: WatchDir;
  /** The directory's entries; undefined when it does not exist. */
  readonly list?: (dir: string) => Promise<readonly string[] | undefined>;
  readonly isNamespace?: (path: string) => Promise<boolean>;
}

export interface NetnsWatch {
  /** Resolves once the names already there have been noted: changes from then on are reported. */
  readonly ready: Promise<void>;
  close(): void;
}

export const NETNS_DIR = '/run/netns';

// How soon a file waiting for its namespace is looked at again: quickly at
// first (ip mounts within milliseconds), backing off for a file left behind.
const FIRST_RECHECK_MS = 50;
const LAST_RECHECK_MS = 5000;

async function listDir(dir: string): Promise<readonly string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function watchNetns(options: NetnsWatchOptions): NetnsWatch {
  const { clock, onChange, onError, dir = NETNS_DIR } = options;
  const list = options.list ?? listDir;
  const isNamespace = options.isNamespace ?? namespaceExists;
  const openDir = options.watchDir ?? watchDir;

  let closed = false;
  const known = new Set<string>();
  let recheckMs = FIRST_RECHECK_MS;
  let cancelRecheck: (() => void) | undefined;

  const report = (message: string): void => {
    try {
      onError(message);
    } catch {
      // a logger that throws has nowhere left to say so
    }
  };

  async function holdsNamespace(name: string): Promise<boolean> {
    try {
      return await isNamespace(join(dir, name));
    } catch (error) {
      report(`cannot tell whether ${join(dir, name)} holds a namespace: ${describe(error)}`);
      return false;
    }
  }

  async function scan(announce: boolean): Promise<void> {
    const names = (await list(dir)) ?? [];
    const present = new Set(names);
    const changes: NetnsChange[] = [];
    for (const name of known) {
      if (present.has(name)) continue;
      known.delete(name);
      changes.push({ change: 'vanished', name });
    }
    let waiting = false;
    for (const name of names) {
      if (known.has(name)) continue;
      if (await holdsNamespace(name)) {
        known.add(name);
        changes.push({ change: 'appeared', name });
      } else {
        waiting = true;
      }
    }
    if (closed) return;
    if (announce) {
      for (const change of changes) {
        try {
          onChange(change);
        } catch (error) {
          report(`handling namespace ${change.name} ${change.change}: ${describe(error)}`);
        }
      }
    }
    cancelRecheck?.();
    cancelRecheck = undefined;
    if (waiting) {
      cancelRecheck = clock.setTimer(() => void rescan(true), recheckMs);
      recheckMs = Math.min(recheckMs * 2, LAST_RECHECK_MS);
    } else {
      recheckMs = FIRST_RECHECK_MS;
    }
  }

  // One scan at a time, and at most one waiting behind it: a burst of events
  // costs two directory reads, and the second sees everything the burst did.
  let queue: Promise<void> = Promise.resolve();
  let queued = false;
  function rescan(announce: boolean): Promise<void> {
    if (closed || queued) return queue;
    queued = true;
    queue = queue
      .then(async () => {
        queued = false;
        if (!closed) await scan(announce);
      })
      .catch((error: unknown) => report(`reading ${dir}: ${describe(error)}`));
    return queue;
  }

  const watch = openDir(dir, {
    onEntry: () => void rescan(true),
    onReset: () => void rescan(true),
    onError: report,
  });
  const ready = rescan(false);

  return {
    ready,
    close() {
      closed = true;
      cancelRecheck?.();
      cancelRecheck = undefined;
      watch.close();
    },
  };
}
