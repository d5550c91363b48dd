// The load-balancer benchmark's host side: its sizes on the kernel command line,
// and its table in a guest console. No guest is booted here.
import assert from 'node:assert/strict';
import test from 'node:test';
import { lbLaneAppend } from '../../../bench/lb-mode.js';
import { BEGIN, END, render, type Row } from '../../../bench/lb-mode-guest.js';
import { extractBench, laneWords } from '../../../bench/lane.js';

test('sizes go to the guest as kernel command line words, lists comma-separated', () => {
  assert.equal(lbLaneAppend({}), '');
  assert.equal(lbLaneAppend({ sizes: [10, 50, 200], services: 1000, tasks: 10, budgetMinutes: 25 }),
    'vipmesh_lb_sizes=10,50,200 vipmesh_lb_services=1000 vipmesh_lb_tasks=10 vipmesh_lb_budget=25');
  assert.throws(() => lbLaneAppend({ sizes: [10, 2.5] }), /2\.5 is not a whole number/);
  assert.throws(() => laneWords('x', { sizes: [] }), /empty list/);
});

test('its own markers: an IPVS table in the same console is not taken', () => {
  const console = [
    'kernel-lane: 6.1.0-57-cloud-amd64, running dist/bench/lb-mode-guest.js',
    'BENCH-BEGIN ipvs', '| ipvs |', 'BENCH-END ipvs',
    BEGIN, '| K | mode |', '[  99.000001] kernel noise', '|---:|---|', END,
    'VIPMESH-LANE-EXIT 0',
  ].join('\r\n');
  const got = extractBench(console, { begin: BEGIN, end: END });
  assert.equal(got.table, '| K | mode |\n|---:|---|');
  assert.equal(got.kernel, '6.1.0-57-cloud-amd64');
  assert.throws(() => extractBench(console.replace(END, ''), { begin: BEGIN, end: END }), /no closing BENCH-END lb-mode/);
});

const memory = (mib: number) => ({
  slabObjects: mib * 2 ** 20, slab: mib * 2 ** 20, sunreclaim: mib * 2 ** 20, percpu: 0, availableDrop: mib * 2 ** 20, caches: [],
});

test('the table: measured rows, an extrapolated one marked and explained as such, a failed one with its reason', () => {
  const rows: Row[] = [
    {
      kind: 'measured', mode: 'load-balancer', k: 10,
      fromEmpty: { ms: 90_000, wallMs: 150_000, peakRss: 120 * 2 ** 20, namespaces: 11, written: 11, ipvsServices: 1000, realServers: 10_000, memory: memory(8), sample: 'the load balancer 1000 services' },
      changed: { ms: 20_000, wallMs: 60_000, read: 2, written: 2 },
      full: { ms: 30_000, wallMs: 50_000, read: 13, written: 2 },
    },
    {
      kind: 'projected', mode: 'per-task', k: 200, why: 'its reconcile from empty is projected at 168 min, over the 25 min budget',
      basis: "the straight line through per-task mode's measurements at K=10 and K=20", ms: 168 * 60_000,
      services: 200_000, realServers: 2_000_000, peakRss: 2 ** 30, memory: memory(1400),
    },
    { kind: 'failed', mode: 'per-task', k: 50, why: 'the reconcile from empty was killed by SIGKILL' },
  ];
  const text = render(rows, { sizes: [10, 50, 200], services: 1000, tasks: 10, budgetMin: 25 }, 2 ** 30, 3 * 2 ** 30);
  assert.match(text, /^\| 10 \| load-balancer \| 11 of 11 \| 1,000 \| 10,000 \| 90\.0 s \(2\.5 min\) \| 8\.0 MiB \|/m);
  assert.match(text, /^\| 200 \| per-task, \*\*extrapolated, not measured\*\* \| \(200\) \| ~200,000 \| ~2,000,000 \| ~168\.0 min \| ~1\.37 GiB \|/m);
  assert.match(text, /per-task mode at K=200 was not run: its reconcile from empty is projected at 168 min, over the 25 min budget\. Its row is extrapolated, the straight line through per-task mode's measurements at K=10 and K=20: a projection, not a measurement\./);
  assert.match(text, /^\| 50 \| per-task \| \*\*failed:\*\* the reconcile from empty was killed by SIGKILL \|/m);
  assert.match(text, /^\| 10 \| load-balancer \| 2 \| 2 \| 20\.0 s \(60\.0 s\) \| 13 \| 2 \| 30\.0 s \(50\.0 s\) \|$/m);
  assert.doesNotMatch(text, /^\| (200|50) \| per-task \| \d/m, 'no change row for a K not measured');
});
