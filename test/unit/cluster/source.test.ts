import assert from 'node:assert/strict';
import test from 'node:test';
import { parseSource } from '../../../src/cluster/source.js';

test('a path is a file source, whatever it looks like', () => {
  for (const text of ['/etc/vipmesh/catalog.yaml', 'catalog.yaml', './etcd:x', 'c:/x']) {
    assert.deepEqual(parseSource(text), { ok: true, source: { kind: 'file', path: text } });
  }
});

test('etcd:// and etcds:// name endpoints and a prefix', () => {
  assert.deepEqual(parseSource('etcd://127.0.0.1:2379,10.0.0.2:2379/vipmesh/'), {
    ok: true, source: { kind: 'etcd', secure: false, endpoints: ['127.0.0.1:2379', '10.0.0.2:2379'], prefix: '/vipmesh', text: 'etcd://127.0.0.1:2379,10.0.0.2:2379/vipmesh/' },
  });
  const tls = parseSource('ETCDS://[fd00::1]:2379,etcd-1.example:2379/a/b');
  assert.ok(tls.ok && tls.source.kind === 'etcd');
  assert.equal(tls.source.secure, true);
  assert.deepEqual(tls.source.endpoints, ['[fd00::1]:2379', 'etcd-1.example:2379']);
  assert.equal(tls.source.prefix, '/a/b');
});

test('a malformed etcd source says what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['etcd://127.0.0.1:2379', /prefix is missing/],
    ['etcd://127.0.0.1:2379/', /prefix is missing/],
    ['etcd://127.0.0.1/vipmesh', /endpoint "127\.0\.0\.1" is not HOST:PORT/],
    ['etcd://127.0.0.1:2379,/vipmesh', /an empty endpoint/],
    ['etcd://127.0.0.1:70000/vipmesh', /not HOST:PORT/],
    ['etcd://127.0.0.1:2379/a//b', /plain path/],
    ['http://127.0.0.1:2379/vipmesh', /file path, etcd:\/\//],
  ];
  for (const [text, message] of cases) {
    const parsed = parseSource(text);
    assert.equal(parsed.ok, false, text);
    if (!parsed.ok) assert.match(parsed.message, message, text);
  }
});
