import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { parseText } from '../../../src/catalog/parse-text.js';
import { catalogOf, entriesOf, healthKey, liveKey, meaningOf } from '../../../src/cluster/layout.js';
import { FIXTURES } from '../../helpers/paths.js';

const P = '/vipmesh';

test('keys say what they hold', () => {
  assert.deepEqual(meaningOf(P, '/vipmesh/v1/tasks/whoami.1.x'), { kind: 'object', collection: 'tasks', name: 'whoami.1.x' });
  assert.deepEqual(meaningOf(P, liveKey(P, 'node-1')), { kind: 'live', node: 'node-1' });
  assert.deepEqual(meaningOf(P, healthKey(P, 'web.1')), { kind: 'health', task: 'web.1' });
  for (const key of ['/vipmesh/v1/tasks/', '/vipmesh/v1/tasks', '/vipmesh/v2/tasks/a', '/other/v1/tasks/a', '/vipmesh/v1/volumes/a']) {
    assert.deepEqual(meaningOf(P, key), { kind: 'other' }, key);
  }
});

test('a file, split into keys and put together again, is the same catalog', () => {
  const text = readFileSync(join(FIXTURES, 'article-003-whoami.yaml'), 'utf8');
  const parsed = parseText(text);
  const entries = entriesOf(P, parsed.value);
  assert.equal(entries.size, 2 + 3 + 1 + 4);
  assert.equal(entries.get('/vipmesh/v1/services/whoami'), JSON.stringify({ vips: { 'dig-default': '10.0.3.10' }, ports: [{ target: 80, published: 80 }] }));
  // etcd hands keys back sorted, not in the file's order.
  const fromEtcd = catalogOf(P, [...entries].sort(([a], [b]) => (a < b ? -1 : 1)));
  assert.deepEqual(fromEtcd, parseCatalog(text));
});

test('a value that is not JSON is a problem naming its key, reported with the rest', () => {
  const result = catalogOf(P, [
    ['/vipmesh/v1/networks/n', '{"subnet":'],
    ['/vipmesh/v1/services/s', '{"vips":{"nope":"10.0.0.2"}}'],
  ]);
  assert.equal(result.ok, false);
  if (result.ok) return;
  const text = result.problems.map((p) => `${p.path}: ${p.message}`).join('\n');
  assert.match(text, /networks\.n: the value of etcd key \/vipmesh\/v1\/networks\/n is not JSON/);
  assert.match(text, /nope/);
});

test('live and health keys are not part of the catalog', () => {
  const text = readFileSync(join(FIXTURES, 'article-003-whoami.yaml'), 'utf8');
  const entries = [...entriesOf(P, parseText(text).value), [liveKey(P, 'node-1'), 'not json'], [healthKey(P, 'curl'), '{}']] as const;
  assert.deepEqual(catalogOf(P, entries), parseCatalog(text));
});
