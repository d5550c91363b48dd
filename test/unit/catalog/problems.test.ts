import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCatalog, parseCatalog } from '../../../src/catalog/load.js';
import { compareProblems, formatProblems, sortProblems } from '../../../src/catalog/problems.js';

test('formatProblems: one line per problem, sorted by path then message, bare message for an empty path', () => {
  const text = formatProblems([
    { path: 'services.b', message: 'second' },
    { path: 'services.a.ports[0]', message: 'zeta' },
    { path: '', message: 'whole file' },
    { path: 'services.a.ports[0]', message: 'alpha' },
  ]);
  assert.equal(text, 'whole file\nservices.a.ports[0]: alpha\nservices.a.ports[0]: zeta\nservices.b: second');
  assert.equal(formatProblems([]), '');
});

test('sortProblems orders like formatProblems and drops exact repeats', () => {
  const p = { path: 'x', message: 'm' };
  assert.deepEqual(sortProblems([{ path: 'y', message: 'm' }, p, { ...p }]), [p, { path: 'y', message: 'm' }]);
  assert.ok(compareProblems({ path: 'B', message: '' }, { path: 'a', message: '' }) < 0, 'code-unit order, not locale order');
});

test('loadCatalog reads a file, and an unreadable one is a single problem naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-catalog-'));
  try {
    const file = join(dir, 'catalog.json');
    await writeFile(file, '\uFEFF{ "version": 1, "networks": { "appnet": { "subnet": "10.0.1.0/24" } } }\n');
    const loaded = await loadCatalog(file);
    assert.equal(loaded.ok && loaded.catalog.networks.appnet?.subnet, '10.0.1.0/24');
    const missing = join(dir, 'nope.yaml');
    assert.deepEqual(await loadCatalog(missing), { ok: false, problems: [{ path: '', message: `can't read the catalog ${missing}: no such file` }] });
    assert.deepEqual(await loadCatalog(dir), { ok: false, problems: [{ path: '', message: `can't read the catalog ${dir}: it is a directory, not a regular file` }] });
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('parseCatalog never throws, whatever the text', () => {
  const texts = ['', '\0', ':', '[', '- - -', '{{', '&a [*a]', 'version: 1\nnetworks: !!set { a }', '*undefined', '? [a]\n: b'];
  for (const text of texts) {
    const result = parseCatalog(text);
    assert.equal(typeof result.ok, 'boolean', JSON.stringify(text));
    if (!result.ok) assert.ok(result.problems.length > 0);
  }
});

test('several YAML documents in one file are refused', () => {
  const result = parseCatalog('version: 1\n---\nversion: 1\n');
  assert.equal(result.ok ? '' : formatProblems(result.problems), 'the catalog must be a single YAML document, but a second one starts here (line 2, column 1)');
});
