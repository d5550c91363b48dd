// The IPVS benchmark's host side: taking the table out of the guest console, and
// the kernel command line words that carry its sizes. No guest is booted here.
import assert from 'node:assert/strict';
import test from 'node:test';
import { extractBench, laneAppend } from '../../../bench/ipvs.js';

const table = ['Some text.', '', '| a | b |', '|---|---:|', '| x | 1 ms |'];

function guestConsole(...middle: string[]): string {
  return [
    'kernel-lane: building the base initramfs',
    'kernel-lane: 6.1.0-56-cloud-amd64, running dist/bench/ipvs-guest.js',
    'ipvs-bench: round 1/3',
    ...middle,
    'VIPMESH-LANE-EXIT 0',
    'kernel-lane: guest status 0; build 12s, boot to poweroff 59s',
  ].join('\r\n');
}

test('the table between the markers, and the guest kernel', () => {
  const got = extractBench(guestConsole('BENCH-BEGIN ipvs', ...table, 'BENCH-END ipvs'));
  assert.equal(got.table, table.join('\n'));
  assert.equal(got.kernel, '6.1.0-56-cloud-amd64');
});

test('kernel messages that land inside the table are dropped', () => {
  const got = extractBench(guestConsole('BENCH-BEGIN ipvs', table[0]!, '[   12.345678] IPVS: something', ...table.slice(1), 'BENCH-END ipvs'));
  assert.equal(got.table, table.join('\n'));
});

test('the last complete table wins', () => {
  const got = extractBench(guestConsole('BENCH-BEGIN ipvs', '| old |', 'BENCH-END ipvs', 'BENCH-BEGIN ipvs', ...table, 'BENCH-END ipvs'));
  assert.equal(got.table, table.join('\n'));
});

test('no table: says whether the guest finished', () => {
  assert.throws(() => extractBench(guestConsole('ipvs-bench: failed: boom').replace('EXIT 0', 'EXIT 1')), /no BENCH-BEGIN ipvs line\): the guest exited 1/);
  assert.throws(() => extractBench('kernel-lane: 6.1.0, running x\nBENCH-BEGIN ipvs\n| a |'), /no closing BENCH-END ipvs line\): the guest never printed VIPMESH-LANE-EXIT/);
});

test('a table from a guest that then failed is not taken', () => {
  const text = guestConsole('BENCH-BEGIN ipvs', ...table, 'BENCH-END ipvs').replace('EXIT 0', 'EXIT 1');
  assert.throws(() => extractBench(text), /exited 1/);
});

test('sizes go to the guest as kernel command line words', () => {
  assert.equal(laneAppend({}), '');
  assert.equal(laneAppend({ services: 50, realServers: 4, rounds: 1, perCommandServices: 0 }),
    'vipmesh_ipvs_services=50 vipmesh_ipvs_reals=4 vipmesh_ipvs_rounds=1 vipmesh_ipvs_percmd=0');
  assert.throws(() => laneAppend({ services: 1.5 }), /not a whole number/);
});
