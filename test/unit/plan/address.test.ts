import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareAddresses, sortByAddress } from '../../../src/plan/address.js';

test('addresses order by family, then numerically', () => {
  const sorted = ['fd00::2', '10.0.1.10', '10.0.1.9', 'fd00::10', '9.255.255.255', '::1', '10.0.1.9'].sort(compareAddresses);
  assert.deepEqual(sorted, ['9.255.255.255', '10.0.1.9', '10.0.1.9', '10.0.1.10', '::1', 'fd00::2', 'fd00::10']);
});

test('sortByAddress sorts as compareAddresses does, stably, reading each address once', () => {
  let seed = 9;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let round = 0; round < 50; round++) {
    const items = Array.from({ length: 1 + Math.floor(next() * 40) }, (_, i) => ({
      i,
      address: next() < 0.2 ? `fd00::${Math.floor(next() * 20).toString(16)}` : `10.0.${Math.floor(next() * 3)}.${Math.floor(next() * 20)}`,
    }));
    const expected = [...items].sort((a, b) => compareAddresses(a.address, b.address));
    assert.deepEqual(sortByAddress(items), expected);
  }
});
