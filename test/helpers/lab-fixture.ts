// fixtures/lab.yaml as the lab's tests read it, and the CLI as a user runs it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { loadCatalog } from '../../src/catalog/load.js';
import type { Catalog } from '../../src/catalog/types.js';
import { CLI, FIXTURES } from './paths.js';

export const LAB = join(FIXTURES, 'lab.yaml');
const loaded = await loadCatalog(LAB);
assert.ok(loaded.ok, 'fixtures/lab.yaml is valid');
export const catalog: Catalog = loaded.catalog;
export const whoamiTasks = Object.values(catalog.tasks).filter((t) => t.service === 'whoami');
export const VIP = catalog.services['whoami']!.vips['appnet']!;

export function cli(args: readonly string[], timeoutMs: number) {
  return execa(process.execPath, [CLI, ...args], { reject: false, all: true, timeout: timeoutMs });
}
