import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLabel, taskNameProblem } from '../../../src/catalog/check-names.js';

test('a task name is dot-separated labels: one pattern decides as splitting on dots would', () => {
  let seed = 13;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const alphabet = 'aZ09-._ é';
  const names = ['', '.', 'a', 'a.', '.a', 'a..b', 'a.b', '-a.b', 'a-.b', 'a.-b', `${'a'.repeat(63)}.b`, `${'a'.repeat(64)}.b`,
    `a.${'b'.repeat(63)}`, `a.${'b'.repeat(64)}`, 'web.1.698qak908bz8', 'a\n.b', 'a.b\n'];
  for (let i = 0; i < 5000; i++) {
    let name = '';
    for (let n = Math.floor(next() * 12); n > 0; n--) name += alphabet[Math.floor(next() * alphabet.length)];
    names.push(name);
  }
  for (const name of names) {
    const expected = name.split('.').every(isLabel);
    assert.equal(taskNameProblem('tasks.x', name) === undefined, expected, JSON.stringify(name));
  }
});
