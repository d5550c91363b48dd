// loadCatalog opens regular files only, up to a size cap: `-c` on a FIFO used
// to hang until a writer came, and `-c /dev/zero` read 512 MB.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadCatalog, MAX_CATALOG_BYTES, type LoadResult } from '../../../src/catalog/load.js';

const VALID = 'version: 1\nnetworks:\n  appnet: { subnet: 10.0.1.0/24 }\n';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-load-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The one problem of a refused file. */
function refusal(result: LoadResult): string {
  assert.equal(result.ok, false);
  if (result.ok) return '';
  assert.equal(result.problems.length, 1);
  assert.equal(result.problems[0]?.path, '');
  return result.problems[0]?.message ?? '';
}

// Each refusal must come back at once; the timeouts only catch a hang, as a FIFO open or read would be.
const HANG = { timeout: 20_000 };

test('a regular file is read, through a symlink too', HANG, async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'catalog.yaml');
  await writeFile(file, VALID);
  await symlink(file, join(dir, 'link.yaml'));
  for (const path of [file, join(dir, 'link.yaml')]) {
    const result = await loadCatalog(path);
    assert.equal(result.ok && result.catalog.networks['appnet']?.subnet, '10.0.1.0/24', path);
  }
  await writeFile(file, '');
  assert.match(refusal(await loadCatalog(file)), /the catalog is empty/, 'an empty file is read, and judged');
});

test('a missing file is one problem', HANG, async (t) => {
  const missing = join(await tempDir(t), 'nope.yaml');
  assert.equal(refusal(await loadCatalog(missing)), `can't read the catalog ${missing}: no such file`);
  assert.equal(refusal(await loadCatalog(join(missing, 'below'))), `can't read the catalog ${join(missing, 'below')}: no such file`);
});

test('a directory is refused', HANG, async (t) => {
  const dir = await tempDir(t);
  assert.equal(refusal(await loadCatalog(dir)), `can't read the catalog ${dir}: it is a directory, not a regular file`);
});

test('a FIFO is refused without waiting for a writer, and so is a symlink to one', HANG, async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'catalog.fifo');
  execFileSync('mkfifo', [fifo]);
  await symlink(fifo, join(dir, 'link.yaml'));
  assert.equal(refusal(await loadCatalog(fifo)), `can't read the catalog ${fifo}: it is a FIFO (named pipe), not a regular file`);
  assert.equal(refusal(await loadCatalog(join(dir, 'link.yaml'))),
    `can't read the catalog ${join(dir, 'link.yaml')}: it is a FIFO (named pipe), not a regular file`);
});

test('a character device is refused unread', HANG, async () => {
  // /dev/zero never ends; /dev/null would read as an empty catalog. Both are character devices on any Linux.
  for (const device of ['/dev/zero', '/dev/null']) {
    assert.ok(existsSync(device) && statSync(device).isCharacterDevice(), `this test needs the character device ${device}`);
    assert.equal(refusal(await loadCatalog(device)), `can't read the catalog ${device}: it is a character device, not a regular file`);
  }
});

test('a file above the cap is refused unread; one at the cap is read', HANG, async (t) => {
  const dir = await tempDir(t);
  const big = join(dir, 'big.yaml');
  // Sparse: no disk is used, and nothing is read if the cap holds.
  const handle = await open(big, 'w');
  await handle.truncate(MAX_CATALOG_BYTES + 1);
  await handle.close();
  assert.equal(MAX_CATALOG_BYTES, 64 * 1024 * 1024);
  assert.equal(refusal(await loadCatalog(big)),
    `can't read the catalog ${big}: it is ${MAX_CATALOG_BYTES + 1} bytes, more than the 64 MiB a catalog may be`);
  // At the cap: a valid catalog padded with spaces to exactly the cap is read and accepted (JSON: parsed in a blink).
  const full = join(dir, 'full.json');
  const json = '{ "version": 1 }';
  await writeFile(full, json + ' '.repeat(MAX_CATALOG_BYTES - json.length));
  assert.equal(statSync(full).size, MAX_CATALOG_BYTES);
  const result = await loadCatalog(full);
  assert.equal(result.ok ? '' : result.problems.map((p) => p.message).join('\n'), '');
});
