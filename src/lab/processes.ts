// The lab's long-running processes (whoami servers, agents, etcd): started
// detached, each the leader of its own process group, with output to a log file,
// so they outlive `lab up`; stopped by `lab down` only when the pid still names
// the process that was started (same start time), so a reused pid is never hit.
// Each carries LAB_MARKER=<run dir> in its environment: a process started just
// before `lab up` was killed, too soon to reach the journal, is still found.
import { spawn } from 'node:child_process';
import { open, readFile, readdir } from 'node:fs/promises';
import type { ProcessEntry } from './journal.js';

/** In the environment of every process a lab starts: its run directory. */
export const LAB_MARKER = 'VIPMESH_LAB_RUN_DIR';

/**
 * Field 22 of /proc/PID/stat, the start time in clock ticks since boot; undefined
 * when PID is gone or a zombie (it has exited; only its parent's wait is missing).
 */
export async function startTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

export interface Started {
  readonly pid: number;
  readonly start: string;
  /** Resolves when the process exits, with its exit code (or signal name). */
  readonly exited: Promise<string>;
}

/**
 * Starts FILE ARGS detached, stdout and stderr appended to `log`, marked as
 * `runDir`'s. node:child_process, not execa: a daemon's output must go straight
 * to its log file's descriptor, never through this process (which exits while
 * the daemon runs on), and execa's types take only literal descriptor numbers.
 */
export async function startDetached(file: string, args: readonly string[], options: { log: string; runDir: string; env?: Record<string, string> }): Promise<Started> {
  const out = await open(options.log, 'a');
  try {
    const child = spawn(file, args, {
      detached: true, stdio: ['ignore', out.fd, out.fd],
      env: { ...process.env, ...options.env, [LAB_MARKER]: options.runDir },
    });
    const exited = new Promise<string>((resolve) => {
      child.once('error', (error) => resolve(error.message));
      child.once('exit', (code, signal) => resolve(signal ?? String(code)));
    });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`cannot start ${file}: ${await exited}`);
    const start = await startTime(pid);
    if (start === undefined) throw new Error(`${file} ${args.join(' ')} exited at once (see ${options.log})`);
    return { pid, start, exited };
  } finally {
    await out.close();
  }
}

export const isAlive = async (entry: Pick<ProcessEntry, 'pid' | 'start'>): Promise<boolean> => (await startTime(entry.pid)) === entry.start;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every pid whose environment carries LAB_MARKER=runDir. */
export async function markedProcesses(runDir: string): Promise<{ pid: number; start: string }[]> {
  const needle = Buffer.from(`\0${LAB_MARKER}=${runDir}\0`);
  const found: { pid: number; start: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = await readFile(`/proc/${name}/environ`);
      if (Buffer.concat([Buffer.from([0]), environ]).includes(needle)) {
        const start = await startTime(Number(name));
        if (start !== undefined) found.push({ pid: Number(name), start });
      }
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return found;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/**
 * Stops the processes (SIGTERM, then SIGKILL after `graceMs`) and waits for them
 * to go. Only those whose start time still matches are signalled. Returns how many.
 */
export async function stopProcesses(list: readonly { pid: number; start: string }[], graceMs = 5_000): Promise<number> {
  const mine: { pid: number; start: string }[] = [];
  for (const p of list) if (!mine.some((m) => m.pid === p.pid) && await isAlive(p)) mine.push(p);
  for (const p of mine) signal(p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let left = mine;
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = (await Promise.all(left.map(async (p) => ((await isAlive(p)) ? [p] : [])))).flat();
  }
  for (const p of left) signal(p.pid, 'SIGKILL');
  while (left.length > 0) {
    await sleep(50);
    left = (await Promise.all(left.map(async (p) => ((await isAlive(p)) ? [p] : [])))).flat();
  }
  return mine.length;
}
