// The bounded-frequency runner under a fake clock: each rule of SPEC §5 "When to
// sync", one test each, by the times and kinds of the passes it starts.
import assert from 'node:assert/strict';
import test from 'node:test';
import { createSyncRunner, type PassKind, type PassOutcome, type RunnerOptions } from '../../../src/agent/runner.js';
import { FakeClock } from './fake-clock.js';

const OK: PassOutcome = { status: 'ok' };
const FAILED: PassOutcome = { status: 'failed', error: 'iptables-restore: line 3 failed' };

type Behaviour = 'ok' | 'fail' | 'hold';

interface Call {
  readonly kind: PassKind;
  readonly at: number;
  readonly signal: AbortSignal;
  /** Ends a held pass. */
  finish(outcome?: PassOutcome): void;
}

/** A pass that records each call; `behave` decides, per call, how it ends. */
function recorder(clock: FakeClock, behave: (index: number) => Behaviour = () => 'ok') {
  const calls: Call[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const pass = (kind: PassKind, signal: AbortSignal): Promise<PassOutcome> =>
    new Promise((resolve) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let open = true;
      const finish = (outcome: PassOutcome = OK) => {
        if (!open) return;
        open = false;
        inFlight--;
        resolve(outcome);
      };
      calls.push({ kind, at: clock.now(), signal, finish });
      const behaviour = behave(calls.length - 1);
      if (behaviour === 'ok') finish(OK);
      if (behaviour === 'fail') finish(FAILED);
    });
  return {
    pass,
    calls,
    get maxInFlight() {
      return maxInFlight;
    },
    /** [time, kind] of every pass so far. */
    get starts(): [number, PassKind][] {
      return calls.map((c) => [c.at, c.kind]);
    },
  };
}

function setup(behave?: (index: number) => Behaviour, options: Partial<RunnerOptions> = {}) {
  const clock = new FakeClock();
  const rec = recorder(clock, behave);
  const runner = createSyncRunner({ pass: rec.pass, clock, minIntervalMs: 1000, maxIntervalMs: 30_000, ...options });
  return { clock, rec, runner };
}

test('the first pass is full and runs at start; then a full pass every sync period with no request', async () => {
  const { clock, rec, runner } = setup();
  assert.deepEqual(runner.status().activity, { state: 'unstarted' });
  runner.start();
  await clock.advance(0);
  assert.deepEqual(rec.starts, [[0, 'full']]);
  await clock.advance(29_999);
  assert.equal(rec.calls.length, 1, 'nothing before the sync period is up');
  await clock.advance(1);
  await clock.advance(60_000);
  assert.deepEqual(rec.starts, [[0, 'full'], [30_000, 'full'], [60_000, 'full'], [90_000, 'full']]);
  assert.deepEqual(runner.status().activity, { state: 'waiting', nextPassAt: 120_000 });
});

test('requests between full passes run changed-only passes, and do not move the next full pass', async () => {
  const { clock, rec, runner } = setup();
  runner.start();
  await clock.advance(5000);
  runner.request('changed');
  await clock.advance(10_000);
  runner.request('changed');
  await clock.advance(15_000);
  assert.deepEqual(rec.starts, [[0, 'full'], [5000, 'changed'], [15_000, 'changed'], [30_000, 'full']]);
});

test('requests coalesce: many during a pass make one more pass, not many', async () => {
  const { clock, rec, runner } = setup((i) => (i === 1 ? 'hold' : 'ok'));
  runner.start();
  await clock.advance(10_000);
  runner.request('changed');
  await clock.advance(0);
  assert.equal(rec.calls.length, 2);
  for (let i = 0; i < 5; i++) {
    runner.request('changed');
    await clock.advance(100);
  }
  assert.equal(rec.calls.length, 2, 'no second pass while one runs');
  rec.calls[1]!.finish();
  await clock.advance(5000);
  assert.deepEqual(rec.starts, [[0, 'full'], [10_000, 'changed'], [10_500, 'changed']]);
  assert.equal(rec.maxInFlight, 1);
});

test('requests that wait for a token coalesce too', async () => {
  const { clock, rec, runner } = setup(undefined, { burst: 1 });
  runner.start();
  await clock.advance(0);
  runner.request('changed');
  await clock.advance(100);
  runner.request('changed');
  runner.request('changed');
  await clock.advance(5000);
  assert.deepEqual(rec.starts, [[0, 'full'], [1000, 'changed']]);
});

test('a burst of 2 passes runs back to back, then passes are min-sync-period apart', async () => {
  const { clock, rec, runner } = setup();
  runner.start();
  await clock.advance(10_000); // the bucket is full again: 2 tokens
  for (let i = 0; i < 4; i++) {
    runner.request('changed');
    await clock.advance(0);
    while (runner.status().activity.state !== 'waiting' || runner.status().pendingSince !== undefined) {
      await clock.advance(100);
    }
  }
  assert.deepEqual(rec.starts.slice(1), [[10_000, 'changed'], [10_000, 'changed'], [11_000, 'changed'], [12_000, 'changed']]);
});

test('a periodic full pass waits for a token too', async () => {
  const { clock, rec, runner } = setup(undefined, { minIntervalMs: 10_000, maxIntervalMs: 15_000 });
  runner.start(); // token 1 of 2 at 0
  await clock.advance(0);
  runner.request('changed'); // token 2 at 0
  await clock.advance(0);
  runner.request('changed'); // the bucket is empty: next token at 10 000
  await clock.advance(40_000);
  assert.deepEqual(rec.starts, [[0, 'full'], [0, 'changed'], [10_000, 'changed'], [20_000, 'full'], [35_000, 'full']]);
});

test('a full request upgrades a queued changed one, and a changed one never downgrades a full one', async () => {
  const { clock, rec, runner } = setup((i) => (i === 1 || i === 3 ? 'hold' : 'ok'));
  runner.start();
  await clock.advance(10_000);
  runner.request('changed');
  await clock.advance(0);
  runner.request('changed');
  runner.request('full');
  rec.calls[1]!.finish();
  await clock.advance(2000);
  runner.request('changed');
  await clock.advance(0);
  runner.request('full');
  runner.request('changed');
  rec.calls[3]!.finish();
  await clock.advance(2000);
  assert.deepEqual(rec.starts, [[0, 'full'], [10_000, 'changed'], [10_000, 'full'], [12_000, 'changed'], [12_000, 'full']]);
});

test('a failed pass is retried after 1 s, 2 s, 4 s … up to the sync period, each retry full', async () => {
  const { clock, rec, runner } = setup(() => 'fail', { maxIntervalMs: 10_000 });
  runner.start();
  await clock.advance(50_000);
  assert.deepEqual(
    rec.starts.map(([at]) => at),
    [0, 1000, 3000, 7000, 15_000, 25_000, 35_000, 45_000],
  );
  assert.ok(rec.starts.every(([, kind]) => kind === 'full'));
  assert.deepEqual(runner.status().failing, { count: 8, retryAt: 55_000 });
});

test('after a failed pass the next pass is full, whatever asks for it; after a success changed again', async () => {
  const { clock, rec, runner } = setup((i) => (i === 1 ? 'fail' : 'ok'));
  runner.start();
  await clock.advance(10_000);
  runner.request('changed'); // fails
  await clock.advance(500);
  runner.request('changed'); // a new request does not wait out the 1 s backoff
  await clock.advance(0);
  await clock.advance(5000);
  runner.request('changed');
  await clock.advance(0);
  assert.deepEqual(rec.starts, [[0, 'full'], [10_000, 'changed'], [10_500, 'full'], [15_500, 'changed']]);
  assert.equal(runner.status().failing, undefined);
});

test('a pass that throws counts as failed and the runner carries on', async () => {
  const clock = new FakeClock();
  const kinds: PassKind[] = [];
  const runner = createSyncRunner({
    clock,
    minIntervalMs: 1000,
    maxIntervalMs: 30_000,
    async pass(kind) {
      kinds.push(kind);
      if (kinds.length === 1) throw new Error('nsenter: cannot open /run/netns/w1');
      return OK;
    },
  });
  runner.start();
  await clock.advance(0);
  assert.equal(runner.status().failing?.count, 1);
  await clock.advance(1000);
  assert.deepEqual(kinds, ['full', 'full']);
  assert.equal(runner.status().failing, undefined);
  assert.equal(runner.status().lastSuccess, 1000);
});

test('one pass at a time: a pass longer than the sync period is followed by a full pass, never overlapped', async () => {
  const { clock, rec, runner } = setup((i) => (i === 0 ? 'hold' : 'ok'));
  runner.start();
  await clock.advance(50_000);
  assert.equal(rec.calls.length, 1);
  rec.calls[0]!.finish();
  await clock.advance(0);
  assert.deepEqual(rec.starts, [[0, 'full'], [50_000, 'full']]);
  assert.equal(rec.maxInFlight, 1);
});

test('status: lastSuccess, pendingSince and what runs, through a success and a failure', async () => {
  const { clock, rec, runner } = setup((i) => (i === 0 ? 'ok' : 'hold'));
  assert.deepEqual(runner.status(), { activity: { state: 'unstarted' }, lastSuccess: undefined, pendingSince: undefined, failing: undefined });
  runner.start();
  await clock.advance(2000);
  assert.equal(runner.status().lastSuccess, 0);
  assert.equal(runner.status().pendingSince, undefined);

  runner.request('changed'); // at 2000: runs at once and is held
  await clock.advance(0);
  await clock.advance(300);
  runner.request('full'); // at 2300: waits for the pass in flight
  assert.deepEqual(runner.status().activity, { state: 'running', kind: 'changed', since: 2000 });
  assert.equal(runner.status().pendingSince, 2000, 'the request the running pass serves is still owed');

  rec.calls[1]!.finish(FAILED);
  await clock.advance(0);
  // The failed pass owes its request of 2000; the full one of 2300 runs now.
  assert.deepEqual(runner.status().activity, { state: 'running', kind: 'full', since: 2300 });
  assert.equal(runner.status().pendingSince, 2000);
  assert.equal(runner.status().lastSuccess, 0);

  await clock.advance(700);
  rec.calls[2]!.finish();
  await clock.advance(0);
  assert.equal(runner.status().pendingSince, undefined);
  assert.equal(runner.status().lastSuccess, 3000);
  assert.deepEqual(runner.status().activity, { state: 'waiting', nextPassAt: 32_300 });
});

test('a failed pass nobody asked for owes work from when it started', async () => {
  const { clock, runner } = setup(() => 'fail');
  runner.start();
  await clock.advance(0);
  assert.equal(runner.status().pendingSince, 0);
  await clock.advance(20_000);
  assert.equal(runner.status().pendingSince, 0, 'retries failing keep the oldest time');
});

test('stop aborts the pass in flight, resolves once it has finished, and nothing runs after', async () => {
  const { clock, rec, runner } = setup((i) => (i === 1 ? 'hold' : 'ok'));
  runner.start();
  await clock.advance(5000);
  runner.request('changed');
  await clock.advance(0);
  const held = rec.calls[1]!;
  assert.equal(held.signal.aborted, false);
  const order: string[] = [];
  held.signal.addEventListener('abort', () => {
    order.push('aborted');
    setImmediate(() => {
      order.push('pass ended');
      held.finish({ status: 'failed', error: 'aborted' });
    });
  });
  const stopped = runner.stop().then(() => order.push('stop resolved'));
  assert.deepEqual(runner.status().activity, { state: 'stopping', since: 5000 });
  await stopped;
  assert.deepEqual(order, ['aborted', 'pass ended', 'stop resolved']);
  assert.deepEqual(runner.status().activity, { state: 'stopped' });

  runner.request('full');
  await clock.advance(120_000);
  assert.equal(rec.calls.length, 2);
  assert.equal(clock.pending, 0, 'no timer left set');
});

test('stop while waiting cancels the timer at once', async () => {
  const { clock, rec, runner } = setup();
  runner.start();
  await clock.advance(0);
  await runner.stop();
  await runner.stop();
  await clock.advance(100_000);
  assert.equal(rec.calls.length, 1);
  assert.equal(clock.pending, 0);
});

test('options that make no schedule are refused before anything runs', () => {
  const clock = new FakeClock();
  const pass = async (): Promise<PassOutcome> => OK;
  assert.throws(() => createSyncRunner({ pass, clock, minIntervalMs: 1000, maxIntervalMs: 0 }), /maxIntervalMs/);
  assert.throws(() => createSyncRunner({ pass, clock, minIntervalMs: 40_000, maxIntervalMs: 30_000 }), /minIntervalMs/);
  assert.throws(() => createSyncRunner({ pass, clock, minIntervalMs: 1000, maxIntervalMs: 30_000, burst: 0 }), /burst/);
  assert.equal(clock.pending, 0);
});
