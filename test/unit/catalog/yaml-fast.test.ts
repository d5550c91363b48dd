// The fast YAML road (parse-yaml-fast.ts, js-yaml) against the `yaml` package
// road it stands in for: every fixture, synthetic catalogs and random documents
// go through parseText and parseTextSlowly, and value and problems must be equal.
// Where the fast road declines, parseText is the slow road, so the tests also
// count acceptances: a fast road that declined everything would pass vacuously.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { parseText, parseTextSlowly } from '../../../src/catalog/parse-text.js';
import { readYamlFastWhy } from '../../../src/catalog/parse-yaml-fast.js';
import { syntheticCatalog } from '../../../bench/synthetic.js';
import { ROOT } from '../../helpers/paths.js';

/** Whether the fast road took `text`; asserts it agrees with the slow road either way. */
function agrees(text: string, label = JSON.stringify(text)): boolean {
  const fast = readYamlFastWhy(text);
  const slow = parseTextSlowly(text);
  assert.deepStrictEqual(parseText(text), slow, label);
  if (fast.value !== undefined) {
    assert.deepStrictEqual(slow.problems, [], `${label}: the fast road took a text the slow one complains about`);
    assert.deepStrictEqual(fast.value.value, slow.value, label);
  }
  return fast.value !== undefined;
}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) filesUnder(path, out);
    else if (/\.(ya?ml|json)$/.test(name) && !/^(package(-lock)?|tsconfig)\.json$/.test(name)) out.push(path);
  }
  return out;
}

test('every fixture file, as written and re-written as YAML, reads alike on both roads', () => {
  const files = [...filesUnder(join(ROOT, 'fixtures')), ...filesUnder(join(ROOT, 'test')), ...filesUnder(join(ROOT, 'scripts'))];
  assert.ok(files.length >= 25, `found only ${files.length} fixture files`);
  let fast = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (agrees(text, file) && !file.endsWith('.json')) fast++;
    const value = parseTextSlowly(text).value;
    if (value !== undefined) {
      assert.ok(agrees(stringify(value), `${file} re-written`), `${file} re-written: the fast road declined`);
      agrees(stringify(value, { indentSeq: false, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' }), `${file} quoted`);
      agrees(stringify(value, { collectionStyle: 'flow' }), `${file} flow`);
    }
  }
  // Only the duplicate-key fixture should need the slow road among the YAML files.
  const yamlFiles = files.filter((f) => !f.endsWith('.json')).length;
  assert.ok(fast >= yamlFiles - 1, `the fast road took ${fast} of ${yamlFiles} YAML fixtures`);
});

test('synthetic catalogs read alike on both roads, by the fast one', () => {
  for (const services of [1, 7, 40]) {
    const catalog = syntheticCatalog({ services, tasksPerService: 3, networks: 2, localTasks: 2 });
    assert.ok(agrees(stringify(catalog), `synthetic ${services}`), `synthetic ${services}: the fast road declined`);
    assert.deepStrictEqual(readYamlFastWhy(stringify(catalog)).value?.value, JSON.parse(JSON.stringify(catalog)));
  }
});

/** Scalars as YAML 1.2 core reads them and as YAML 1.1 or js-yaml's defaults would not. */
const SCALARS = [
  'yes', 'no', 'Yes', 'NO', 'on', 'off', 'y', 'n', 'true', 'True', 'TRUE', 'tRue', 'false', 'False', 'FALSE',
  '~', 'null', 'Null', 'NULL', 'nUll', '', '""', "''", '0', '-0', '+0', '00', '017', '0o17', '0O17', '0o19', '0x1F', '0X1F', '0x', '+0x1', '-0x1',
  '0b101', '1_000', '12', '+12', '-12', '123456789012345678901234567890', '0x123456789abcdef0123',
  '1.5', '.5', '5.', '-.5', '1e3', '1E3', '1e+3', '1.5e-3', '.5e3', 'e3', '1e', '1.2.3', '.inf', '-.inf', '+.inf', '.Inf', '.INF', '.iNf',
  '.nan', '.NaN', '.NAN', '.nAn', 'nan', 'inf', '2001-12-14', '2001-12-14t21:59:43.10-05:00', '12:30:45', '190:20:30', '1:20',
  '"12"', "'12'", '"true"', '"null"', '"~"', '"0x1F"', '"a\\tb\\u00e9\\x41"', "'it''s'", '"\\/"', '"a\\\\b"',
  'plain words here', 'a#b', 'a #comment', 'a: b', 'http://x.example/a?b=c', '-1.5e+10', '=', '<<', '"<<"', 'x:y', '[]', '{}',
  '[1, "2", three, 0o7, yes]', '{a: 1, b: [x, ~], "c": null}', '!!str 12', '!!int "12"', '! 12', '!local x', '&a1 12',
  '|\n    line one\n    line two', '|-\n    keep\n\n    it', '>\n    folded\n    text\n\n    para', '>+\n    kept\n\n', '|2\n     indented',
  '"multi\n    line\n\n    quoted"', 'plain\n    continued\n    line', "'single\n    multi'", '@reserved', '`tick', '%percent',
  '- not a key', '"unterminated', '[a, b', '{a: 1', 'a: b: c', '\t12', '"x"#c',
];

const KEYS = [
  'a', 'b', 'name', 'x-y', '"quoted"', "'single'", '1', '0x1', '1.0', 'true', 'yes', 'null', '~', '""', '"null"', '<<', '"<<"',
  '__proto__', 'constructor', 'a b', '[a]', '{a: 1}', '? a', '? [a, b]', '*a1', '&k1 key', '!!str tagged', 'é', 'NaN', '.nan',
];

/** A small deterministic generator, so a failure reproduces. */
function generator(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

/** A random YAML document: nested block maps and lists, anchors, aliases, merges, comments. */
function randomDocument(random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const anchors: string[] = [];
  const mapAnchors: string[] = [];
  let counter = 0;
  const lines: string[] = [];
  const block = (indent: string, depth: number): void => {
    const entries = 1 + Math.floor(random() * 4);
    const seq = depth > 0 && random() < 0.3;
    for (let i = 0; i < entries; i++) {
      const lead = seq ? `${indent}- ` : `${indent}${random() < 0.85 ? `k${depth}${i}${random() < 0.05 ? '' : `-${counter++}`}` : pick(KEYS)}: `;
      const r = random();
      if (!seq && r < 0.08 && mapAnchors.length > 0) {
        lines.push(`${indent}<<: ${random() < 0.7 ? `*${pick(mapAnchors)}` : `[${mapAnchors.map((a) => `*${a}`).join(', ')}]`}`);
      } else if (depth < 3 && r < 0.35) {
        const anchor = random() < 0.25 ? `a${counter++}` : undefined;
        lines.push(`${lead}${anchor === undefined ? '' : `&${anchor}`}`.trimEnd());
        block(seq ? `${indent}  ` : `${indent}${random() < 0.2 ? '' : '  '}`, depth + 1);
        if (anchor !== undefined) { anchors.push(anchor); mapAnchors.push(anchor); }
      } else if (r < 0.42 && anchors.length > 0) {
        lines.push(`${lead}*${pick(anchors)}`);
      } else {
        const anchor = random() < 0.1 ? `s${counter++}` : undefined;
        const scalar = pick(SCALARS).replaceAll('\n    ', `\n${indent}    `);
        lines.push(`${lead}${anchor === undefined ? '' : `&${anchor} `}${scalar}`.trimEnd());
        if (anchor !== undefined) anchors.push(anchor);
      }
      if (random() < 0.05) lines.push(`${indent}# a comment`);
    }
  };
  block('', 0);
  return `${lines.join('\n')}\n`;
}

// SEED and RUNS widen the search by hand (SEED=7 RUNS=50000 node --test …); the defaults keep the suite short.
test('random documents read alike on both roads', () => {
  const random = generator(Number(process.env.SEED ?? 15));
  let fast = 0;
  const runs = Number(process.env.RUNS ?? 3000);
  for (let i = 0; i < runs; i++) if (agrees(randomDocument(random))) fast++;
  // Most random documents hold something the fast road declines; enough must not.
  assert.ok(fast > runs / 10, `the fast road took only ${fast} of ${runs} random documents`);
});

test('one scalar, key or snippet at a time reads alike on both roads', () => {
  let fast = 0;
  for (const scalar of SCALARS) {
    for (const text of [`v: ${scalar}\n`, `- ${scalar}\n`, `${scalar}\n`, `m:\n  v: ${scalar.replaceAll('\n', '\n  ')}\n`, `[${scalar}]`, `{v: ${scalar}}`]) {
      if (agrees(text)) fast++;
    }
  }
  for (const key of KEYS) {
    for (const text of [`${key}: 1\n`, `a: 1\n${key}: 2\n`, `x: &a1 {q: 1}\ny:\n  ${key}: 2\n  ${key}: 3\n`, `{${key}: 1}`]) agrees(text);
  }
  assert.ok(fast > SCALARS.length * 2, `the fast road took only ${fast} scalar documents`);
  const snippets = [
    '', '# only a comment\n', '---\na: 1\n', '---\na: 1\n...\n', 'a: 1\n---\nb: 2\n', '%YAML 1.1\n---\na: yes\n', '%YAML 1.2\n---\na: 1\n',
    'a: 1\r\nb: 2\r\n', 'a: 1\rb: 2\r', '\ufeffa: 1\n', 'a:\n- 1\n- 2\n', 'a:\n  - 1\n  -   2\n', '- - 1\n  - 2\n- 3\n',
    'a: [1,\n2]\n', 'a: [1,\n  2]\n', 'a: {b: 1,\n  c: 2}\n', 'a:\n  [1, 2]\n', 'a: &x\n  b: 1\nc: *x\nd: *x\n',
    'base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n', 'base: &b {x: 1}\nm:\n  y: 0\n  <<: *b\n  x: 2\n', 'm:\n  <<: {x: 1}\n  <<: {y: 2}\n',
    'b1: &b1 {x: 1}\nb2: &b2 {x: 2, y: 2}\nm:\n  <<: [*b1, *b2]\n', 'm:\n  <<: 1\n', 'm:\n  <<: [1]\n', 'b: &b [1]\nm:\n  <<: *b\n',
    'a: &x 1\nb: *x\n&x c: 2\nd: *x\n', 'a: *nope\n', 'a: &x: 1\n', 'a: &a {b: *a}\n', 'a: &a [1]\nb: &b [*a, *a]\nc: [*b, *b]\n',
    `a: ${'x'.repeat(1100)}\n`, `${'k'.repeat(1030)}: 1\n`, `"${'k'.repeat(1030)}": 1\n`, 'a: 1 # c\nb: "2"# c\n', 'a: "x" #c\n',
    'a:\n\tb: 1\n', 'a: "\t"\n', 'a: |\n  x\n b: 1\n', 'a: >-\n  x\n  y\n', 'a: b\n  c\n', 'a:\n  b\n  c: d\n', 'key with spaces: v\n',
    'a: 1\n... \n', 'a: 1\nb:\n', ': 1\n', '? a\n: 1\n', '? [a]\n: 1\n', '[a]: 1\n', '{a: 1}: 2\n', '*a : 1\n', 'a: &k v\n*k : 2\n',
    'a: !!str 1\n', 'a: !!map {}\n', 'a: !!seq []\n', 'a: !x 1\n', '!!map\na: 1\n', 'a: "\\q"\n', 'a: "\\x4"\n', 'a: "\u0007"\n',
    'a: 1\nA: 2\n', '1: a\n"1": b\n', '1: a\n0x1: b\n', '1: a\n1.0: b\n', 'null: a\n"": b\n', '~: a\n"null": b\n', '.nan: a\n.nan: b\n',
    'true: a\n"true": b\n', '__proto__: {polluted: 1}\n', 'a:\n  __proto__: 1\n', 'a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n',
  ];
  for (const text of snippets) agrees(text);
});

test('anchors, aliases and merge keys, as operators write them, take the fast road', () => {
  const services = Array.from({ length: 50 }, (_, i) => `  svc-${i}:\n    <<: *defaults\n    vips: {net-0: 10.1.0.${i + 2}}\n    ports: *ports`);
  const text = `x-defaults: &defaults\n  endpointMode: vip\n  lb: {scheduler: rr}\nx-ports: &ports\n  - {target: 80, published: 8080}\nservices:\n${services.join('\n')}\n`;
  assert.ok(agrees(text), readYamlFastWhy(text).why);
  const value = readYamlFastWhy(text).value?.value as { services: Record<string, { lb: unknown; ports: unknown }> };
  assert.deepStrictEqual(value.services['svc-49']?.lb, { scheduler: 'rr' });
  assert.deepStrictEqual(value.services['svc-0']?.ports, [{ target: 80, published: 8080 }]);
  // An alias inside an anchored node makes the slow road's alias count nonlinear: declined.
  assert.equal(readYamlFastWhy('a: &a [1]\nb: &b [*a]\nc: *b\n').why, 'alias inside anchor b');
  assert.equal(readYamlFastWhy('a: 1\na: 2\n').why.startsWith('js-yaml: duplicated mapping key'), true);
});
