// One file watched the way configuration files change in practice (SPEC §5: the
// catalog). Tools rarely write a file in place: `mv new catalog.yaml`, editors
// that write a temporary file and rename it, and Kubernetes' ConfigMap volumes,
// where catalog.yaml -> ..data/catalog.yaml and ..data -> ..2024_01_01_xx is
// swapped by renaming a new ..data over the old. So the directories are watched,
// not the file, and only the names on the way to the file count: the file's own
// name, every symbolic link followed while resolving it, and the file it ends at.
// After each burst the names are worked out again, since a swap moves the target.
//
// inotify does not see everything: on NFS, CIFS and FUSE file systems it reports
// only what this machine itself did, so a catalog another host writes onto a
// shared mount would never be noticed. A slow poll of the file's identity, size
// and times catches those, at the cost of a stat every few seconds.
import { readlinkSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Clock } from './clock.js';
import { createDebounce } from './watch-debounce.js';
import { type DirWatch, type WatchDir, watchDir } from './watch-dir.js';

export interface FileWatchOptions {
  readonly path: string;
  readonly clock: Clock;
  /** Once per burst of changes, after the file's state has been noted: read it now. */
  readonly onChange: () => void;
  /** A problem the watch survived, for the log. */
  readonly onError: (message: string) => void;
  /** Quiet time that ends a burst (default 100 ms). */
  readonly quietMs?: number;
  /** The longest a burst may hold back the call (default 1 s). */
  readonly maxWaitMs?: number;
  /** The fallback poll's period (default 2 s). */
  readonly pollMs?: number;
  /** Seams for unit tests; the real file system by default. */
  readonly watchDir?: WatchDir;
  readonly readlink?: (path: string) => string | undefined;
  readonly signature?: (path: string) => Promise<string>;
}

export interface FileWatch {
  /** Resolves once the file's first state has been noted: changes from then on are seen. */
  readonly ready: Promise<void>;
  close(): void;
}

// As Linux's MAXSYMLINKS: a loop of links ends here instead of spinning.
const MAX_LINKS = 40;

/**
 * The directories to watch and the names that count in each, for `path` as the
 * links on the way resolve now: the path's own name, each link followed, and
 * the file at the end. `readlink` gives a link's target, undefined for anything
 * that is not a link (or does not exist).
 */
export function watchedNames(path: string, readlink: (path: string) => string | undefined): Map<string, Set<string>> {
  const wanted = new Map<string, Set<string>>();
  const add = (file: string): void => {
    if (file === '/') return;
    const names = wanted.get(dirname(file)) ?? new Set<string>();
    names.add(basename(file));
    wanted.set(dirname(file), names);
  };
  const absolute = resolve(path);
  add(absolute);
  let pending = absolute.split('/').filter((part) => part !== '');
  let at = '/';
  let links = 0;
  while (pending.length > 0) {
    const [part = '', ...rest] = pending;
    pending = rest;
    if (part === '.') continue;
    if (part === '..') {
      at = dirname(at);
      continue;
    }
    const next = join(at, part);
    const target = links < MAX_LINKS ? readlink(next) : undefined;
    if (target === undefined) {
      at = next;
      continue;
    }
    links++;
    add(next);
    pending = [...target.split('/').filter((p) => p !== ''), ...pending];
    if (isAbsolute(target)) at = '/';
  }
  add(at);
  return wanted;
}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined; // not a link, or not there
  }
}

/** What the poll compares: the file the path resolves to, its size and times. */
export async function fileSignature(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (error) {
    return `unreadable:${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

interface Watched {
  names: Set<string>;
  readonly watch: DirWatch;
}

export function watchFile(options: FileWatchOptions): FileWatch {
  const { path, clock, onChange, onError, quietMs = 100, maxWaitMs = 1000, pollMs = 2000 } = options;
  const openDir = options.watchDir ?? watchDir;
  const readlink = options.readlink ?? readlinkOrUndefined;
  const signature = options.signature ?? fileSignature;
  if (!(pollMs > 0)) throw new RangeError(`pollMs must be a positive number of ms, not ${pollMs}`);

  let closed = false;
  let baseline: string | undefined;
  const report = (message: string): void => {
    try {
      onError(message);
    } catch {
      // a logger that throws has nowhere left to say so
    }
  };
  const dirs = new Map<string, Watched>();

  // Noting the file's state and comparing it are asynchronous (a stat on a hung
  // NFS mount must not stall the agent) and run one at a time, so that the poll
  // never compares against a baseline half taken.
  let queue: Promise<void> = Promise.resolve();
  const serial = (step: () => Promise<void>): Promise<void> => {
    queue = queue.then(step).catch((error: unknown) => report(`watching ${path}: ${describe(error)}`));
    return queue;
  };

  const note = async (): Promise<void> => {
    baseline = await signature(path);
  };

  // The state is noted before onChange, not after: whatever the reader then
  // reads is at least that new, so a later change the poll alone sees is not lost.
  const debounce = createDebounce(clock, quietMs, maxWaitMs, () => {
    void serial(async () => {
      if (closed) return;
      rearm();
      await note();
      if (!closed) onChange();
    });
  });

  function rearm(): void {
    const wanted = watchedNames(path, readlink);
    for (const [dir, watched] of dirs) {
      if (wanted.has(dir)) continue;
      watched.watch.close();
      dirs.delete(dir);
    }
    for (const [dir, names] of wanted) {
      const existing = dirs.get(dir);
      if (existing !== undefined) {
        existing.names = names;
        continue;
      }
      const watched: Watched = {
        names,
        watch: openDir(dir, {
          onEntry: (name) => {
            if (watched.names.has(name)) debounce.poke();
          },
          onReset: () => debounce.poke(),
          onError: report,
        }),
      };
      dirs.set(dir, watched);
    }
  }

  let cancelPoll = (): void => {};
  let polling = false;
  function poll(): void {
    cancelPoll = clock.setTimer(poll, pollMs);
    // A burst being waited out notes the state when it ends; a poll still
    // waiting on a hung mount needs no second one queued behind it.
    if (debounce.pending || polling) return;
    polling = true;
    void serial(async () => {
      try {
        if (closed || debounce.pending) return;
        for (const watched of dirs.values()) watched.watch.recheck();
        rearm();
        const now = await signature(path);
        if (!closed && now !== baseline) debounce.poke();
      } finally {
        polling = false;
      }
    });
  }

  rearm();
  const ready = serial(note);
  cancelPoll = clock.setTimer(poll, pollMs);

  return {
    ready,
    close() {
      closed = true;
      debounce.cancel();
      cancelPoll();
      for (const watched of dirs.values()) watched.watch.close();
      dirs.clear();
    },
  };
}
