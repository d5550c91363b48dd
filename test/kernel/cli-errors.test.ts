// No input reaches a stack trace: every way the command line can be given bad
// input, or be run without the privileges it needs, ends in one `vipmesh: …`
// message (a catalog's problems follow it, one line each) and a documented exit
// code, with nothing touched. Root: it runs the CLI as nobody with setpriv.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { NODE, syntheticCatalog } from '../../bench/synthetic.js';
import { CLI, FIXTURES, ROOT } from '../helpers/paths.js';
import { requireTool } from '../helpers/tools.js';

const NOBODY = 65534;
const CATALOG = join(FIXTURES, 'article-003-whoami.yaml');
const STACK_FRAME = /^\s+at /m;

interface Run {
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

function tempDir(t: TestContext, mode = 0o700): string {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-cli-errors-'));
  chmodSync(dir, mode);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function cli(t: TestContext, args: readonly string[], options: { asNobody?: boolean; env?: Record<string, string>; runDir?: string } = {}): Promise<Run> {
  const runDir = options.runDir ?? join(tempDir(t), 'run');
  const command = options.asNobody
    ? [await requireTool('setpriv'), [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, CLI, ...args]] as const
    : [process.execPath, [CLI, ...args]] as const;
  const result = await execa(command[0], command[1], {
    reject: false,
    stripFinalNewline: false,
    cwd: ROOT,
    env: { VIPMESH_RUN_DIR: runDir, VIPMESH_DEBUG: '', ...options.env },
    // Only catches a hang (a FIFO nobody writes to): every case ends in a few seconds.
    timeout: 30_000,
  });
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, timedOut: result.timedOut };
}

/**
 * One `vipmesh: ` line on stderr and the exit code; when that line announces a
 * catalog's N problems, exactly N lines follow it.
 */
function assertMessage(run: Run, exitCode: number, pattern: RegExp): void {
  assert.equal(run.timedOut, false, 'the command hung');
  assert.doesNotMatch(run.stderr, STACK_FRAME, `a stack trace on stderr:\n${run.stderr.slice(0, 2000)}`);
  assert.equal(run.exitCode, exitCode, `exit code; stderr:\n${run.stderr.slice(0, 2000)}`);
  assert.match(run.stderr, /\n$/, 'stderr ends its line');
  const [first = '', ...rest] = run.stderr.slice(0, -1).split('\n');
  assert.match(first, /^vipmesh: \S/);
  assert.ok(first.length < 1000, `a short message, not ${first.length} characters`);
  const announced = /\((\d+) problems?\); nothing was done:$/.exec(first);
  assert.equal(rest.length, announced === null ? 0 : Number(announced[1]), `one message:\n${run.stderr.slice(0, 2000)}`);
  assert.match(run.stderr, pattern);
}

const invalidDir = join(FIXTURES, 'invalid');
const invalid = readdirSync(invalidDir).sort();

test('there are invalid fixtures', () => {
  assert.ok(invalid.length >= 10, `${invalid.length} invalid fixtures`);
});

for (const fixture of invalid) {
  test(`plan -c invalid/${fixture}: exit 2, the catalog's problems, no stack`, async (t) => {
    const run = await cli(t, ['plan', '-c', join(invalidDir, fixture), '--node', 'node-1']);
    assertMessage(run, 2, /is not a valid catalog \(\d+ problems?\); nothing was done:/);
    assert.equal(run.stdout, '');
  });
}

for (const node of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
  test(`plan --node ${node}: a node the catalog does not have, exit 2`, async (t) => {
    const run = await cli(t, ['plan', '-c', CATALOG, '--node', node]);
    assertMessage(run, 2, new RegExp(node));
    assert.equal(run.stdout, '');
  });
}

test('plan --node with the longest argument Linux passes: exit 2, one short line', async (t) => {
  // execve refuses any single argument over MAX_ARG_STRLEN (128 KiB), so a 10 MB
  // --node cannot reach the program; test/unit/cli/input.test.ts checks one in-process.
  const run = await cli(t, ['plan', '-c', CATALOG, '--node', 'n'.repeat(128 * 1024 - 1)]);
  assertMessage(run, 2, /--node "n+"… \(131071 characters\) is not a node name/);
});

test('plan --kernel-release garbage: exit 2', async (t) => {
  const run = await cli(t, ['plan', '-c', CATALOG, '--node', 'node-1', '--kernel-release', 'garbage']);
  assertMessage(run, 2, /^vipmesh: --kernel-release "garbage" is not a kernel release/);
  assert.equal(run.stdout, '');
});

test('an unknown option or command: exit 2, one line', async (t) => {
  assertMessage(await cli(t, ['plan', '-c', CATALOG, '--frob']), 2, /^vipmesh: unknown option '--frob'/);
  assertMessage(await cli(t, ['plna']), 2, /^vipmesh: unknown command 'plna'/);
  assertMessage(await cli(t, ['plan', '--format', 'xml']), 2, /argument 'xml' is invalid/);
});

test('-c a missing file, a directory, /dev/zero: exit 2', async (t) => {
  const dir = tempDir(t);
  for (const catalog of [join(dir, 'missing.yaml'), dir, '/dev/zero']) {
    const run = await cli(t, ['plan', '-c', catalog, '--node', 'node-1']);
    assertMessage(run, 2, /is not a valid catalog/);
    assert.equal(run.stdout, '');
  }
});

test('-c a FIFO: exit 2 rather than waiting for a writer', async (t) => {
  const fifo = join(tempDir(t), 'catalog.yaml');
  await execa(await requireTool('mkfifo'), [fifo]);
  const run = await cli(t, ['plan', '-c', fifo, '--node', 'node-1']);
  assertMessage(run, 2, /is not a valid catalog/);
});

test('as a user without root, plan works and reconcile, cleanup and diff refuse once, touching nothing', async (t) => {
  const version = await cli(t, ['--version'], { asNobody: true });
  assert.equal(version.exitCode, 0,
    `uid ${NOBODY} cannot run ${CLI} (${version.stderr.trim()}): the test needs a checkout every user can read`);

  // A run directory anyone may write: left empty only because nothing was tried.
  const runDir = tempDir(t, 0o777);
  for (const verb of ['reconcile', 'cleanup', 'diff']) {
    const run = await cli(t, [verb, '-c', CATALOG, '--node', 'node-1'], { asNobody: true, runDir });
    assertMessage(run, 2, new RegExp(`^vipmesh: ${verb} must run as root \\(it needs CAP_NET_ADMIN and CAP_SYS_ADMIN`));
    assert.equal(run.stdout, '');
    assert.deepEqual(readdirSync(runDir), [], `${verb} left nothing in the run directory`);
  }

  const asRoot = await cli(t, ['plan', '-c', CATALOG, '--node', 'node-1', '--kernel-release', '6.1.0-28-cloud-amd64'], { runDir });
  const asNobody = await cli(t, ['plan', '-c', CATALOG, '--node', 'node-1', '--kernel-release', '6.1.0-28-cloud-amd64'], { asNobody: true, runDir });
  assert.equal(asNobody.stderr, '');
  assert.equal(asNobody.exitCode, 0);
  assert.equal(asNobody.stdout, asRoot.stdout, 'plan needs no root and prints the same');
  assert.match(asNobody.stdout, /^# netns host\n/);
});

test('an unexpected error: one line and exit 3, its stack only with VIPMESH_DEBUG=1', async (t) => {
  // A run directory under a file: the lock cannot be taken, which nothing expects.
  const file = join(tempDir(t), 'file');
  writeFileSync(file, '');
  const runDir = join(file, 'run');
  const run = await cli(t, ['reconcile', '-c', CATALOG, '--node', 'node-1'], { runDir });
  assertMessage(run, 3, /^vipmesh: internal error: .*ENOTDIR.* \(VIPMESH_DEBUG=1 prints where\)$/m);
  assert.equal(run.stdout, '');

  const debug = await cli(t, ['reconcile', '-c', CATALOG, '--node', 'node-1'], { runDir, env: { VIPMESH_DEBUG: '1' } });
  assert.equal(debug.exitCode, 3);
  assert.match(debug.stderr, /^vipmesh: internal error: .*ENOTDIR/);
  assert.match(debug.stderr, STACK_FRAME, 'VIPMESH_DEBUG=1 shows where');
});

test('stdout that fails (a full disk): exit 3, one line', async (t) => {
  const full = openSync('/dev/full', 'w');
  t.after(() => closeSync(full));
  const child = spawn(process.execPath, [CLI, 'plan', '-c', CATALOG, '--node', 'node-1'], {
    env: { ...process.env, VIPMESH_RUN_DIR: join(tempDir(t), 'run') }, stdio: ['ignore', full, 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assertMessage({ exitCode: exitCode ?? undefined, stdout: '', stderr, timedOut: false }, 3, /^vipmesh: cannot write the output: ENOSPC/);
});

test('a reader that stops early (vipmesh plan | head) is no error', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'catalog.json');
  // Megabytes of plan: far more than a pipe holds, so the CLI is still writing when the reader leaves.
  writeFileSync(file, JSON.stringify(syntheticCatalog({ services: 200, tasksPerService: 10, networks: 1, localTasks: 100 })));
  mkdirSync(join(dir, 'run'));
  const child = spawn(process.execPath, [CLI, 'plan', '-c', file, '--node', NODE], {
    env: { ...process.env, VIPMESH_RUN_DIR: join(dir, 'run') }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const first = await new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
  child.stdout.destroy();
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.match(first, /^# netns host\n/);
  assert.equal(stderr, '');
  assert.equal(exitCode, 0);
});
