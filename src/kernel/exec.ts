// The one way vipmesh runs a program. Every kernel adapter goes through a Runner,
// so commands are recorded (for errors, logs and the benchmarks' spawn counts)
// and the layer above can be unit-tested with a fake runner.
import { execa } from 'execa';

export interface Command {
  readonly file: string;
  readonly args: readonly string[];
  /** Enter this network namespace first (nsenter --net=PATH); null/undefined: stay here. */
  readonly netns?: string | null;
  /** Written to standard input. */
  readonly input?: string;
  readonly timeoutMs?: number;
  /**
   * Descriptors of this process the program gets as its fd 3, 4, …: the same
   * open file descriptions, so what the program does to them (flock(2)) stays.
   */
  readonly fds?: readonly number[];
}

export interface ExecResult {
  /** The command line as run, quoted for people. */
  readonly command: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** Set when the program could not be started or was killed (not found, timeout). */
  readonly failure?: string;
}

export class ExecError extends Error {
  constructor(readonly result: ExecResult, detail?: string) {
    const why = result.failure ?? `exited ${result.exitCode}`;
    const stderr = result.stderr.trim();
    super(`\`${result.command}\` ${why}${stderr ? `: ${stderr}` : ''}${detail ? `\n${detail}` : ''}`);
    this.name = 'ExecError';
  }
}

export interface RunnerStats {
  /** Processes this one started (each fork of the agent). */
  spawns: number;
  /** Programs run, directly or through a session's shell. */
  commands: number;
  bytesWritten: number;
}

export interface Runner {
  /** Runs the command; resolves with its result whatever the exit code. */
  run(command: Command): Promise<ExecResult>;
  readonly stats: RunnerStats;
  /** Ends what the runner keeps running between commands (the pooled shells). */
  close?(): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function argv(command: Command): [string, string[]] {
  if (command.netns) return ['nsenter', [`--net=${command.netns}`, '--', command.file, ...command.args]];
  return [command.file, [...command.args]];
}

export function createRunner(): Runner {
  const stats: RunnerStats = { spawns: 0, commands: 0, bytesWritten: 0 };
  return {
    stats,
    async run(command) {
      const [file, args] = argv(command);
      stats.spawns++;
      stats.commands++;
      if (command.input !== undefined) stats.bytesWritten += Buffer.byteLength(command.input);
      const started = performance.now();
      const stdin = command.input === undefined ? 'ignore' : 'pipe';
      const result = await execa(file, args, {
        reject: false,
        timeout: command.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        // execa's types admit only descriptors 3–9 here; child_process takes any.
        ...(command.fds === undefined ? { stdin } : { stdio: [stdin, 'pipe', 'pipe', ...(command.fds as readonly 3[])] }),
        ...(command.input === undefined ? {} : { input: command.input }),
        stripFinalNewline: false,
      });
      const failure = result.timedOut
        ? `timed out after ${command.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`
        : result.exitCode === undefined
          ? `could not be run (${result.originalMessage ?? result.shortMessage})`
          : undefined;
      return {
        command: [file, ...args].map(quote).join(' '),
        exitCode: result.exitCode ?? -1,
        stdout: typeof result.stdout === 'string' ? result.stdout : '',
        stderr: typeof result.stderr === 'string' ? result.stderr : '',
        durationMs: performance.now() - started,
        ...(failure === undefined ? {} : { failure }),
      };
    },
  };
}

/** Runs and throws ExecError unless the command exited 0. */
export async function check(runner: Runner, command: Command): Promise<ExecResult> {
  const result = await runner.run(command);
  if (result.exitCode !== 0 || result.failure !== undefined) throw new ExecError(result);
  return result;
}

/** A program started with an IPC channel (spawnWithIpc). */
export interface IpcCommand extends Command {
  /** Set in the child's environment, over this process's own. */
  readonly env?: Readonly<Record<string, string>>;
}

/** How a child started with spawnWithIpc ended: `run`'s result, and whether the timeout killed it. */
export interface IpcResult extends ExecResult {
  readonly timedOut: boolean;
}

export interface IpcChild {
  /** The command line as run, quoted for people. */
  readonly command: string;
  /** Each message the child sends, with the handle (socket, server) that came with it, if any. */
  onMessage(listener: (message: unknown, handle: unknown) => void): void;
  /** Settles once the child has exited; never rejects. */
  readonly exited: Promise<IpcResult>;
  /** Ends the child now (SIGKILL); `exited` still settles. */
  kill(): void;
}

/**
 * Starts a program that talks back over an IPC channel (Node's `process.send`,
 * handles included) and may outlive one request, e.g. the resolver's bind helper.
 * It is spawned, timed and recorded as `run` does (netns through nsenter, the
 * timeout, command line, exit code, stderr, duration); `stats`, when given,
 * counts the spawn.
 */
export function spawnWithIpc(command: IpcCommand, stats?: RunnerStats): IpcChild {
  const [file, args] = argv(command);
  const timeoutMs = command.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const line = [file, ...args].map(quote).join(' ');
  if (stats !== undefined) {
    stats.spawns++;
    stats.commands++;
    if (command.input !== undefined) stats.bytesWritten += Buffer.byteLength(command.input);
  }
  const started = performance.now();
  const child = execa(file, args, {
    ipc: true,
    reject: false,
    timeout: timeoutMs,
    ...(command.input === undefined ? { stdin: 'ignore' as const } : { input: command.input }),
    stdout: 'pipe',
    stderr: 'pipe',
    stripFinalNewline: false,
    ...(command.env === undefined ? {} : { env: command.env }),
  });
  const exited = child.then((result): IpcResult => {
    const failure = result.timedOut
      ? `timed out after ${timeoutMs} ms`
      : result.isTerminated
        ? `was killed (${result.signal ?? 'signal'})`
        : result.exitCode === undefined
          ? `could not be run (${result.originalMessage ?? result.shortMessage})`
          : undefined;
    return {
      command: line,
      exitCode: result.exitCode ?? -1,
      stdout: typeof result.stdout === 'string' ? result.stdout : '',
      stderr: typeof result.stderr === 'string' ? result.stderr : '',
      durationMs: performance.now() - started,
      timedOut: result.timedOut,
      ...(failure === undefined ? {} : { failure }),
    };
  });
  return {
    command: line,
    onMessage(listener) {
      child.on('message', listener);
    },
    exited,
    kill() {
      child.kill('SIGKILL');
    },
  };
}
