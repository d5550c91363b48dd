// The pure half of the agent's watch (src/cluster/view.ts): a listing or a watch
// response turned into the view an agent holds, and what each changed.
import assert from 'node:assert/strict';
import test from 'node:test';
import { healthKey, liveKey, objectKey } from '../../../src/cluster/layout.js';
import {
  EMPTY_VIEW, type SharedHealth, applyEvents, backoffMs, changedParts, healthValue, isCompaction, parseHealth, viewOf,
} from '../../../src/cluster/view.js';

const P = '/vm';
const healthy: SharedHealth = { node: 'b', state: 'healthy', since: '2025-01-01T00:00:00.000Z' };
const unhealthy: SharedHealth = { node: 'b', state: 'unhealthy', since: '2025-01-01T00:00:05.000Z', reason: 'connection refused' };

test('a listing splits into catalog objects, live nodes and published verdicts; other keys are ignored', () => {
  const view = viewOf(P, [
    [objectKey(P, 'tasks', 't1'), '{"node":"b"}'],
    [liveKey(P, 'a'), '{}'],
    [liveKey(P, 'b'), '{}'],
    [healthKey(P, 't1'), healthValue(healthy)],
    [healthKey(P, 't2'), 'not json'],
    ['/vm/v1/other/x', '1'],
    ['/elsewhere/v1/tasks/t9', '{}'],
  ]);
  assert.deepEqual([...view.objects.keys()], [objectKey(P, 'tasks', 't1')]);
  assert.deepEqual([...view.live].sort(), ['a', 'b']);
  assert.deepEqual([...view.health], [['t1', healthy]]);
});

test('events change only the parts they touch, and a put of the same value changes nothing', () => {
  const view = viewOf(P, [[objectKey(P, 'services', 's'), '{}'], [liveKey(P, 'a'), '{}']]);
  const same = applyEvents(P, view, [{ type: 'put', key: objectKey(P, 'services', 's'), value: '{}' }, { type: 'put', key: liveKey(P, 'a'), value: '{"x":1}' }]);
  assert.equal(same.changed.size, 0);
  assert.equal(same.view.objects, view.objects, 'unchanged parts are the same objects');
  assert.equal(same.view.live, view.live);

  const down = applyEvents(P, view, [{ type: 'delete', key: liveKey(P, 'a') }]);
  assert.deepEqual([...down.changed], ['live']);
  assert.equal(down.view.live.size, 0);
  assert.equal(view.live.size, 1, 'the view applied to is not changed');

  const sick = applyEvents(P, view, [{ type: 'put', key: healthKey(P, 't1'), value: healthValue(unhealthy) }]);
  assert.deepEqual([...sick.changed], ['health']);
  assert.deepEqual(sick.view.health.get('t1'), unhealthy);

  const edit = applyEvents(P, view, [{ type: 'put', key: objectKey(P, 'services', 's'), value: '{"vips":{}}' }, { type: 'delete', key: objectKey(P, 'tasks', 'gone') }]);
  assert.deepEqual([...edit.changed], ['catalog']);
});

test('a transaction that puts and deletes the same key within one response ends where it ends', () => {
  const key = objectKey(P, 'tasks', 't');
  const { view, changed } = applyEvents(P, EMPTY_VIEW, [{ type: 'put', key, value: '1' }, { type: 'delete', key }]);
  assert.equal(view.objects.size, 0);
  assert.ok(changed.has('catalog'), 'it passed through a change; a relist would not see one, and that is fine');
});

test('after a relist the diff says what was missed', () => {
  const before = viewOf(P, [[objectKey(P, 'tasks', 't'), '1'], [liveKey(P, 'a'), '{}'], [healthKey(P, 't'), healthValue(healthy)]]);
  assert.equal(changedParts(before, viewOf(P, [[objectKey(P, 'tasks', 't'), '1'], [liveKey(P, 'a'), '{}'], [healthKey(P, 't'), healthValue(healthy)]])).size, 0);
  assert.deepEqual([...changedParts(before, viewOf(P, [[objectKey(P, 'tasks', 't'), '2'], [liveKey(P, 'a'), '{}'], [healthKey(P, 't'), healthValue(healthy)]]))], ['catalog']);
  assert.deepEqual([...changedParts(before, viewOf(P, [[objectKey(P, 'tasks', 't'), '1'], [liveKey(P, 'b'), '{}'], [healthKey(P, 't'), healthValue(unhealthy)]]))], ['live', 'health']);
});

test('only values an agent could have written are verdicts', () => {
  assert.deepEqual(parseHealth(healthValue(unhealthy)), unhealthy);
  for (const value of ['', 'null', '[]', '{"node":"b","state":"sick","since":"x"}', '{"node":1,"state":"healthy","since":"x"}', '{"node":"b","state":"healthy"}']) {
    assert.equal(parseHealth(value), undefined, value);
  }
});

test('backoff doubles up to its cap; compaction is recognised by etcd\'s words', () => {
  const limits = { initialMs: 250, maxMs: 5_000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5, 100].map((n) => backoffMs(n, limits)), [250, 500, 1000, 2000, 4000, 5000, 5000]);
  assert.ok(isCompaction('Watcher canceled: etcdserver: mvcc: required revision has been compacted'));
  assert.ok(isCompaction('Watcher canceled: '), 'etcd 3.4 gives no reason, only the compact revision');
  assert.ok(!isCompaction('Watcher canceled: permission denied'));
  assert.ok(!isCompaction('14 UNAVAILABLE: No connection established'));
});
