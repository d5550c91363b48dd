import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { median } from '../../../bench/lab.js';
import { catalogText, commandLine, renderTable, runOne, type Run } from '../../../bench/plan.js';

test('one run loads, plans and renders a catalog file, JSON and YAML alike', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-bench-test-'));
  try {
    const runs: Run[] = [];
    for (const format of ['json', 'yaml'] as const) {
      const file = join(dir, `catalog.${format}`);
      writeFileSync(file, catalogText(20, format));
      runs.push(await runOne(file));
    }
    const [json, yaml] = runs;
    assert.equal(json?.namespaces, 12);
    assert.equal(json?.outputHash, yaml?.outputHash);
    assert.ok((json?.totalMs ?? 0) >= (json?.loadMs ?? 1));
    assert.ok((json?.maxRssBytes ?? 0) > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the table: medians per column and the command that reproduces it', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const run = (totalMs: number): Run => ({
    loadMs: totalMs / 2, planMs: totalMs / 4, renderMs: totalMs / 4, totalMs, cpuMs: totalMs, maxRssBytes: 100_000_000,
    namespaces: 12, outputBytes: 1_000_000, outputHash: 'abc',
  });
  const markdown = renderTable([{ services: 1000, format: 'json', textBytes: 2_000_000, runs: [run(300), run(100), run(200)] }]);
  assert.match(markdown, /\| 1,000 \| 10,000 \| JSON \| 2\.0 MB \| 100 \| 50\.0 \| 50\.0 \| \*\*200\*\* \| 200 \| 100 MB \| 12 namespaces/);
  assert.match(markdown, /```sh\nnpm run build && node dist\/bench\/plan\.js\n```/);
  assert.equal(commandLine({ runs: 1, sizes: [100] }), 'npm run build && node dist/bench/plan.js --runs 1 --sizes 100');
});
