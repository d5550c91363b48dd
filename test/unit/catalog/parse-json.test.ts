import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDocument } from 'yaml';
import { countKeys, countProperties, readJsonCatalog } from '../../../src/catalog/parse-json.js';
import { parseText } from '../../../src/catalog/parse-text.js';
import { FIXTURES } from '../../helpers/paths.js';

/** What the YAML parser makes of the text, when it makes anything without a complaint. */
function viaYaml(text: string): { value: unknown } | undefined {
  const doc = parseDocument(text, { prettyErrors: false, merge: true });
  return doc.errors.length > 0 || doc.warnings.length > 0 ? undefined : { value: doc.toJS({ maxAliasCount: 10_000 }) };
}

function sameAsYaml(text: string): void {
  const fast = readJsonCatalog(text);
  assert.ok(fast !== undefined, `the fast path takes ${JSON.stringify(text).slice(0, 80)}`);
  const slow = viaYaml(text);
  assert.ok(slow !== undefined, 'YAML reads it without a complaint');
  assert.deepEqual(fast.value, slow.value);
  assert.equal(JSON.stringify(fast.value), JSON.stringify(slow.value), 'same keys in the same order');
}

test('JSON objects are read by JSON.parse, exactly as the YAML parser reads them', () => {
  sameAsYaml('{"version": 1}');
  sameAsYaml('  \n{"version": 1, "networks": {"a": {"subnet": "10.0.1.0/24"}}}\n\n');
  sameAsYaml('{\r\n  "version": 1,\r\n  "tasks": {}\r\n}\r\n');
  sameAsYaml('{\n\t"version": 1,\n\t"nodes": {\n\t\t"n": {"address": "192.0.2.1"}\n\t}\n}\n');
  sameAsYaml('{"a": "\\u0000\\ud800\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\", "b": "x # y", "c#": "- z"}');
  sameAsYaml('{"a": [-0, 1e400, 12345678901234567890, 1.5E+3, 0.1, -1e-7, true, false, null, {}, []]}');
  sameAsYaml('{"__proto__": {"x": 1}, "<<": {"y": 2}, "": 3}');
  sameAsYaml(`{"${'k'.repeat(2000)}": [{"${'j'.repeat(1100)}": 1}]}`);
  sameAsYaml(`{"a": ${'['.repeat(60)}${']'.repeat(60)}}`);
});

test('every fixture, as JSON, takes the fast path and reads as its YAML does', () => {
  for (const name of readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml'))) {
    const yaml = viaYaml(readFileSync(join(FIXTURES, name), 'utf8'));
    assert.ok(yaml !== undefined, name);
    for (const text of [JSON.stringify(yaml.value), JSON.stringify(yaml.value, null, 2)]) {
      const fast = readJsonCatalog(text);
      assert.ok(fast !== undefined, name);
      assert.deepEqual(fast.value, yaml.value, name);
    }
  }
});

test('whatever the YAML parser must judge is left to it', () => {
  const declined = [
    '',
    'version: 1',
    '[{"version": 1}]',
    '"version"',
    '{version: 1}',
    '{"version": 1,, }',
    '{"version": 1} # trailing comment',
    '\ufeff{"version": 1}',
    // JSON.parse keeps the last of two equal keys without a word; YAML reports them.
    '{"version": 1, "version": 1}',
    '{"a": {"b": 1, "b": 2}}',
    '{"a": 1, "\\u0061": 2}',
    '{"a": [{"x": 1}, {"y": 1, "y": 2}]}',
    // A bare CR is no line break to the YAML parser: it reads this differently.
    '{"version":\r1}',
    `{"a": ${'['.repeat(70)}${']'.repeat(70)}}`,
  ];
  for (const text of declined) assert.equal(readJsonCatalog(text), undefined, JSON.stringify(text));
});

test('a repeated JSON key is still reported with its path and position', () => {
  assert.deepEqual(parseText('{\n  "version": 1,\n  "tasks": {"t": {}, "t": {}}\n}').problems,
    [{ path: 'tasks.t', message: 'duplicate key "t" (line 3, column 22)' }]);
});

test('countKeys counts object keys only, whatever the strings hold', () => {
  assert.equal(countKeys('{}'), 0);
  assert.equal(countKeys('{"a": "b", "c": ["d", "e:"], "f\\"": {"g\\\\": ":"}}'), 4);
  assert.equal(countKeys('{"a" \n\t :1}'), 1);
  assert.equal(countKeys('{"a":\r1}'), -1);
  assert.equal(countProperties({ a: [{ b: 1, c: { d: null } }, 'e'], f: {} }), 5);
  assert.equal(countProperties(JSON.parse('{"__proto__": {"a": 1}}')), 2);
  assert.equal(countKeys('{"a":\r\n1,\r\n"b" : "\\\\"}'), 2);
  assert.equal(countProperties(JSON.parse(`{"a": ${'['.repeat(63)}${']'.repeat(63)}}`)), 1);
  assert.ok(Number.isNaN(countProperties(JSON.parse(`{"a": ${'['.repeat(64)}${']'.repeat(64)}}`))));
});
