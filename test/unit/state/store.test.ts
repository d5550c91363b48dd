import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { readNodeFacts } from '../../../src/state/runtime.js';
import { acquireLock, readState, writeState } from '../../../src/state/store.js';

const dir = () => mkdtempSync(join(tmpdir(), 'vipmesh-state-'));

test('the lock admits one holder; a second waits and then gives up naming the holder', async () => {
  const d = dir();
  const release = await acquireLock(d, 1000);
  assert.equal(readFileSync(join(d, 'lock'), 'utf8').trim(), String(process.pid));
  await assert.rejects(acquireLock(d, 200), new RegExp(`another vipmesh \\(pid ${process.pid}\\) holds`));
  await release();
  assert.ok(!existsSync(join(d, 'lock')));
  const again = await acquireLock(d, 200);
  await again();
});

test('a lock left by a dead process is taken over', async () => {
  const d = dir();
  writeFileSync(join(d, 'lock'), `${2 ** 22 + 7}\n`);
  const release = await acquireLock(d, 200);
  assert.equal(readFileSync(join(d, 'lock'), 'utf8').trim(), String(process.pid));
  await release();
});

test('state round-trips, a missing or corrupt file reads as empty, and plan reuses the kept marks', async () => {
  const d = dir();
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
