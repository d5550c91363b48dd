// The load-balancer benchmark's host side: its sizes on the kernel command line,
// and its table in a guest console. No guest is booted here.
import assert from 'node:assert/strict';
import test from 'node:test';
import { lbLaneAppend } from '../../../bench/lb-mode.js';
import { BEGIN, END } from '../../../bench/lb-mode-guest.js';
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
