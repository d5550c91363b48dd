import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_DURATION_MS, parseDuration } from '../../../src/catalog/duration.js';

test('durations normalize to milliseconds', () => {
  const cases: [unknown, number][] = [
    [2, 2_000], [0.5, 500], ['500ms', 500], ['2s', 2_000], ['1.5s', 1_500], ['1.1s', 1_100],
    ['1m', 60_000], ['1h', 3_600_000], ['1m30s', 90_000], ['1h0m1s', 3_601_000], ['0.5ms0.5ms', 1],
  ];
  for (const [input, ms] of cases) assert.deepEqual(parseDuration(input), { ok: true, ms }, String(input));
});

test('zero, negative, fractional-millisecond, too long and malformed durations are refused', () => {
  const format = 'must be a duration such as 500ms, 2s, 1.5s, 1m30s or a number of seconds';
  const cases: [unknown, string][] = [
    [0, 'must be longer than zero'],
    ['0s', 'must be longer than zero'],
    [-1, 'must be longer than zero'],
    ['1.5ms', 'must be a whole number of milliseconds'],
    [0.0001, 'must be a whole number of milliseconds'],
    [`${MAX_DURATION_MS + 1}ms`, `must be at most ${MAX_DURATION_MS}ms (about 24.8 days)`],
    ['-1s', format], ['1', format], ['1 s', format], ['s', format], ['1d', format], ['', format],
    [Number.POSITIVE_INFINITY, format], [null, format], [true, format], [[1], format],
  ];
  for (const [input, message] of cases) assert.deepEqual(parseDuration(input), { ok: false, message }, String(input));
});
