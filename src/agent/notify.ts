// The agent's side of systemd's notify protocol (sd_notify(3)): READY=1 after the
// first full pass, STATUS= with the last pass, WATCHDOG=1 at half WATCHDOG_USEC
// while the agent is alive, STOPPING=1 on shutdown. Without NOTIFY_SOCKET (not
// started by systemd) every call does nothing. Sending is injected: the kernel
// layer's systemd-notify sender in the agent, a recorder in unit tests.
import type { NotifySend } from '../kernel/notify-send.js';
import type { Clock } from './clock.js';

export interface NotifyEnv {
  readonly NOTIFY_SOCKET?: string | undefined;
  readonly WATCHDOG_USEC?: string | undefined;
  readonly WATCHDOG_PID?: string | undefined;
}

export type WatchdogSetting =
  | { readonly state: 'off' }
  | { readonly state: 'on'; readonly pingEveryMs: number }
  | { readonly state: 'invalid'; readonly problem: string };

export type NotifyMode =
  | { readonly state: 'off' }
  | { readonly state: 'on'; readonly socket: string; readonly watchdog: WatchdogSetting };

export interface NotifierOptions {
  /** process.env, or what a test sets. */
  readonly env: NotifyEnv;
  /** This process's PID: a watchdog meant for another PID is not ours. */
  readonly pid: number;
  /** A sender to the socket NOTIFY_SOCKET names. */
  readonly connect: (socket: string) => NotifySend;
  readonly clock: Clock;
  /**
   * Whether the agent's event loop and its runner are alive (not stuck in a
   * pass). The watchdog pings only while it says so, so that a stuck agent is
   * restarted by systemd rather than kept alive by a timer.
   */
  readonly alive: () => boolean;
  /** A message that could not be sent, for the log. */
  readonly onError: (message: string) => void;
}

export interface Notifier {
  readonly mode: NotifyMode;
  /** READY=1 with a status line; then the watchdog starts pinging. */
  ready(status: string): Promise<void>;
  status(text: string): Promise<void>;
  /** STOPPING=1; the watchdog stops pinging. */
  stopping(status?: string): Promise<void>;
}

/** What WATCHDOG_USEC and WATCHDOG_PID ask of this process, as sd_watchdog_enabled(3) reads them. */
export function watchdogSetting(env: NotifyEnv, pid: number): WatchdogSetting {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || usec === '') return { state: 'off' };
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && env.WATCHDOG_PID !== String(pid)) return { state: 'off' };
  if (!/^[1-9][0-9]*$/.test(usec)) return { state: 'invalid', problem: `WATCHDOG_USEC=${usec} is not a positive number of microseconds` };
  // Half the timeout, as sd_watchdog_enabled(3) advises: one late ping is not fatal.
  return { state: 'on', pingEveryMs: Number(usec) / 2000 };
}

// The protocol is newline-separated assignments: a status line must stay one line.
const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ');

const OFF: Notifier = {
  mode: { state: 'off' },
  ready: async () => {},
  status: async () => {},
  stopping: async () => {},
};

export function createNotifier(options: NotifierOptions): Notifier {
  const socket = options.env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return OFF;
  const { clock, alive, onError } = options;
  const send = options.connect(socket);
  const watchdog = watchdogSetting(options.env, options.pid);

  // Messages leave one at a time, in the order asked: READY before its first STATUS.
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (fields: readonly string[]): Promise<void> => {
    const sent = queue.then(async () => {
      try {
        const result = await send(fields);
        if (!result.ok) onError(`could not notify systemd (${fields.join(' ')}): ${result.error}`);
      } catch (error) {
        onError(`could not notify systemd (${fields.join(' ')}): ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    queue = sent;
    return sent;
  };

  let pinger: { readonly state: 'idle' } | { readonly state: 'pinging'; readonly cancel: () => void } | { readonly state: 'stopped' } =
    { state: 'idle' };
  let pingQueued = false;

  function tick(pingEveryMs: number): void {
    if (pinger.state !== 'pinging') return;
    pinger = { state: 'pinging', cancel: clock.setTimer(() => tick(pingEveryMs), pingEveryMs) };
    // A ping still waiting behind a slow send is as good as a new one.
    if (pingQueued || !alive()) return;
    pingQueued = true;
    void enqueue(['WATCHDOG=1']).then(() => {
      pingQueued = false;
    });
  }

  return {
    mode: { state: 'on', socket, watchdog },
    ready(status) {
      const sent = enqueue(['READY=1', `STATUS=${oneLine(status)}`]);
      if (watchdog.state === 'on' && pinger.state === 'idle') {
        const every = watchdog.pingEveryMs;
        pinger = { state: 'pinging', cancel: clock.setTimer(() => tick(every), every) };
      }
      return sent;
    },
    status(text) {
      return enqueue([`STATUS=${oneLine(text)}`]);
    },
    stopping(status) {
      if (pinger.state === 'pinging') pinger.cancel();
      pinger = { state: 'stopped' };
      return enqueue(status === undefined ? ['STOPPING=1'] : ['STOPPING=1', `STATUS=${oneLine(status)}`]);
    },
  };
}
