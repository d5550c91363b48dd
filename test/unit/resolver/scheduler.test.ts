import assert from 'node:assert/strict';
import test from 'node:test';
import { createScheduler, runInSteps } from '../../../src/resolver/scheduler.js';

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

test('runs one at a time; requests during a run share the next one', async () => {
  let runs = 0;
  let active = 0;
  let most = 0;
  const scheduler = createScheduler(async () => {
    const n = ++runs;
    active++;
    most = Math.max(most, active);
    await tick(20);
    active--;
    return n;
  });
  const first = scheduler.request();
  await tick(5); // the first is running now
  const [second, third] = [scheduler.request(), scheduler.request()];
  assert.equal(second, third, 'the same promise');
  assert.deepEqual(await Promise.all([first, second, third]), [1, 2, 2]);
  assert.equal(most, 1);
  await scheduler.stop();
});

test('wake runs the work later; the earliest wake wins, and a run in between cancels the wake', async () => {
  const at: number[] = [];
  const started = Date.now();
  const scheduler = createScheduler(async () => {
    at.push(Date.now() - started);
  });
  scheduler.wake(300);
  scheduler.wake(30);
  scheduler.wake(200);
  await tick(150);
  assert.equal(at.length, 1, `one run, from the 30 ms wake: ${at.join()}`);
  await tick(250);
  assert.equal(at.length, 1, 'the later wakes were answered by that run');

  scheduler.wake(50);
  await scheduler.request(); // runs now: the wake is answered
  await tick(120);
  assert.equal(at.length, 2);
  await scheduler.stop();
});

test('after stop no wake runs; stop waits for the run in progress', async () => {
  let finished = false;
  let runs = 0;
  const scheduler = createScheduler(async () => {
    runs++;
    await tick(30);
    finished = true;
  });
  void scheduler.request();
  await tick(5);
  await scheduler.stop();
  assert.equal(finished, true);
  scheduler.wake(10);
  await tick(50);
  assert.equal(runs, 1);
});

test('a run that throws rejects its requests and does not stop the next', async () => {
  let fail = true;
  const scheduler = createScheduler(async () => {
    if (fail) throw new Error('no');
    return 'ok';
  });
  await assert.rejects(scheduler.request(), /no/);
  fail = false;
  assert.equal(await scheduler.request(), 'ok');
  await scheduler.stop();
});

test('runInSteps gives the loop a turn between steps once its budget is spent, and returns the result', async () => {
  let turns = 0;
  const timer = setInterval(() => turns++, 1);
  function* slow(): Generator<void, string, void> {
    for (let i = 0; i < 20; i++) {
      const until = performance.now() + 3;
      while (performance.now() < until); // 3 ms of work per step
      yield;
    }
    return 'built';
  }
  try {
    assert.equal(await runInSteps(slow(), 5), 'built');
  } finally {
    clearInterval(timer);
  }
  assert.ok(turns >= 5, `timers ran between steps: ${turns}`);
});
