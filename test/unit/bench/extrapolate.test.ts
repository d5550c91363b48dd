import assert from 'node:assert/strict';
import test from 'node:test';
import { linearAt } from '../../../bench/extrapolate.js';

test('the line through the two largest measured points', () => {
  assert.equal(linearAt([{ x: 10, y: 25 }, { x: 50, y: 105 }], 200), 405);
  // Order does not matter; a smaller third point does not either.
  assert.equal(linearAt([{ x: 50, y: 105 }, { x: 1, y: 1000 }, { x: 10, y: 25 }], 200), 405);
});

test('one point: proportional, through the origin', () => {
  assert.equal(linearAt([{ x: 50, y: 100 }], 200), 400);
});

test('no point, or two at one x, cannot be extrapolated', () => {
  assert.throws(() => linearAt([], 1), /no measured point/);
  assert.throws(() => linearAt([{ x: 5, y: 1 }, { x: 5, y: 2 }], 9), /two points at x = 5/);
});
