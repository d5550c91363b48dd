// The systemd notify protocol against a real unix datagram socket. Node cannot
// bind one, so a small python3 listener stands in for the service manager: it
// binds NOTIFY_SOCKET (a path, or an abstract name), asks for the sender's
// credentials as systemd does, closes the file descriptor systemd-notify's
// BARRIER=1 carries (which is what lets it exit), and prints each message as
// one JSON line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import test, { type TestContext } from 'node:test';
import { systemClock } from '../../src/agent/clock.js';
import { createNotifier } from '../../src/agent/notify.js';
import { createRunner } from '../../src/kernel/exec.js';
import { createNotifySend } from '../../src/kernel/notify-send.js';
import { requireTool } from '../helpers/tools.js';

const LISTENER = `
import json, os, socket, struct, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + name[1:] if name.startswith('@') else name)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({'listening': True}), flush=True)
while True:
    data, ancillary, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))
    pid, fds = None, []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', payload[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = struct.unpack('%di' % (len(payload) // 4), payload[:len(payload) // 4 * 4])
    print(json.dumps({'message': data.decode(), 'pid': pid}), flush=True)
    for fd in fds:
        os.close(fd)
`;

// Only catches a hang (a listener that never binds, a message that never comes).
const HANG_MS = 20_000;

interface Received {
  readonly message: string;
  readonly pid: number | null;
}

async function toolsOrFail(): Promise<string> {
  await requireTool('systemd-notify'); // Debian package: systemd
  await requireTool('env');
  return requireTool('python3');
}

/** A listener bound on `socket`, stopped when the test ends. */
async function listen(t: TestContext, socket: string) {
  const python = await toolsOrFail();
  const child = spawn(python, ['-c', LISTENER, socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.after(() => {
    child.kill();
  });
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  let listening = false;
  let exited: string | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const parsed = JSON.parse(line) as Received | { listening: true };
    if ('listening' in parsed) listening = true;
    else received.push(parsed);
    for (const wake of waiters.splice(0)) wake();
  });
  child.on('exit', (code, signal) => {
    exited = `the python3 listener exited (${code ?? signal}): ${stderr.trim()}`;
    for (const wake of waiters.splice(0)) wake();
  });
  const until = async (what: string, done: () => boolean): Promise<void> => {
    const deadline = Date.now() + HANG_MS;
    while (!done()) {
      if (exited !== undefined) throw new Error(`waiting for ${what}: ${exited}`);
      if (Date.now() > deadline) throw new Error(`waiting for ${what}: nothing after ${HANG_MS} ms; got ${JSON.stringify(received)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
  };
  await until('the listener to bind', () => listening);
  return {
    received,
    /** Resolves with the first message (from `from` on) that satisfies `match`. */
    async next(match: (message: string) => boolean, from = 0): Promise<Received> {
      let found: Received | undefined;
      await until('a message', () => (found = received.slice(from).find((r) => match(r.message))) !== undefined);
      return found!;
    },
  };
}

function tempSocket(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'notify');
}

test('systemd-notify delivers one message with every field, as this process, and waits for the reader', async (t) => {
  const socket = tempSocket(t);
  const listener = await listen(t, socket);
  const result = await createNotifySend(createRunner(), socket)(['READY=1', 'STATUS=full pass: 2 namespaces']);
  assert.deepEqual(result, { ok: true });
  const ready = await listener.next((m) => m.startsWith('READY=1'));
  assert.equal(ready.message, 'READY=1\nSTATUS=full pass: 2 namespaces');
  // As root, systemd-notify sends with its parent's PID: the unit's main PID.
  assert.equal(ready.pid, process.pid, 'the message is attributed to this process (needs root, as the kernel tests do)');
  // The barrier is what keeps systemd-notify alive until the manager has read the message.
  await listener.next((m) => m === 'BARRIER=1');
});

test('an abstract NOTIFY_SOCKET (@name) works too', async (t) => {
  const socket = `@vipmesh-notify-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const listener = await listen(t, socket);
  assert.deepEqual(await createNotifySend(createRunner(), socket)(['STATUS=abstract']), { ok: true });
  assert.equal((await listener.next((m) => m.startsWith('STATUS='))).message, 'STATUS=abstract');
});

test('with nobody listening the send fails with the command and the reason, and does not throw', async (t) => {
  await toolsOrFail();
  const socket = tempSocket(t);
  const result = await createNotifySend(createRunner(), socket)(['READY=1']);
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : result.error, /systemd-notify -- READY=1` exited 1: .*No such file or directory/);
});

test('the notifier end to end: READY=1, watchdog pings, STATUS=, STOPPING=1', async (t) => {
  const socket = tempSocket(t);
  const listener = await listen(t, socket);
  const runner = createRunner();
  const errors: string[] = [];
  const notifier = createNotifier({
    env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000' },
    pid: process.pid,
    clock: systemClock,
    connect: (path) => createNotifySend(runner, path),
    alive: () => true,
    onError: (message) => errors.push(message),
  });
  t.after(() => notifier.stopping());
  await notifier.ready('first full pass done');
  await listener.next((m) => m === 'WATCHDOG=1');
  await notifier.status('changed pass: 1 namespace');
  await notifier.stopping();
  const stopping = await listener.next((m) => m.startsWith('STOPPING=1'));
  const messages = listener.received.map((r) => r.message).filter((m) => m !== 'BARRIER=1');
  assert.equal(messages[0], 'READY=1\nSTATUS=first full pass done');
  assert.ok(messages.includes('STATUS=changed pass: 1 namespace'));
  assert.equal(messages.at(-1), 'STOPPING=1');
  assert.equal(stopping.pid, process.pid);
  assert.deepEqual(errors, []);
});
