// Links and addresses coming and going in this process's network namespace, as
// the kernel multicasts them on rtnetlink (npm `netlink`). The agent runs in the
// node's namespace, so a task's host-side veth peer (or the bridge it hangs
// off) is what shows up here, not the task's own interface.
//
// The socket lives in a child process (rtnetlink-child.ts), because the netlink
// package aborts whatever process holds it when the socket reports an error: a
// poll error reaches its native handler, which builds its exception with a null
// syscall name, and that throws a C++ exception nothing catches. A netlink
// socket reports an error each time its receive queue overflows (ENOBUFS), and
// the queue overflows when the reader stalls while links churn: a pass planning
// a large catalog keeps the agent's loop busy for seconds, and with the default
// net.core.rmem_max a hundred veths made meanwhile were enough to abort it here.
// A child reads promptly, since it does nothing else; if it dies all the same,
// events were lost: that is reported (a full pass is due) and it is started again.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { isRtnetlinkEvent, type RtnetlinkEvent } from './rtnetlink-decode.js';

export type { RtnetlinkEvent, RtnetlinkOp } from './rtnetlink-decode.js';

export interface RtnetlinkHandlers {
  onEvent(event: RtnetlinkEvent): void;
  /** Events may have been missed (the listener died and is being restarted): anything may have changed. */
  onLost(): void;
  /** A problem the watch survived, for the log. */
  onError(message: string): void;
}

export interface RtnetlinkWatch {
  /** Resolves once the listener listens and knows the links already there (or has failed to start). */
  readonly ready: Promise<void>;
  close(): void;
}

export interface RtnetlinkWatchOptions {
  /** Wait before the first restart of a listener that died (default 1 s); it doubles while it keeps dying. */
  readonly restartMs?: number;
  readonly maxRestartMs?: number;
}

export type WatchRtnetlink = (handlers: RtnetlinkHandlers, options?: RtnetlinkWatchOptions) => RtnetlinkWatch;

const CHILD = fileURLToPath(new URL('./rtnetlink-child.js', import.meta.url));
// A listener that ran this long before dying was not failing at start: restart it soon.
const STABLE_MS = 60_000;
const STDERR_KEPT = 2000;

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

interface Ended {
  readonly exitCode?: number | undefined;
  readonly signal?: string | undefined;
  readonly message?: string | undefined;
}

function describeExit(result: Ended): string {
  if (result.signal !== undefined) return `was killed by ${result.signal}`;
  if (result.exitCode !== undefined) return `exited ${result.exitCode}`;
  return `failed: ${result.message ?? 'unknown'}`;
}

export const watchRtnetlink: WatchRtnetlink = (handlers, options = {}) => {
  const { restartMs = 1000, maxRestartMs = 30_000 } = options;
  let closed = false;
  let delay = restartMs;
  let restart: NodeJS.Timeout | undefined;
  let stop = (): void => {};
  let started = (): void => {};
  const ready = new Promise<void>((resolve) => (started = resolve));

  // Handlers are the caller's code; one that throws must not end the watch.
  const report = (message: string): void => {
    if (closed) return;
    try {
      handlers.onError(message);
    } catch {
      // nowhere left to say it
    }
  };
  const guard = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      report(`rtnetlink ${what}: ${describe(error)}`);
    }
  };

  function onLine(line: string): void {
    if (closed) return;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      report(`rtnetlink listener said something unreadable: ${line.slice(0, 200)}`);
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    if ('ready' in message) started();
    else if ('event' in message && isRtnetlinkEvent(message.event)) {
      const { event } = message;
      guard('event handler', () => handlers.onEvent(event));
    } else if ('error' in message) report(String(message.error));
  }

  function exited(result: Ended, stderr: string, since: number): void {
    stop = () => {};
    started(); // whoever waits for the first start waits no longer
    if (closed) return;
    report(`the rtnetlink listener ${describeExit(result)}${stderr.trim() === '' ? '' : `: ${stderr.trim()}`}; starting it again in ${delay} ms`);
    guard('lost-events handler', () => handlers.onLost());
    if (Date.now() - since > STABLE_MS) delay = restartMs;
    restart = setTimeout(() => {
      restart = undefined;
      if (!closed) start();
    }, delay);
    delay = Math.min(delay * 2, maxRestartMs);
  }

  function start(): void {
    const since = Date.now();
    // Started like the session shells: a long-lived child with its own pipes.
    // It inherits this process's network namespace, which is what it watches.
    const child = execa(process.execPath, [CHILD], { buffer: false, reject: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT);
    });
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => guard('listener output', () => onLine(line)));
    stop = () => {
      lines.close();
      child.kill('SIGTERM');
    };
    void child.then((result) => guard('restart', () => exited(result, stderr, since)));
  }

  start();
  return {
    ready,
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(restart);
      stop();
      started();
    },
  };
};
