import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCatalog, parseCatalog } from '../../../src/catalog/load.js';
import { compareProblems, formatProblems, joinPath, quoted, SHOWN_MAX, shown, sortProblems } from '../../../src/catalog/problems.js';

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

test('a name or value is quoted whole up to the longest valid name, then cut with its real size', () => {
  assert.equal(SHOWN_MAX, 253);
  const whole = 'a'.repeat(253);
  assert.equal(shown(whole), whole);
  assert.equal(shown(`${whole}b`), `${whole}…(254 bytes)`);
  // Bytes, not characters: é is two bytes in UTF-8, 😀 four; a surrogate pair is never split.
  assert.equal(shown('é'.repeat(300)), `${'é'.repeat(253)}…(600 bytes)`);
  assert.equal(shown(`${'a'.repeat(252)}😀😀`), `${'a'.repeat(252)}…(260 bytes)`);
  assert.equal(joinPath('tasks', `${whole}b`), `tasks.${whole}…(254 bytes)`);
  assert.equal(joinPath('', `${whole}b`), `${whole}…(254 bytes)`);
  assert.equal(quoted(`${whole}b`), `"${whole}…(254 bytes)"`);
  assert.deepEqual([quoted('x'), quoted(6), quoted(false), quoted(null), quoted([1]), quoted({}), quoted(undefined)],
    ['"x"', '6', 'false', 'null', 'a list', 'a map', 'nothing']);
});

test('a megabyte-long name or value is never echoed whole, in a path or in a message', () => {
  const huge = 'x'.repeat(1_000_000);
  const cutAt = (bytes: number): string => `${'x'.repeat(SHOWN_MAX)}…(${bytes} bytes)`;
  const cut = cutAt(1_000_000);
  const text = JSON.stringify({
    version: 1,
    networks: { appnet: { subnet: '10.0.1.0/24' }, [huge]: { subnet: huge } },
    nodes: { 'node-1': { address: huge } },
    services: {
      [`${huge}s`]: { vips: { appnet: '10.0.1.2' } },
      web: { vips: { appnet: '10.0.1.3', [`${huge}n`]: '10.0.9.9' }, lb: { scheduler: huge }, [`${huge}f`]: 1 },
    },
    tasks: {
      [`${huge}.1`]: { node: 'node-1', netns: '/run/netns/t' },
      // A bad health leaves the rest of the entry to be checked against the catalog (salvage.ts).
      'w.1': { service: `${huge}v`, node: `${huge}o`, netns: '/run/netns/w', health: huge },
      'a.1': { node: 'node-1', netns: '/run/netns/a', addresses: { appnet: huge } },
      's.1': { node: 'node-1', netns: '/run/netns/s', state: `${huge}-` },
    },
  });
  const result = parseCatalog(text);
  assert.equal(result.ok, false);
  if (result.ok) return;
  const lines = formatProblems(result.problems).split('\n');
  assert.ok(lines.length >= 10, lines.join('\n'));
  for (const line of lines) {
    assert.ok(line.length < 1000, `a problem of ${line.length} characters: ${line.slice(0, 400)}…`);
    assert.ok(!line.includes('x'.repeat(SHOWN_MAX + 1)), 'no run of the name longer than the cut');
  }
  const all = lines.join('\n');
  for (const expected of [
    `networks.${cut}: "${cut}" is not a valid name`,
    `networks.${cut}.subnet: ${cut} is not a CIDR`,
    `nodes.node-1.address: ${cut} is not a valid IPv4 or IPv6 address`,
    `services.${cutAt(1_000_001)}: "${cutAt(1_000_001)}" is not a valid name`,
    `services.web.${cutAt(1_000_001)}: unknown field "${cutAt(1_000_001)}"`,
    `services.web.lb.scheduler: "${cut}" is not one of:`,
    `services.web.vips.${cutAt(1_000_001)}: unknown network "${cutAt(1_000_001)}"`,
    `tasks.${cutAt(1_000_002)}: the task name is 1000002 characters long`,
    `tasks.a.1.addresses.appnet: ${cut} is not a valid IPv4 or IPv6 address`,
    `tasks.s.1.state: "${cutAt(1_000_001)}" is not a lowercase word`,
    `tasks.w.1.health: "${cut}" is not one of:`,
    `tasks.w.1.node: unknown node "${cutAt(1_000_001)}"`,
    `tasks.w.1.service: unknown service "${cutAt(1_000_001)}"`,
  ]) assert.ok(all.includes(expected), `missing: ${expected.slice(0, 120)}…\nin:\n${all}`);
  assert.ok(all.length < 20_000, `${all.length} characters of problems`);
});

test('a long repeated YAML key is quoted cut too', () => {
  const key = 'k'.repeat(1000);
  const cut = `${'k'.repeat(SHOWN_MAX)}…(1000 bytes)`;
  const result = parseCatalog(`version: 1\nnetworks:\n  ${key}: { subnet: 10.0.1.0/24 }\n  ${key}: { subnet: 10.0.2.0/24 }\n`);
  assert.equal(result.ok ? '' : formatProblems(result.problems), `networks.${cut}: duplicate key "${cut}" (line 4, column 3)`);
});
