// main.ts is a module; bin.ts is the program.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { execa } from 'execa';
import { internalErrorText } from '../../../src/cli/errors.js';
import { packageVersion } from '../../../src/cli/version.js';
import { vipmesh } from '../../helpers/cli.js';
import { ROOT } from '../../helpers/paths.js';

const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

test('importing main.js runs nothing', async () => {
  const script = `const m = await import(${JSON.stringify(MAIN)}); console.log(typeof m.main);`;
  const result = await execa(process.execPath, ['--input-type=module', '-e', script], { reject: false });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, 'function');
  assert.equal(result.stderr, '', 'no command was parsed or run');
});

test('--version prints package.json\'s version', async () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(packageVersion(), version);
  for (const flag of ['--version', '-V']) {
    const result = await vipmesh([flag]);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, `${version}\n`);
  }
});

test('a version that cannot be read says why instead of failing', () => {
  assert.match(packageVersion('/nonexistent/package.json'), /^unknown \(cannot read \/nonexistent\/package\.json: /);
});

test('an unexpected error is one line, with its stack only under VIPMESH_DEBUG=1', () => {
  const error = new Error('boom');
  assert.equal(internalErrorText(error, false), 'vipmesh: internal error: boom (VIPMESH_DEBUG=1 prints where)\n');
  const debug = internalErrorText(error, true);
  assert.match(debug, /^vipmesh: internal error: boom\nError: boom\n\s+at /);
  assert.equal(internalErrorText('a string', false), 'vipmesh: internal error: a string (VIPMESH_DEBUG=1 prints where)\n');
});
