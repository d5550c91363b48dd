// The notify protocol over a recording sender and a fake clock. The real sender
// (systemd-notify to a real socket) is proven in test/kernel/notify.test.ts.
import assert from 'node:assert/strict';
import test from 'node:test';
import type { NotifySend, NotifySendResult } from '../../../src/kernel/notify-send.js';
import { createNotifier, watchdogSetting, type NotifyEnv } from '../../../src/agent/notify.js';
import { FakeClock } from './fake-clock.js';

const PID = 4242;

function setup(env: NotifyEnv, behave: (fields: readonly string[]) => NotifySendResult | 'hold' = () => ({ ok: true })) {
  const clock = new FakeClock();
  const sent: string[] = [];
  const errors: string[] = [];
  const held: (() => void)[] = [];
  const sockets: string[] = [];
  let live = true;
  const send: NotifySend = (fields) =>
    new Promise((resolve) => {
      const outcome = behave(fields);
      const deliver = (result: NotifySendResult) => {
        if (result.ok) sent.push(fields.join('\n'));
        resolve(result);
      };
      if (outcome === 'hold') held.push(() => deliver({ ok: true }));
      else deliver(outcome);
    });
  const notifier = createNotifier({
    env,
    pid: PID,
    clock,
    connect: (socket) => {
      sockets.push(socket);
      return send;
    },
    alive: () => live,
    onError: (message) => errors.push(message),
  });
  return {
    clock,
    notifier,
    sent,
    errors,
    held,
    sockets,
    setAlive(value: boolean) {
      live = value;
    },
  };
}

test('without NOTIFY_SOCKET nothing is sent and no timer is set, even with a watchdog asked for', async () => {
  const s = setup({ WATCHDOG_USEC: '30000000' });
  assert.deepEqual(s.notifier.mode, { state: 'off' });
  await s.notifier.ready('first pass done');
  await s.notifier.status('x');
  await s.clock.advance(120_000);
  await s.notifier.stopping();
  assert.deepEqual(s.sockets, []);
  assert.deepEqual(s.sent, []);
  assert.equal(s.clock.pending, 0);
});

test('READY=1 with a status, STATUS=, STOPPING=1 go to the socket NOTIFY_SOCKET names, in order', async () => {
  const s = setup({ NOTIFY_SOCKET: '@vipmesh-test' });
  assert.deepEqual(s.notifier.mode, { state: 'on', socket: '@vipmesh-test', watchdog: { state: 'off' } });
  await s.notifier.ready('full pass: 3 namespaces, 0 changed');
  await s.notifier.status('changed pass: 1 namespace changed\nsecond line');
  await s.notifier.stopping('SIGTERM');
  assert.deepEqual(s.sockets, ['@vipmesh-test']);
  assert.deepEqual(s.sent, [
    'READY=1\nSTATUS=full pass: 3 namespaces, 0 changed',
    'STATUS=changed pass: 1 namespace changed second line',
    'STOPPING=1\nSTATUS=SIGTERM',
  ]);
  assert.deepEqual(s.errors, []);
});

test('messages leave one at a time in the order asked, even when a send is slow', async () => {
  const s = setup({ NOTIFY_SOCKET: '/run/systemd/notify' }, (fields) => (fields[0] === 'READY=1' ? 'hold' : { ok: true }));
  const ready = s.notifier.ready('up');
  const status = s.notifier.status('next');
  await s.clock.advance(0);
  assert.deepEqual(s.sent, [], 'STATUS waits behind the READY being sent');
  s.held[0]!();
  await Promise.all([ready, status]);
  assert.deepEqual(s.sent, ['READY=1\nSTATUS=up', 'STATUS=next']);
});

test('the watchdog pings at half WATCHDOG_USEC, from READY on, only while the agent is alive', async () => {
  const s = setup({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(PID) });
  assert.deepEqual(s.notifier.mode, { state: 'on', socket: '/run/systemd/notify', watchdog: { state: 'on', pingEveryMs: 15_000 } });
  await s.clock.advance(60_000);
  assert.deepEqual(s.sent, [], 'no ping before READY: systemd arms the watchdog at start-up completion');
  await s.notifier.ready('up');
  await s.clock.advance(45_000);
  assert.deepEqual(s.sent, ['READY=1\nSTATUS=up', 'WATCHDOG=1', 'WATCHDOG=1', 'WATCHDOG=1']);
  s.setAlive(false);
  await s.clock.advance(45_000);
  assert.equal(s.sent.length, 4, 'a stuck agent is not kept alive');
  s.setAlive(true);
  await s.clock.advance(15_000);
  assert.equal(s.sent.length, 5);
  await s.notifier.stopping();
  await s.clock.advance(60_000);
  assert.deepEqual(s.sent.slice(4), ['WATCHDOG=1', 'STOPPING=1']);
  assert.equal(s.clock.pending, 0, 'STOPPING=1 ends the pings');
});

test('a ping still waiting to be sent is not doubled', async () => {
  const s = setup({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '2000000' }, (fields) =>
    fields[0] === 'WATCHDOG=1' ? 'hold' : { ok: true },
  );
  await s.notifier.ready('up');
  await s.clock.advance(5000);
  assert.equal(s.held.length, 1);
  s.held[0]!();
  await s.clock.advance(1000);
  assert.equal(s.held.length, 2);
});

test('a failed send is reported, never thrown, and later messages still go', async () => {
  const s = setup({ NOTIFY_SOCKET: '/nonexistent/notify' }, (fields) =>
    fields[0] === 'READY=1' ? { ok: false, error: 'Failed to notify init system: No such file or directory' } : { ok: true },
  );
  await s.notifier.ready('up');
  await s.notifier.status('next');
  assert.deepEqual(s.sent, ['STATUS=next']);
  assert.equal(s.errors.length, 1);
  assert.match(s.errors[0]!, /READY=1.*No such file or directory/);
});

test('WATCHDOG_USEC and WATCHDOG_PID are read as sd_watchdog_enabled reads them', () => {
  assert.deepEqual(watchdogSetting({}, PID), { state: 'off' });
  assert.deepEqual(watchdogSetting({ WATCHDOG_USEC: '30000000' }, PID), { state: 'on', pingEveryMs: 15_000 });
  assert.deepEqual(watchdogSetting({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, PID), { state: 'off' }, "another process's watchdog");
  assert.equal(watchdogSetting({ WATCHDOG_USEC: '30s' }, PID).state, 'invalid');
  assert.equal(watchdogSetting({ WATCHDOG_USEC: '0' }, PID).state, 'invalid');
});
