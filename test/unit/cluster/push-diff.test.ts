// What `catalog push` writes, from the file's keys and what etcd lists; and the
// one-line errors an unreachable or mistrusted etcd gives.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { parse } from 'yaml';
import { parseText } from '../../../src/catalog/parse-text.js';
import { parseCatalog } from '../../../src/catalog/load.js';
import { documentOf, showText } from '../../../src/cli/catalog.js';
import { entriesOf } from '../../../src/cluster/layout.js';
import { diffPush, type HeldValue } from '../../../src/cluster/push-diff.js';
import { describeEtcdError } from '../../../src/cluster/connect.js';
import { parseSource } from '../../../src/cluster/source.js';
import { FIXTURES } from '../../helpers/paths.js';

const P = '/vm';
const held = (entries: Record<string, [string, number]>): Map<string, HeldValue> =>
  new Map(Object.entries(entries).map(([key, [value, rev]]) => [key, { value, modRevision: String(rev) }]));

test('identical keys are left alone, changed and new ones put, vanished objects deleted', () => {
  const want = new Map([
    ['/vm/v1/services/web', '{"vips":{"a":"10.0.0.2"}}'],
    ['/vm/v1/tasks/web.1', '{"node":"n"}'],
    ['/vm/v1/tasks/web.3', '{"node":"n"}'],
  ]);
  const diff = diffPush(P, want, held({
    '/vm/v1/services/web': ['{"vips":{"a":"10.0.0.2"}}', 7],
    '/vm/v1/tasks/web.1': ['{"node":"m"}', 8],
    '/vm/v1/tasks/web.2': ['{"node":"n"}', 9],
  }));
  assert.deepEqual(diff.changes, [
    { kind: 'put', key: '/vm/v1/tasks/web.1', value: '{"node":"n"}', expectModRevision: '8' },
    { kind: 'delete', key: '/vm/v1/tasks/web.2', expectModRevision: '9' },
    { kind: 'put', key: '/vm/v1/tasks/web.3', value: '{"node":"n"}', expectModRevision: '0' },
  ]);
  assert.deepEqual([diff.put, diff.deleted, diff.unchanged], [2, 1, 1]);
});

test('the agents\' keys and anything not a catalog object are never deleted', () => {
  const diff = diffPush(P, new Map(), held({
    '/vm/v1/live/node-1': ['x', 3],
    '/vm/v1/health/web.1': ['{}', 4],
    '/vm/v1/volumes/a': ['{}', 5],
    '/vm/v1/tasks/': ['{}', 6],
    '/vm/v2/tasks/a': ['{}', 7],
    '/vmx/v1/tasks/a': ['{}', 8],
  }));
  assert.deepEqual(diff.changes, []);
  assert.deepEqual([diff.put, diff.deleted, diff.unchanged], [0, 0, 0]);
});

test('a fixture pushed onto itself changes nothing; onto an empty store, every object is new', () => {
  const want = entriesOf(P, parseText(readFileSync(join(FIXTURES, 'features.yaml'), 'utf8')).value);
  const same = diffPush(P, want, new Map([...want].map(([k, v], i) => [k, { value: v, modRevision: String(i + 2) }])));
  assert.deepEqual(same.changes, []);
  assert.equal(same.unchanged, want.size);
  const fresh = diffPush(P, want, new Map());
  assert.equal(fresh.put, want.size);
  assert.ok(fresh.changes.every((c) => c.kind === 'put' && c.expectModRevision === '0'));
});

test('show prints what a push stores: YAML and JSON both read back as the same catalog and the same keys', () => {
  for (const fixture of ['article-003-whoami.yaml', 'features.yaml', 'article-001-myservice.yaml']) {
    const text = readFileSync(join(FIXTURES, fixture), 'utf8');
    const entries = entriesOf(P, parseText(text).value);
    const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : 1));
    for (const format of ['yaml', 'json'] as const) {
      const shown = showText(documentOf(P, sorted), format);
      assert.deepEqual(entriesOf(P, parseText(shown).value), entries, `${fixture} as ${format}`);
      assert.deepEqual(parseCatalog(shown), parseCatalog(text), `${fixture} as ${format}`);
      assert.equal(showText(documentOf(P, sorted.reverse()), format), shown, 'the order etcd lists keys in does not matter');
    }
    assert.deepEqual(Object.keys(parse(showText(documentOf(P, sorted), 'yaml')) as object).slice(0, 1), ['version']);
  }
});

test('gRPC\'s connection errors become one line naming the endpoints, with the TLS flag to look at', () => {
  const plain = parseSource('etcd://127.0.0.1:1,127.0.0.1:2/vm');
  const secure = parseSource('etcds://127.0.0.1:3/vm');
  assert.ok(plain.ok && plain.source.kind === 'etcd' && secure.ok && secure.source.kind === 'etcd');
  assert.equal(
    describeEtcdError(plain.source, new Error('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ')),
    'etcd at 127.0.0.1:1,127.0.0.1:2: no connection (connect ECONNREFUSED 127.0.0.1:1)',
  );
  assert.equal(
    describeEtcdError(secure.source, new Error('14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate; if the root CA is installed locally, try running Node.js with --use-system-ca. Resolution note: ')),
    'etcd at 127.0.0.1:3: no connection (unable to verify the first certificate) (is --etcd-ca the CA that signed the members\' certificates?)',
  );
  const refused = describeEtcdError(secure.source, new Error('14 UNAVAILABLE: No connection established. Last error: 401DF08AB97F0000:error:0A000412:SSL routines:ssl3_read_bytes:ssl/tls alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:SSL alert number 42\n (2026-12-02T08:33:26.415Z). Resolution note: '));
  assert.equal(refused, 'etcd at 127.0.0.1:3: no connection (ssl/tls alert bad certificate) (the members refused the client certificate: check --etcd-cert and --etcd-key, and that the members\' CA signed them)');
  assert.equal(describeEtcdError(plain.source, new Error('4 DEADLINE_EXCEEDED: Deadline exceeded')), 'etcd at 127.0.0.1:1,127.0.0.1:2: Deadline exceeded');
});
