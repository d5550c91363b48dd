// The journal read back: what a crashed `lab up` left is still all there.
import assert from 'node:assert/strict';
import test from 'node:test';
import { replay } from '../../../src/lab/journal.js';

test('replay: added and not forgotten, processes and dirs in order; a half-written last line is skipped', () => {
  const lines = [
    { kind: 'lab', catalog: '/x/lab.yaml', etcd: false, at: '2024-01-01T00:00:00.000Z' },
    { kind: 'add', made: { kind: 'netns', name: 'a' } },
    { kind: 'add', made: { kind: 'netns', name: 'b' } },
    { kind: 'forget', made: { kind: 'netns', name: 'b' } },
    { kind: 'add', made: { kind: 'etc-netns', name: 'a' } },
    { kind: 'dir', path: '/run/vipmesh-lab/etcd' },
    { kind: 'process', role: 'whoami', name: 'w.1', pid: 10, start: '123', log: '/l' },
  ].map((e) => JSON.stringify(e)).join('\n');
  const state = replay(`${lines}\n{"kind":"process","role":"agent","na`);
  assert.equal(state.lab?.catalog, '/x/lab.yaml');
  assert.deepEqual(state.made, [{ kind: 'netns', name: 'a' }, { kind: 'etc-netns', name: 'a' }]);
  assert.deepEqual(state.processes.map((p) => p.name), ['w.1']);
  assert.deepEqual(state.dirs, ['/run/vipmesh-lab/etcd']);
});

test('replay of nothing is an empty lab', () => {
  assert.deepEqual(replay(''), { lab: undefined, made: [], processes: [], dirs: [] });
});
