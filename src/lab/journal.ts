// The lab's journal: one JSON line per thing `lab up` makes or starts, written
// BEFORE it is made (a process: as soon as it has a pid), so `lab down` finds
// everything even after `kill -9` of `lab up` at any point. Appending lines
// means a crash can cost at most the last, half-written one, which reading skips.
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Journal, Made } from './plumbing.js';

export const JOURNAL_FILE = 'journal.jsonl';

/** What a journal line says. */
export type Entry =
  /** The first line: what this lab is. */
  | { readonly kind: 'lab'; readonly catalog: string; readonly etcd: boolean; readonly at: string }
  | { readonly kind: 'add'; readonly made: Made }
  | { readonly kind: 'forget'; readonly made: Made }
  /**
   * A process the lab started, in a process group of its own. `start` is field 22
   * of /proc/PID/stat (its start time in clock ticks since boot): a pid that
   * names another process by then is never signalled.
   */
  | { readonly kind: 'process'; readonly role: ProcessRole; readonly name: string; readonly pid: number; readonly start: string; readonly log: string; readonly listen?: string }
  /** A directory the lab made (etcd's data, the agents' run directories), removed before the run directory. */
  | { readonly kind: 'dir'; readonly path: string };

export type ProcessRole = 'whoami' | 'agent' | 'etcd';
export type ProcessEntry = Extract<Entry, { kind: 'process' }>;

/** What a journal adds up to. */
export interface JournalState {
  readonly lab: Extract<Entry, { kind: 'lab' }> | undefined;
  /** Made and not forgotten, oldest first. */
  readonly made: readonly Made[];
  readonly processes: readonly ProcessEntry[];
  readonly dirs: readonly string[];
}

const sameMade = (a: Made, b: Made): boolean => a.kind === b.kind && a.name === b.name;

/** The state a journal's text records; lines that do not parse (a crash mid-write) are skipped. */
export function replay(text: string): JournalState {
  let lab: JournalState['lab'];
  const made: Made[] = [];
  const processes: ProcessEntry[] = [];
  const dirs: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let entry: Entry;
    try {
      entry = JSON.parse(line) as Entry;
    } catch {
      continue;
    }
    switch (entry.kind) {
      case 'lab': lab = entry; break;
      case 'add': if (!made.some((m) => sameMade(m, entry.made))) made.push(entry.made); break;
      case 'forget': {
        const at = made.findIndex((m) => sameMade(m, entry.made));
        if (at >= 0) made.splice(at, 1);
        break;
      }
      case 'process': processes.push(entry); break;
      case 'dir': dirs.push(entry.path); break;
    }
  }
  return { lab, made, processes, dirs };
}

/**
 * Appends to DIR/journal.jsonl; also the Plumbing's journal. Once `signal` is
 * aborted it refuses to record anything more, and so nothing more is made.
 */
export class LabJournal implements Journal {
  readonly file: string;

  constructor(readonly dir: string, private readonly signal?: AbortSignal) {
    this.file = join(dir, JOURNAL_FILE);
  }

  async write(entry: Entry): Promise<void> {
    if (entry.kind !== 'forget') this.signal?.throwIfAborted();
    await appendFile(this.file, `${JSON.stringify(entry)}\n`);
  }

  add(made: Made): Promise<void> {
    return this.write({ kind: 'add', made });
  }

  forget(made: Made): Promise<void> {
    return this.write({ kind: 'forget', made });
  }
}

/** The journal of the lab in `dir`, or undefined when there is none. */
export async function readJournal(dir: string): Promise<JournalState | undefined> {
  try {
    return replay(await readFile(join(dir, JOURNAL_FILE), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
