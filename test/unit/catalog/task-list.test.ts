import assert from 'node:assert/strict';
import { test } from 'node:test';
import { namesOf, noNames } from '../../../src/catalog/names.js';
import { taskList } from '../../../src/catalog/task-list.js';
import type { Catalog, Task } from '../../../src/catalog/types.js';
import { catalogOf } from '../../helpers/catalog.js';

test('a validated catalog lists its tasks by name, once', () => {
  const catalog = catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { n: { address: 192.0.2.1 } }
tasks:
  b.1: { node: n, netns: /run/netns/b }
  "10": { node: n, netns: /run/netns/ten }
  a.1: { node: n, netns: /run/netns/a }
  B.2: { node: n, netns: /run/netns/B }
`);
  const list = taskList(catalog);
  assert.deepEqual(list.map((t) => t.name), ['10', 'B.2', 'a.1', 'b.1']);
  assert.equal(taskList(catalog), list);
  assert.deepEqual(new Set(list), new Set(Object.values(catalog.tasks)));
});

test('a catalog built by hand is listed from its record', () => {
  const task = (name: string): Task => ({ name, node: 'n', netns: `/run/netns/${name}`, addresses: noNames(), state: 'running', health: 'unknown', weight: 1 });
  const catalog: Catalog = {
    version: 1, networks: noNames(), nodes: noNames(), services: noNames(), tasks: namesOf([['z', task('z')], ['2', task('2')], ['a', task('a')]]),
  };
  assert.deepEqual(taskList(catalog).map((t) => t.name), ['2', 'a', 'z']);
});
