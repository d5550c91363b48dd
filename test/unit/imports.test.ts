// The house's import rules (.dependency-cruiser.cjs): no import cycle, type-only imports
// included, and no I/O in the pure layers. The same check as `npm run check:deps`, run
// here so that `npm test` names it and a violation is one failed test among the others.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'node:test';
import { execa } from 'execa';
import { ROOT } from '../helpers/paths.js';

const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

function depcruiseBin(): string {
  const bin = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruiser.mjs');
  if (!existsSync(bin)) throw new Error(`dependency-cruiser is missing (no ${bin}): run npm ci`);
  return bin;
}

async function depcruise(cwd: string, dirs: readonly string[]) {
  const r = await execa(process.execPath, [depcruiseBin(), ...dirs, '--config', CONFIG, '--output-type', 'err'], {
    cwd, reject: false, env: { NO_COLOR: '1' },
  });
  return { exitCode: r.exitCode, output: `${r.stdout}${r.stderr}` };
}

test('the source has no import cycle and its pure modules do no I/O', async () => {
  const r = await depcruise(ROOT, ['src', 'bench', 'test']);
  assert.equal(r.exitCode, 0, `npm run check:deps finds violations:\n${r.output}`);
  assert.match(r.output, /no dependency violations found \(\d+ modules/);
});

test('the rules catch a type-only cycle, and a pure module importing fs, execa or kernel code or reaching sockets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-deps-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files: Record<string, string> = {
    'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
    'src/plan/types.ts': "import type { Row } from '../render/rows.js';\nexport interface Plan { rows: Row[] }\n",
    'src/render/rows.ts': "import type { Plan } from '../plan/types.js';\nexport interface Row { plan: Plan }\n",
    'src/plan/reads.ts': "import { readFileSync } from 'node:fs';\nexport const read = () => readFileSync('/x');\n",
    'src/render/spawns.ts': "import { execa } from 'execa';\nexport const go = () => execa('true');\n",
    'src/state/sockets.ts': "import net from 'node:net';\nexport const listen = () => net.createServer();\n",
    'src/render/via.ts': "import { listen } from '../state/sockets.js';\nexport const v = listen;\n",
    'src/kernel/run.ts': "export const spawnIt = () => 1;\nexport type Runner = () => number;\n",
    'src/reconcile/diff.ts':
      "import { spawnIt } from '../kernel/run.js';\nimport type { Runner } from '../kernel/run.js';\nexport const r: Runner = spawnIt;\n",
    'src/reconcile/diff-types.ts': "import type { Runner } from '../kernel/run.js';\nexport type R = Runner;\n",
    'src/catalog/load.ts': "import { readFile } from 'node:fs/promises';\nexport const load = (p: string) => readFile(p);\n",
    // A stand-in for the package, so that the import resolves into node_modules/ as it does in the project.
    'node_modules/execa/package.json': JSON.stringify({ name: 'execa', type: 'module', exports: './index.js' }),
    'node_modules/execa/index.js': 'export const execa = () => {};\n',
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }

  const r = await depcruise(dir, ['src']);
  assert.notEqual(r.exitCode, 0, r.output);
  assert.match(r.output, /error no-cycle: src\/(plan\/types|render\/rows)\.ts/);
  assert.match(r.output, /error pure-imports-no-io: src\/plan\/reads\.ts → (node:)?fs\b/);
  assert.match(r.output, /error pure-imports-no-io: src\/render\/spawns\.ts → node_modules\/execa\//);
  assert.match(r.output, /error pure-reaches-no-io: src\/render\/via\.ts → (node:)?net\b/);
  assert.match(r.output, /error pure-imports-no-kernel: src\/reconcile\/diff\.ts → src\/kernel\/run\.ts/);
  assert.doesNotMatch(r.output, /diff-types\.ts/, 'a type-only import of kernel types is allowed');
  assert.doesNotMatch(r.output, /catalog\/load\.ts/, 'the catalog loader may read files');
});
