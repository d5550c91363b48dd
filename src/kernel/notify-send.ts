// Sends one sd_notify message to the service manager. Node's dgram cannot open a
// unix datagram socket, and the npm packages that can (sd-notify, unix-dgram)
// compile at install, so Debian's systemd-notify sends it. It works without
// systemd as PID 1 (it only needs something bound on NOTIFY_SOCKET) and, run as
// root, sends with its parent's PID — this process, the unit's main PID. Without
// --no-block it then sends BARRIER=1 with a file descriptor and waits (up to
// 5 s) for the manager to close it, so it is alive until the message has been
// read: the race of systemd #2737, where a sender that exited first is not
// attributed to the unit and its message dropped, cannot happen.
import { type Runner, ExecError } from './exec.js';

export type NotifySendResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** Sends the fields (`READY=1`, `STATUS=…`) as one message; never rejects. */
export type NotifySend = (fields: readonly string[]) => Promise<NotifySendResult>;

// systemd-notify's own barrier waits 5 s; this only stops a sender hung past that.
const TIMEOUT_MS = 10_000;

/** A sender to `socket`: a path, or `@name` for an abstract socket, as NOTIFY_SOCKET says. */
export function createNotifySend(runner: Runner, socket: string): NotifySend {
  return async (fields) => {
    // The socket goes in through env(1) rather than this process's environment,
    // so what is sent where is explicit; `--` keeps a field from reading as an option.
    const result = await runner.run({
      file: 'env',
      args: [`NOTIFY_SOCKET=${socket}`, 'systemd-notify', '--', ...fields],
      timeoutMs: TIMEOUT_MS,
    });
    if (result.exitCode === 0 && result.failure === undefined) return { ok: true };
    return { ok: false, error: new ExecError(result).message };
  };
}
