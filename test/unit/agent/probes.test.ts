// The probe scheduler under a fake clock and a fake prober: each rule of SPEC §5
// "Health probes" (interval, retries, serving only after the first pass, one
// report per change), update() and stop(), and health.json as it follows.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import type { HealthProbe } from '../../../src/catalog/types.js';
import { createProbeScheduler, probeTasks, type ProbeSchedulerOptions, type ProbeTask, type Verdict } from '../../../src/agent/probes.js';
import type { ProbeOutcome, ProbeRequest } from '../../../src/kernel/probe-session.js';
import { readProbes } from '../../../src/state/runtime.js';
import { catalogOf } from '../../helpers/catalog.js';
import { FakeClock } from './fake-clock.js';

const PASS: ProbeOutcome = { result: 'pass' };
const FAIL: ProbeOutcome = { result: 'fail', reason: 'cannot connect to 10.0.1.3:80: Connection refused' };
const GONE: ProbeOutcome = { result: 'namespace-gone' };

function task(name: string, options: { interval?: number; timeout?: number; retries?: number; netns?: string; probe?: HealthProbe } = {}): ProbeTask {
  return {
    name,
    netns: options.netns ?? `/run/netns/${name}`,
    address: '10.0.1.3',
    healthcheck: {
      probe: options.probe ?? { kind: 'tcp', port: 80 },
      intervalMs: options.interval ?? 2000,
      timeoutMs: options.timeout ?? 1000,
      retries: options.retries ?? 3,
    },
  };
}

interface Call {
  readonly at: number;
  readonly request: ProbeRequest;
}

/**
 * A prober whose answers the test sets per namespace: an outcome, or 'hold' to
 * keep the probe in flight until release() (which answers every held probe).
 */
function fakeProber(clock: FakeClock) {
  const calls: Call[] = [];
  const answers = new Map<string, ProbeOutcome | 'hold' | 'throw'>();
  const held: ((outcome: ProbeOutcome) => void)[] = [];
  const retained: string[][] = [];
  return {
    calls,
    retained,
    /** Names of the namespaces probed, with the time, in order. */
    get log(): [number, string][] {
      return calls.map((c) => [c.at, c.request.netns.replace('/run/netns/', '')]);
    },
    answer(name: string, outcome: ProbeOutcome | 'hold' | 'throw') {
      answers.set(`/run/netns/${name}`, outcome);
    },
    release(outcome: ProbeOutcome) {
      for (const resolve of held.splice(0)) resolve(outcome);
    },
    probe(request: ProbeRequest): Promise<ProbeOutcome> {
      calls.push({ at: clock.now(), request });
      const answer = answers.get(request.netns) ?? PASS;
      if (answer === 'throw') return Promise.reject(new Error('prober bug'));
      if (answer === 'hold') return new Promise((resolve) => held.push(resolve));
      return Promise.resolve(answer);
    },
    async retain(netns: ReadonlySet<string>) {
      retained.push([...netns].sort());
    },
  };
}

async function setup(t: TestContext, options: Partial<ProbeSchedulerOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-probes-'));
  const clock = new FakeClock();
  const prober = fakeProber(clock);
  const changes: [number, string, Verdict][] = [];
  const counts = { pass: 0, fail: 0 };
  const scheduler = createProbeScheduler({
    clock,
    prober,
    runDir: dir,
    onChange: (name, verdict) => changes.push([clock.now(), name, verdict]),
    countResult: (result) => counts[result]++,
    onWriteError: (error) => assert.fail(error),
    random: () => 0,
    ...options,
  });
  t.after(async () => {
    await scheduler.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const file = async () => {
    await scheduler.flush();
    return Object.fromEntries(await readProbes(dir));
  };
  return { clock, prober, scheduler, changes, counts, dir, file };
}

test('each task is probed every interval from its first probe, with its timeout and address', async (t) => {
  const { clock, prober, scheduler } = await setup(t, { random: () => 0.25 });
  scheduler.update([task('a', { interval: 2000, timeout: 700 })]);
  await clock.advance(7000);
  assert.deepEqual(prober.log, [[500, 'a'], [2500, 'a'], [4500, 'a'], [6500, 'a']], 'first at a quarter of the interval, then every 2 s');
  assert.deepEqual(prober.calls[0]?.request, {
    netns: '/run/netns/a', address: '10.0.1.3', probe: { kind: 'tcp', port: 80 }, timeoutMs: 700,
  });
});

test('first probes are spread over the first interval, on a 100 ms grid', async (t) => {
  const spread = [0, 0.5, 0.9, 0.999];
  const { clock, prober, scheduler } = await setup(t, { random: () => spread.shift() ?? 0 });
  scheduler.update([task('a'), task('b'), task('c'), task('d')]);
  await clock.advance(2000);
  assert.deepEqual(prober.log, [[0, 'a'], [1000, 'b'], [1800, 'c'], [2000, 'd'], [2000, 'a']], 'd is due at 1998, rounded up to 2000');
});

test('tasks due in one grid slot share one timer and start together', async (t) => {
  let n = 0;
  const { clock, prober, scheduler } = await setup(t, { random: () => [0.01, 0.02, 0.04, 0.06][n++ % 4]! });
  scheduler.update([task('a'), task('b'), task('c'), task('d')]); // due at 20, 40, 80, 120 ms
  assert.equal(clock.pending, 2, 'slots 100 and 200: two timers for four tasks');
  await clock.advance(100);
  assert.deepEqual(prober.log, [[100, 'a'], [100, 'b'], [100, 'c']]);
  await clock.advance(100);
  assert.deepEqual(prober.log.at(-1), [200, 'd']);
  await clock.advance(2000);
  assert.deepEqual(prober.log.slice(4), [[2100, 'a'], [2100, 'b'], [2100, 'c'], [2200, 'd']], 'and stay together');
});

test('a custom grid applies to every probe', async (t) => {
  const { clock, prober, scheduler } = await setup(t, { gridMs: 1000, random: () => 0.3 });
  scheduler.update([task('a', { interval: 1500 })]);
  await clock.advance(5000);
  assert.deepEqual(prober.log, [[1000, 'a'], [3000, 'a'], [5000, 'a']], 'due at 600, 2500, 4500: each rounded up to the next second');
});

test('a probe that outlasts its interval delays the next one; probes never overlap', async (t) => {
  const { clock, prober, scheduler } = await setup(t);
  prober.answer('a', 'hold');
  scheduler.update([task('a', { interval: 1000, timeout: 5000 })]);
  await clock.advance(3500);
  assert.deepEqual(prober.log, [[0, 'a']], 'one probe in flight, none started beside it');
  prober.answer('a', PASS);
  prober.release(PASS);
  await clock.advance(0);
  assert.deepEqual(prober.log, [[0, 'a'], [3500, 'a']], 'the next starts as soon as the late one ends');
  await clock.advance(1000);
  assert.deepEqual(prober.log.at(-1), [4500, 'a']);
});

test('a task is starting, not serving, until its first pass; one pass makes it healthy', async (t) => {
  const { clock, prober, scheduler, changes, file } = await setup(t);
  prober.answer('a', FAIL);
  scheduler.update([task('a', { retries: 3 })]);
  assert.deepEqual(scheduler.verdicts().get('a'), { state: 'starting' });
  assert.deepEqual(await file(), { a: false }, 'health.json says not healthy from the start');
  await clock.advance(2000 + 1); // probes at 0 and 2000 fail
  assert.deepEqual(changes, [], 'fewer than retries failures: still starting, no report');
  prober.answer('a', PASS);
  await clock.advance(2000);
  assert.deepEqual(changes, [[4000, 'a', { state: 'healthy' }]]);
  assert.deepEqual(scheduler.health(), new Map([['a', true]]));
  assert.deepEqual(await file(), { a: true });
  await clock.advance(10_000);
  assert.equal(changes.length, 1, 'more passes change nothing and report nothing');
});

test('retries failures in a row turn a task unhealthy; a pass in between starts the count again', async (t) => {
  const { clock, prober, scheduler, changes, counts, file } = await setup(t);
  scheduler.update([task('a', { retries: 3 })]);
  await clock.advance(0); // pass at 0
  prober.answer('a', FAIL);
  await clock.advance(4000); // fail at 2000, 4000
  prober.answer('a', PASS);
  await clock.advance(2000); // pass at 6000
  prober.answer('a', FAIL);
  await clock.advance(4000); // fail at 8000, 10000
  assert.deepEqual(changes.map(([, , v]) => v.state), ['healthy'], 'two failures never count as three');
  await clock.advance(2000); // third failure in a row at 12000
  assert.deepEqual(changes.slice(1), [[12_000, 'a', { state: 'unhealthy', reason: FAIL.reason }]]);
  assert.deepEqual(await file(), { a: false });
  await clock.advance(6000);
  assert.equal(changes.length, 2, 'further failures report nothing');
  prober.answer('a', PASS);
  await clock.advance(2000);
  assert.deepEqual(changes.slice(2), [[20_000, 'a', { state: 'healthy' }]], 'one pass brings it back');
  assert.deepEqual(await file(), { a: true });
  assert.deepEqual(counts, { pass: 3, fail: 8 });
});

test('a starting task that fails retries times is reported unhealthy', async (t) => {
  const { clock, prober, scheduler, changes } = await setup(t);
  prober.answer('a', FAIL);
  scheduler.update([task('a', { retries: 2 })]);
  await clock.advance(2000);
  assert.deepEqual(changes, [[2000, 'a', { state: 'unhealthy', reason: FAIL.reason }]]);
  assert.equal(scheduler.health().get('a'), false);
});

test('a vanished namespace is reported once, is not a probe result, and a pass afterwards serves again', async (t) => {
  const { clock, prober, scheduler, changes, counts, file } = await setup(t);
  scheduler.update([task('a')]);
  await clock.advance(0);
  prober.answer('a', GONE);
  await clock.advance(6000);
  assert.deepEqual(changes, [[0, 'a', { state: 'healthy' }], [2000, 'a', { state: 'namespace-gone' }]]);
  assert.deepEqual(counts, { pass: 1, fail: 0 }, 'no result counted while the namespace is gone');
  assert.deepEqual(await file(), { a: false });
  prober.answer('a', PASS);
  await clock.advance(2000);
  assert.deepEqual(changes.at(-1), [8000, 'a', { state: 'healthy' }]);
});

test('a prober that throws counts as a failed probe and the schedule goes on', async (t) => {
  const { clock, prober, scheduler, changes, counts } = await setup(t);
  prober.answer('a', 'throw');
  scheduler.update([task('a', { retries: 1 })]);
  await clock.advance(2000);
  assert.deepEqual(changes, [[0, 'a', { state: 'unhealthy', reason: 'prober bug' }]]);
  assert.deepEqual(counts, { pass: 0, fail: 2 });
});

test('update() starts and stops probing; unchanged tasks keep their verdict and schedule', async (t) => {
  const { clock, prober, scheduler, changes, file } = await setup(t, { random: () => 0.5 });
  scheduler.update([task('a'), task('b')]);
  await clock.advance(1000); // both pass at 1000
  assert.deepEqual(await file(), { a: true, b: true });
  await clock.advance(500);
  scheduler.update([task('a'), task('c')]);
  assert.deepEqual(scheduler.verdicts(), new Map<string, Verdict>([['a', { state: 'healthy' }], ['c', { state: 'starting' }]]));
  assert.deepEqual(await file(), { a: true, c: false }, 'b leaves health.json, c enters it not healthy');
  assert.deepEqual(prober.retained.at(-1), ['/run/netns/a', '/run/netns/c'], 'the prober may end b\'s shell');
  await clock.advance(2500); // until 4000
  assert.deepEqual(prober.log.slice(2), [[2500, 'c'], [3000, 'a']], 'a keeps its rhythm, c starts within its first interval, b is gone');
  assert.deepEqual(changes, [[1000, 'a', { state: 'healthy' }], [1000, 'b', { state: 'healthy' }], [2500, 'c', { state: 'healthy' }]],
    'coming and going is no change of verdict');
});

test('a result for a task that left meanwhile is dropped', async (t) => {
  const { clock, prober, scheduler, changes, counts } = await setup(t);
  prober.answer('a', 'hold');
  scheduler.update([task('a')]);
  await clock.advance(0);
  scheduler.update([]);
  prober.release(PASS);
  await clock.advance(10_000);
  assert.deepEqual([changes, counts, prober.calls.length], [[], { pass: 0, fail: 0 }, 1]);
  assert.equal(clock.pending, 0, 'no timer left for it');
});

test('a task that moves to another namespace starts over and must pass again', async (t) => {
  const { clock, prober, scheduler, changes } = await setup(t);
  scheduler.update([task('a')]);
  await clock.advance(0);
  prober.answer('a2', FAIL);
  scheduler.update([task('a', { netns: '/run/netns/a2' })]);
  assert.deepEqual(changes.at(-1), [0, 'a', { state: 'starting' }]);
  assert.equal(scheduler.health().get('a'), false);
  await clock.advance(2000);
  assert.deepEqual(prober.log.slice(1), [[0, 'a2'], [2000, 'a2']]);
});

test('a new interval applies from the last probe, not after the old interval ran out', async (t) => {
  const { clock, prober, scheduler } = await setup(t);
  scheduler.update([task('a', { interval: 60_000 })]);
  await clock.advance(1000);
  scheduler.update([task('a', { interval: 2000 })]);
  await clock.advance(3500);
  assert.deepEqual(prober.log, [[0, 'a'], [2000, 'a'], [4000, 'a']]);
});

test('a task the previous agent found healthy starts healthy and needs retries failures to stop serving', async (t) => {
  const { clock, prober, scheduler, changes, file } = await setup(t, { previous: new Map([['a', true], ['b', false]]) });
  prober.answer('a', FAIL);
  scheduler.update([task('a', { retries: 2 }), task('b')]);
  assert.deepEqual(await file(), { a: true, b: false });
  await clock.advance(0);
  assert.deepEqual(changes, [[0, 'b', { state: 'healthy' }]], 'one failure of a healthy task changes nothing');
  await clock.advance(2000);
  assert.deepEqual(changes.slice(1), [[2000, 'a', { state: 'unhealthy', reason: FAIL.reason }]]);
  scheduler.update([]);
  scheduler.update([task('a')]);
  assert.deepEqual(scheduler.verdicts().get('a'), { state: 'starting' }, 'only the first update adopts the previous verdicts');
});

test('stop() ends every schedule; results in flight are ignored', async (t) => {
  const { clock, prober, scheduler, changes, counts } = await setup(t, { random: () => 0.5 });
  prober.answer('a', 'hold');
  scheduler.update([task('a'), task('b')]);
  await clock.advance(1000);
  assert.equal(prober.calls.length, 2);
  await scheduler.stop();
  assert.equal(clock.pending, 0, 'no timer left');
  prober.release(PASS);
  await clock.advance(10_000);
  scheduler.update([task('c')]);
  await clock.advance(10_000);
  assert.equal(prober.calls.length, 2, 'nothing probed after stop');
  assert.deepEqual(changes.map(([, name]) => name), ['b'], 'only what finished before stop');
  assert.deepEqual(counts, { pass: 1, fail: 0 });
});

test('an unwritable run directory is reported, and probing goes on', async (t) => {
  const errors: Error[] = [];
  const { clock, prober, scheduler, changes } = await setup(t, { runDir: '/dev/null/vipmesh', onWriteError: (error) => errors.push(error) });
  scheduler.update([task('a')]);
  await clock.advance(2000);
  await scheduler.flush();
  assert.ok(errors.length >= 1, 'the failed write is reported');
  assert.match(errors[0]?.message ?? '', /ENOTDIR|EEXIST/);
  assert.equal(prober.calls.length, 2);
  assert.deepEqual(changes, [[0, 'a', { state: 'healthy' }]]);
});

test('probeTasks(): running local tasks of services with a healthcheck, at their first non-ingress address', () => {
  const catalog = catalogOf(`
version: 1
networks:
  zeta: { subnet: 10.0.3.0/24 }
  alpha: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1: { address: 192.0.2.11, ingressSandbox: { netns: /run/netns/ingress_sbox, address: 10.255.0.2 } }
  node-2: { address: 192.0.2.12, ingressSandbox: { netns: /run/netns/ingress_sbox, address: 10.255.0.20 } }
services:
  web:
    vips: { alpha: 10.0.1.2, zeta: 10.0.3.2 }
    ports: [{ target: 80, published: 8080 }]
    healthcheck: { http: { port: 80, path: /healthz }, interval: 2s, timeout: 1s, retries: 2 }
  edge:
    vips: { ingress: 10.255.0.3 }
    ports: [{ target: 80, published: 8081 }]
    healthcheck: { tcp: 80 }
  plain:
    vips: { alpha: 10.0.1.9 }
tasks:
  web.2: { service: web, node: node-1, netns: /run/netns/web-2, addresses: { zeta: 10.0.3.4, alpha: 10.0.1.4, ingress: 10.255.0.4 }, state: running }
  web.1: { service: web, node: node-1, netns: /run/netns/web-1, addresses: { zeta: 10.0.3.3, alpha: 10.0.1.3, ingress: 10.255.0.5 }, state: running }
  web.3: { service: web, node: node-2, netns: /run/netns/web-3, addresses: { zeta: 10.0.3.5, alpha: 10.0.1.5, ingress: 10.255.0.6 }, state: running }
  web.4: { service: web, node: node-1, netns: /run/netns/web-4, addresses: { zeta: 10.0.3.6, alpha: 10.0.1.6, ingress: 10.255.0.7 }, state: shutdown }
  edge.1: { service: edge, node: node-1, netns: /run/netns/edge-1, addresses: { ingress: 10.255.0.8 }, state: running }
  plain.1: { service: plain, node: node-1, netns: /run/netns/plain-1, addresses: { alpha: 10.0.1.7 }, state: running }
`);
  const tasks = probeTasks(catalog, 'node-1');
  assert.deepEqual(tasks.map((t) => [t.name, t.netns, t.address]), [
    ['edge.1', '/run/netns/edge-1', '10.255.0.8'],
    ['web.1', '/run/netns/web-1', '10.0.1.3'],
    ['web.2', '/run/netns/web-2', '10.0.1.4'],
  ], 'alpha before zeta, ingress only when there is nothing else; other nodes, stopped tasks and services without a healthcheck are left out');
  assert.deepEqual(tasks[1]?.healthcheck, { probe: { kind: 'http', port: 80, path: '/healthz' }, intervalMs: 2000, timeoutMs: 1000, retries: 2 });
});
