// Long-lived shells that run many programs for one fork of the agent. Forking
// the agent costs milliseconds of its main thread per spawn, growing with its
// heap (~3.3 ms at a 1 000-service catalog), and a pass runs at least two
// programs per namespace (read, then write). A session is one `sh` (optionally
// entered into a namespace) fed commands on stdin; the small shell forks the
// programs. Each command's output is framed by a marker with a per-session
// random nonce, so any bytes a program prints come back unchanged. The pool
// below is what the one-shot commands and the benchmarks use.
//
// A program's input (an iptables-restore payload, tens of KiB per namespace)
// goes through a file the shell redirects, not through the shell's stdin: sent
// as a quoted word, every payload was written into a pipe a waiting shell reads,
// and on a busy machine each such write handed the CPU to the woken shell in the
// middle of the agent's write (a third of the agent's main thread in a pass at
// K = 200, by CPU profile); the shell then also had to parse the payload and fork
// a printf to feed it on. A file write wakes no one. The files live in a private
// directory (0700) and are removed as each command ends, and the directory when
// the session does; only a killed agent leaves one behind in the temp directory.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { argv, DEFAULT_TIMEOUT_MS, quote, type Command, type ExecResult, type Runner, type RunnerStats } from './exec.js';

export interface Session {
  /** Runs one command inside the session's namespace; commands run one at a time. */
  run(command: Omit<Command, 'netns'>): Promise<ExecResult>;
  /** Ends the shell; commands still queued fail. */
  close(): Promise<void>;
}

interface Pending {
  readonly command: string;
  readonly outMarker: Buffer;
  readonly errMarker: Buffer;
  readonly started: number;
  readonly resolve: (result: ExecResult) => void;
  readonly timer: NodeJS.Timeout | undefined;
  readonly timeoutMs: number;
  /** The file holding the command's input, removed once it has run. */
  readonly inputFile: string | undefined;
}

function removeQuietly(file: string | undefined): void {
  if (file === undefined) return;
  try {
    unlinkSync(file);
  } catch {
    // already gone with its directory
  }
}

/** A single-quoted sh word: every byte but NUL survives. */
function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Finds `marker` in the chunks; returns [before, after] once it has arrived. */
function splitAt(buffer: Buffer, marker: Buffer): [Buffer, Buffer] | undefined {
  const at = buffer.indexOf(marker);
  return at < 0 ? undefined : [buffer.subarray(0, at), buffer.subarray(at + marker.length)];
}

export function openSession(netns: string | null, stats: RunnerStats, defaultTimeoutMs: number): Session {
  const nonce = randomBytes(12).toString('hex');
  const [file, args] = argv({ file: 'sh', args: [], netns });
  stats.spawns++;
  const child = execa(file, args, { buffer: false, reject: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
  let out: Buffer = Buffer.alloc(0);
  let err: Buffer = Buffer.alloc(0);
  let seq = 0;
  let ended: string | undefined;
  const queue: Pending[] = [];
  let tail: Promise<unknown> = Promise.resolve();
  let inputDir: string | undefined;
  const inputFile = (id: string, input: string): string => {
    inputDir ??= mkdtempSync(join(tmpdir(), 'vipmesh-input-'));
    const file = join(inputDir, id);
    writeFileSync(file, input, { mode: 0o600 });
    return file;
  };

  const settle = () => {
    const head = queue[0];
    if (head === undefined) return;
    const o = splitAt(out, head.outMarker);
    if (o === undefined) return;
    const code = /^(\d+)\n/.exec(o[1].toString('latin1'));
    if (code === null) return;
    const e = splitAt(err, head.errMarker);
    if (e === undefined) return;
    queue.shift();
    if (head.timer) clearTimeout(head.timer);
    removeQuietly(head.inputFile);
    out = o[1].subarray(code[0].length);
    err = e[1];
    head.resolve({
      command: head.command, exitCode: Number(code[1]), stdout: o[0].toString('utf8'), stderr: e[0].toString('utf8'),
      durationMs: performance.now() - head.started,
    });
    settle();
  };
  child.stdout.on('data', (chunk: Buffer) => {
    out = out.length === 0 ? chunk : Buffer.concat([out, chunk]);
    settle();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err = err.length === 0 ? chunk : Buffer.concat([err, chunk]);
    settle();
  });
  const failAll = (why: string) => {
    ended ??= why;
    for (const p of queue.splice(0)) {
      if (p.timer) clearTimeout(p.timer);
      removeQuietly(p.inputFile);
      p.resolve({ command: p.command, exitCode: -1, stdout: '', stderr: err.toString('utf8'), durationMs: performance.now() - p.started, failure: why });
    }
  };
  child.stdin.on('error', () => {}); // a dead shell is reported through 'exit'
  void child.then((result) => {
    // The shell is gone (ended, killed by a timeout): no command can use its files now.
    if (inputDir !== undefined) rmSync(inputDir, { recursive: true, force: true });
    failAll(`could not be run (the shell ${result.exitCode === 0 ? 'ended' : `exited ${result.exitCode ?? result.signal ?? ''}`} before the command finished)`);
  });

  const runOne = (command: Omit<Command, 'netns'>): Promise<ExecResult> => {
    const shown = argv({ ...command, netns }).flat().map(quote).join(' ');
    if (ended !== undefined) {
      return Promise.resolve({ command: shown, exitCode: -1, stdout: '', stderr: '', durationMs: 0, failure: `not run: ${ended}` });
    }
    const id = `${nonce}-${seq++}`;
    const timeoutMs = command.timeoutMs ?? defaultTimeoutMs;
    stats.commands++;
    if (command.input !== undefined) stats.bytesWritten += Buffer.byteLength(command.input);
    return new Promise<ExecResult>((resolve) => {
      const file = command.input === undefined ? undefined : inputFile(id, command.input);
      const pending: Pending = {
        command: shown, outMarker: Buffer.from(`\n@@vipmesh-out-${id} `), errMarker: Buffer.from(`\n@@vipmesh-err-${id}\n`),
        started: performance.now(), resolve, timeoutMs, inputFile: file,
        timer: setTimeout(() => {
          // The shell is stuck behind this command: end it; later commands fail too.
          child.kill('SIGKILL');
          failAll(`timed out after ${timeoutMs} ms`);
        }, timeoutMs),
      };
      queue.push(pending);
      const run = [command.file, ...command.args].map(shellWord).join(' ');
      const line = `${run} <${shellWord(file ?? '/dev/null')}`;
      child.stdin.write(`${line}\nprintf '\\n@@vipmesh-out-${id} %d\\n' $?; printf '\\n@@vipmesh-err-${id}\\n' >&2\n`);
    });
  };

  return {
    run(command) {
      // One at a time: the markers of interleaved commands would mix.
      const result = tail.then(() => runOne(command));
      tail = result;
      return result;
    },
    async close() {
      await tail;
      child.stdin.end();
      await child;
    },
  };
}

export interface ShellPoolOptions {
  /** Shells at most; commands beyond wait for one to be free. */
  readonly size: number;
  readonly defaultTimeoutMs: number;
  /** An idle shell ends after this long, so a finished pass leaves no process behind. */
  readonly idleMs?: number;
}

interface PooledShell {
  readonly session: Session;
  dead: boolean;
  idle: NodeJS.Timeout | undefined;
}

/**
 * Runs every command through a few long-lived shells in the agent's own
 * namespace, entering a task's namespace with `nsenter` from there: the agent
 * forks a handful of times per pass however many namespaces there are, and
 * forking a small shell is cheap. A command that times out ends only its shell.
 */
export function createShellPool(stats: RunnerStats, options: ShellPoolOptions) {
  const free: PooledShell[] = [];
  const waiters: (() => void)[] = [];
  let busy = 0;
  const idleMs = options.idleMs ?? 1000;

  const acquire = async (): Promise<PooledShell> => {
    while (busy >= options.size) await new Promise<void>((resolve) => waiters.push(resolve));
    busy++;
    let shell = free.pop();
    while (shell?.dead) shell = free.pop();
    if (shell !== undefined) {
      clearTimeout(shell.idle);
      return shell;
    }
    return { session: openSession(null, stats, options.defaultTimeoutMs), dead: false, idle: undefined };
  };
  const release = (shell: PooledShell) => {
    busy--;
    if (!shell.dead) {
      shell.idle = setTimeout(() => {
        shell.dead = true;
        free.splice(free.indexOf(shell), 1);
        void shell.session.close();
      }, idleMs);
      shell.idle.unref();
      free.push(shell);
    }
    waiters.shift()?.();
  };

  return {
    async run(command: Command): Promise<ExecResult> {
      const shell = await acquire();
      try {
        const [file, args] = argv(command);
        const { netns: _netns, ...rest } = command;
        const result = await shell.session.run({ ...rest, file, args });
        // A timeout or a dead shell: this shell is done, the next command gets a new one.
        if (result.failure !== undefined) shell.dead = true;
        return result;
      } finally {
        release(shell);
      }
    },
    async close(): Promise<void> {
      const all = free.splice(0);
      for (const shell of all) {
        clearTimeout(shell.idle);
        shell.dead = true;
      }
      await Promise.all(all.map((shell) => shell.session.close()));
    },
  };
}

/**
 * A runner for a whole pass over many namespaces: commands go through up to
 * `size` long-lived shells (session.ts), so the agent forks a handful of times
 * per pass instead of once per program. Call close() when done.
 */
export function createPooledRunner(size = 8): Runner {
  const stats: RunnerStats = { spawns: 0, commands: 0, bytesWritten: 0 };
  const pool = createShellPool(stats, { size, defaultTimeoutMs: DEFAULT_TIMEOUT_MS });
  return {
    stats,
    run: (command) => {
      // A shell started earlier cannot be handed this process's descriptors.
      if (command.fds !== undefined) throw new Error('the pooled runner cannot pass file descriptors (Command.fds); use createRunner()');
      return pool.run(command);
    },
    close: () => pool.close(),
  };
}
