import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { readNodeFacts } from '../../../src/state/runtime.js';
import { readState, writeState } from '../../../src/state/store.js';

function dir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'vipmesh-state-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

// The node lock spawns flock(1); its tests are in test/kernel/lock.test.ts.

test('state round-trips, a missing or corrupt file reads as empty, and plan reuses the kept marks', async (t) => {
  const d = dir(t);
  assert.deepEqual(await readState(d), { namespaces: {}, draining: {}, marks: {}, applied: {} });
  const state = {
    namespaces: { '/run/netns/a': { netns: '/run/netns/a', role: 'task' as const } },
    draining: { '/run/netns/a': { '1452277761 10.0.1.12:0': 1000 } },
    marks: { '/run/netns/a': { 'web/appnet': 1452277761 } },
    applied: { '/run/netns/a': '3f2a' },
  };
  await writeState(d, state);
  assert.deepEqual(await readState(d), state);
  const facts = await readNodeFacts(d, '6.1.0');
  assert.equal(facts.marks.get('/run/netns/a')?.get('web/appnet'), 1452277761);
  writeFileSync(join(d, 'state.json'), '{not json');
  assert.deepEqual(await readState(d), { namespaces: {}, draining: {}, marks: {}, applied: {} });
});
