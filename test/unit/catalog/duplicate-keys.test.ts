import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDocument } from 'yaml';
import { duplicateKeys, hasDuplicateKeys } from '../../../src/catalog/duplicate-keys.js';
import { parseText } from '../../../src/catalog/parse-text.js';

const OPTIONS = { prettyErrors: false, merge: true } as const;

/**
 * Holds duplicateKeys to the parser's own check (uniqueKeys), where the parser
 * found nothing else wrong: the same keys, in the same order, at the same offsets.
 * Returns whether the document repeats a key.
 */
function agrees(text: string): boolean {
  const reference = parseDocument(text, OPTIONS);
  const others = reference.errors.filter((e) => e.code !== 'DUPLICATE_KEY');
  if (others.length > 0) return false;
  const expected = reference.errors.map((e) => e.pos[0]);
  const unchecked = parseDocument(text, { ...OPTIONS, uniqueKeys: false });
  assert.equal(unchecked.errors.length, 0, JSON.stringify(text));
  assert.equal(hasDuplicateKeys(unchecked), expected.length > 0, JSON.stringify(text));
  const withTokens = parseDocument(text, { ...OPTIONS, uniqueKeys: false, keepSourceTokens: true });
  assert.deepEqual(duplicateKeys(withTokens)?.map((d) => d.pos[0]), expected, JSON.stringify(text));
  return expected.length > 0;
}

const CORPUS = [
  'a: 1\na: 2\n', 'a: 1\n"a": 2\n', "a: 1\n'a': 2\n", 'x:\n  a: 1\n  b: 2\n  a: 3\n', '{a: 1, a: 2}',
  '{"a": 1,"a": 2}', '{\n  "a": 1,\n\t"a": 2\n}', '[{a: 1, a: 2}]', '- a: 1\n  a: 2\n', '&x a: 1\n&y a: 2\n',
  '!!str a: 1\n!!str a: 2\n', '? a\n: 1\n? a\n: 2\n', '? a\n? a\n', ': 1\n: 2\n', '{: 1, : 2}', 'a: 1\n# c\na: 2\n',
  'a: 1\n\n\n   \na: 2\n', '1: a\n1.0: b\n', '0x1: a\n1: b\n', 'true: a\nTrue: b\n', 'null: a\n~: b\n', '.nan: a\n.nan: b\n',
  '<<: {a: 1}\n<<: {b: 2}\n', 'a: &k 1\n*k : 2\n', '? {a: 1, a: 2}\n: x\n', 'a: |\n  x\na: 2\n',
  'top:\n  - {k: 1, k: 2, k: 3}\n  - k: 1\n    k: 2\n', 'a: 1\n? |\n  a\n: 2\n', '"a\\u0062": 1\nab: 2\n', 'a : 1\na : 2\n',
  '{a: 1,\n a: 2,\n a: 3}', 'a: 1\n!!null : 2\n!!null : 3\n', '? \n: 1\n? \n: 2\n', '{? a, ? a}', '{a, a}', '[a: 1, a: 2]',
  '"b":\n  ~: \nb:\n', 'a:\n? a\n', '{"a": {"b": 1, "b": 2}, "a": 3}',
];

test('repeated keys are found where, and in the order, the parser itself finds them', () => {
  for (const text of CORPUS) agrees(text);
});

test('…also in thousands of generated documents', () => {
  let seed = 7;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const keys = ['a', 'b', '"a"', "'a'", '? a', '', '&x a', '!!str a', '1', '1.0', 'true', 'null', '~', '.nan', '<<', 'c d', '*x'];
  const values = ['1', 'x', '"q"', '*x', '&y v', '|\n  lit', '{}', '[]', '{a: 1, a: 2}', '[a: 1]', '{"a":1,"a":2}', ''];
  const block = (depth: number, indent: string): string => {
    let out = '';
    for (let n = 1 + Math.floor(random() * 4); n > 0; n--) {
      const key = pick(keys);
      const head = key.startsWith('?') ? `${indent}${key}\n${indent}:` : `${indent}${key}:`;
      const r = random();
      if (depth < 3 && r < 0.35) out += `${head}\n${block(depth + 1, `${indent}  `)}`;
      else if (depth < 3 && r < 0.5) out += `${head}\n${indent}  - ${pick(values)}\n${indent}  - ${pick(values)}\n`;
      else out += `${head} ${pick(values).replace('\n', `\n${indent}`)}\n`;
      if (random() < 0.1) out += `${indent}# comment\n`;
    }
    return out;
  };
  let repeated = 0;
  for (let i = 0; i < 2000; i++) if (agrees(block(0, ''))) repeated++;
  assert.ok(repeated > 500, `${repeated} documents repeat a key`);
});

test('through parseText: path, key and position, in YAML and in JSON', () => {
  assert.deepEqual(parseText('version: 1\nservices:\n  web:\n    vips: {}\n    ports: [{ target: 1, target: 2 }]\n').problems,
    [{ path: 'services.web.ports[0].target', message: 'duplicate key "target" (line 5, column 26)' }]);
  assert.deepEqual(parseText('version: 1\ntasks:\n  a: {}\n  b: {}\n  a: {}\n').problems,
    [{ path: 'tasks.a', message: 'duplicate key "a" (line 5, column 3)' }]);
  // Where the parser had to recover from another error, it judges repeated keys itself.
  assert.deepEqual(parseText('a: 1\na: 2\nb: [\n').problems, [
    { path: 'a', message: 'duplicate key "a" (line 2, column 1)' },
    { path: '', message: 'YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ] (line 4, column 1)' },
  ]);
});
