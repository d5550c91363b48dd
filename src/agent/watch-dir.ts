// A directory watched by its path, not by the inode that happens to be there.
// inotify follows an inode: a directory deleted and made again, or replaced by a
// rename (a deploy tool swapping /etc/vipmesh), leaves a plain fs.watch
// listening to a corpse. So the nearest existing ancestor is watched too, for
// the one name on the way down; when that name changes, the watch is re-armed
// on whatever the path now holds. A directory that does not exist yet (/run/netns
// before the first `ip netns add`) is waited for the same way.
import { type FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface DirWatchHandlers {
  /** Something happened to this entry of the directory (created, written, removed, renamed). */
  onEntry(name: string): void;
  /** The directory appeared, vanished or was replaced, or an event named no entry: look again. */
  onReset(): void;
  /** A problem the watch survived, for the log. */
  onError(message: string): void;
}

export interface DirWatch {
  /** Looks at the path again now; a fallback poll calls it in case an event was missed. */
  recheck(): void;
  close(): void;
}

export type WatchDir = (path: string, handlers: DirWatchHandlers) => DirWatch;

/** What the path and the nearest existing ancestor above it are, as a comparable key. */
interface Layout {
  /** The directory's identity when it exists. */
  readonly target: string | undefined;
  /** The nearest existing ancestor and the name under it on the way to the path. */
  readonly anchor: { readonly path: string; readonly child: string; readonly id: string } | undefined;
}

// Synchronous on purpose: fs.watch() itself looks the path up synchronously,
// and a stat beside it keeps arming free of interleavings.
function identity(path: string): string | undefined {
  try {
    const stats = statSync(path, { throwIfNoEntry: false });
    return stats?.isDirectory() === true ? `${stats.dev}:${stats.ino}` : undefined;
  } catch {
    return undefined; // ENOTDIR, EACCES: not a directory we can watch
  }
}

function layoutOf(path: string): Layout {
  const target = identity(path);
  let child = basename(path);
  let at = dirname(path);
  let id = at === path ? undefined : identity(at);
  while (target === undefined && id === undefined && dirname(at) !== at) {
    child = basename(at);
    at = dirname(at);
    id = identity(at);
  }
  return { target, anchor: at === path || id === undefined ? undefined : { path: at, child, id } };
}

const sameLayout = (a: Layout, b: Layout): boolean =>
  a.target === b.target && a.anchor?.path === b.anchor?.path && a.anchor?.child === b.anchor?.child && a.anchor?.id === b.anchor?.id;

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

// Re-arming loops only while the path keeps changing under it; past this many
// rounds the next event or poll takes over.
const MAX_ARM_ROUNDS = 5;

export const watchDir: WatchDir = (path, handlers) => {
  const dir = resolve(path);
  let closed = false;
  let layout: Layout = { target: undefined, anchor: undefined };
  let watchers: FSWatcher[] = [];

  // Handlers run inside fs.watch callbacks: one that throws must not take the agent down.
  const guard = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      try {
        handlers.onError(`watching ${dir}: ${what} failed: ${describe(error)}`);
      } catch {
        // nothing left to tell
      }
    }
  };

  function open(at: string, onEvent: (name: string | null) => void): FSWatcher | undefined {
    try {
      const watcher = watch(at, { persistent: true }, (_type, name) => {
        if (!closed) onEvent(name);
      });
      watcher.on('error', (error) => {
        if (closed) return;
        guard('onError', () => handlers.onError(`watching ${at}: ${describe(error)}`));
        recheck();
      });
      return watcher;
    } catch (error) {
      // ENOENT: it vanished since the stat, and the re-check after arming notices.
      // ENOSPC (fs.inotify.max_user_watches) and the like are worth a line in the log.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') guard('onError', () => handlers.onError(`cannot watch ${at}: ${describe(error)}`));
      return undefined;
    }
  }

  function disarm(): void {
    for (const watcher of watchers) watcher.close();
    watchers = [];
  }

  function arm(): void {
    for (let round = 0; round < MAX_ARM_ROUNDS; round++) {
      disarm();
      const wanted = layoutOf(dir);
      // The ancestor first, then the directory: anything replaced after the
      // ancestor is watched makes an event; anything before, the comparison below sees.
      const { anchor } = wanted;
      if (anchor !== undefined) {
        const watcher = open(anchor.path, (name) => {
          if (name === null || name === anchor.child) recheck();
        });
        if (watcher !== undefined) watchers.push(watcher);
      }
      if (wanted.target !== undefined) {
        const watcher = open(dir, (name) => {
          // The directory's own deletion or move is reported under its own name.
          if (name === null || name === basename(dir)) recheck();
          if (name === null) guard('onReset', handlers.onReset);
          else guard('onEntry', () => handlers.onEntry(name));
        });
        if (watcher !== undefined) watchers.push(watcher);
      }
      layout = wanted;
      if (sameLayout(layoutOf(dir), wanted)) return;
    }
  }

  function recheck(): void {
    if (closed || sameLayout(layoutOf(dir), layout)) return;
    arm();
    guard('onReset', handlers.onReset);
  }

  arm();
  return {
    recheck,
    close() {
      closed = true;
      disarm();
    },
  };
};
