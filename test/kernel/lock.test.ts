// The node lock against real processes: flock(2) through util-linux's flock,
// held by the open file description this process keeps, dropped by the kernel
// when the holder dies. Children are separate Node processes using the lock API.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { KernelError } from '../../src/kernel/types.js';
import { acquireLock, LockBusyError, readLockHolder } from '../../src/state/store.js';

const STORE = new URL('../../src/state/store.js', import.meta.url).href;

function runDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A Node child running `code` (an ES module) with the lock API as `store`; killed when the test ends. */
function child(t: TestContext, code: string, args: readonly string[]): ChildProcess {
  const program = `const store = await import(${JSON.stringify(STORE)});\nconst args = process.argv.slice(1);\n${code}`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', program, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return proc;
}

/** Resolves when the child prints `line` on a line of its own; rejects if it exits first. */
function printed(proc: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (out.split('\n').includes(line)) {
        proc.stdout?.off('data', onData);
        resolve();
      }
    };
    proc.stdout?.on('data', onData);
    proc.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before printing ${line}; it printed: ${out}`)));
  });
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

/** Another process's opinion, through its own descriptor: can it take the lock right now? */
async function othersCanLock(file: string): Promise<boolean> {
  const result = await execa('flock', ['--nonblock', file, 'true'], { reject: false });
  if (result.exitCode !== 0 && result.exitCode !== 1) throw new Error(`flock exited ${result.exitCode}: ${result.stderr}`);
  return result.exitCode === 0;
}

// Each child takes the lock ROUNDS times; half try once and retry on busy, half
// wait. While holding, a child logs `pid start <pid in the lock file>`, sleeps,
// logs `pid end`: two holders at once would interleave those lines.
const RACER = `
import { appendFileSync, readFileSync } from 'node:fs';
const [dir, log, rounds, mode] = args;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
for (let i = 0; i < Number(rounds); i++) {
  let lock;
  while (lock === undefined) {
    try {
      lock = await store.acquireLock(dir, { waitMs: mode === 'wait' ? 60000 : 0 });
    } catch (error) {
      if (!(error instanceof store.LockBusyError)) throw error;
      await sleep(5 + Math.random() * 15);
    }
  }
  const named = readFileSync(dir + '/lock', 'utf8').trim();
  appendFileSync(log, process.pid + ' start ' + named + '\\n');
  await sleep(3);
  appendFileSync(log, process.pid + ' end\\n');
  await lock.release();
}
`;

test('12 processes racing for the lock, 20 rounds each: never two holders at once', async (t) => {
  const dir = runDir(t);
  const log = join(dir, 'holders.log');
  writeFileSync(log, '');
  const CHILDREN = 12;
  const ROUNDS = 20;
  const procs = Array.from({ length: CHILDREN }, (_, i) =>
    child(t, RACER, [dir, log, String(ROUNDS), i % 2 === 0 ? 'try' : 'wait']),
  );
  // Everyone starts at once, when all the Node processes are up.
  await Promise.all(procs.map((proc) => printed(proc, 'ready')));
  for (const proc of procs) proc.stdin?.end('go\n');
  const codes = await Promise.all(procs.map(exited));
  assert.deepEqual(codes, procs.map(() => 0));

  const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
  assert.equal(lines.length, CHILDREN * ROUNDS * 2);
  const holds = new Map<string, number>();
  for (let i = 0; i < lines.length; i += 2) {
    const [pid, what, named] = lines[i]!.split(' ');
    assert.equal(what, 'start', `line ${i + 1}: ${lines[i]}`);
    assert.equal(named, pid, `line ${i + 1}: the lock file names ${named} while ${pid} holds it`);
    assert.equal(lines[i + 1], `${pid} end`, `line ${i + 2}: another holder entered while ${pid} held the lock`);
    holds.set(pid!, (holds.get(pid!) ?? 0) + 1);
  }
  assert.deepEqual([...holds.values()], procs.map(() => ROUNDS));
});

const HOLDER = `
const [dir] = args;
await store.acquireLock(dir, { waitMs: 0 });
console.log('held');
setInterval(() => {}, 60000);
`;

const WAITER = `
const [dir] = args;
console.log('waiting');
// 60 s only turns a hang into a failure; a dead holder's lock is free at once.
const lock = await store.acquireLock(dir, { waitMs: 60000 });
console.log('held');
await lock.release();
`;

test('a holder killed with kill -9 never blocks the next; readLockHolder names the live holder', async (t) => {
  const dir = runDir(t);
  const holder = child(t, HOLDER, [dir]);
  await printed(holder, 'held');
  assert.deepEqual(await readLockHolder(dir), { state: 'held', pid: holder.pid });
  await assert.rejects(acquireLock(dir, { waitMs: 0 }), (error: unknown) => {
    assert.ok(error instanceof LockBusyError);
    assert.equal(error.pid, holder.pid);
    assert.equal(error.path, join(dir, 'lock'));
    assert.equal(error.message, `another vipmesh (pid ${holder.pid}) holds ${join(dir, 'lock')}`);
    return true;
  });

  const waiter = child(t, WAITER, [dir]);
  await printed(waiter, 'waiting');
  holder.kill('SIGKILL');
  await printed(waiter, 'held');
  assert.equal(await exited(waiter), 0);

  // Nothing to take over: the file still names the dead holder's pid, and the lock is free.
  assert.deepEqual(await readLockHolder(dir), { state: 'free' });
  const lock = await acquireLock(dir, { waitMs: 0 });
  await lock.release();
});

test("the lock stays held after flock's own process exits, and is dropped on release", async (t) => {
  const dir = runDir(t);
  const file = join(dir, 'lock');
  const lock = await acquireLock(dir, { waitMs: 0 });
  assert.equal(lock.path, file);
  assert.equal(readFileSync(file, 'utf8'), `${process.pid}\n`);
  assert.equal(await othersCanLock(file), false);
  // flock(2) locks belong to the open file description: another one, even in this process, is refused.
  await assert.rejects(acquireLock(dir, { waitMs: 200 }), LockBusyError);
  await lock.release();
  await lock.release();
  assert.equal(await othersCanLock(file), true);
  assert.deepEqual(await readLockHolder(dir), { state: 'free' });
  assert.equal(readFileSync(file, 'utf8'), `${process.pid}\n`, 'the file is never deleted');
});

test('a lock file naming a live process that does not hold the lock (pid 1) blocks nothing', async (t) => {
  const dir = runDir(t);
  writeFileSync(join(dir, 'lock'), '1\n');
  assert.deepEqual(await readLockHolder(dir), { state: 'free' });
  const lock = await acquireLock(dir, { waitMs: 0 });
  assert.equal(readFileSync(join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
  assert.deepEqual(await readLockHolder(dir), { state: 'held', pid: process.pid });
  await lock.release();
});

test('a missing run directory or lock file reads as free and is created by acquireLock', async (t) => {
  const dir = join(runDir(t), 'run', 'vipmesh');
  assert.deepEqual(await readLockHolder(dir), { state: 'free' });
  const lock = await acquireLock(dir, { waitMs: 0 });
  assert.equal(readFileSync(join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
  await lock.release();
});

const WITHOUT_FLOCK = `
const [dir] = args;
try {
  await store.acquireLock(dir, { waitMs: 0 });
  console.log(JSON.stringify({ held: true }));
} catch (error) {
  console.log(JSON.stringify({ name: error.name, kind: error.kind, message: error.message }));
}
`;

test('without the flock program, acquireLock says which package to install', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (it hides flock in a private mount namespace)');
  const dir = runDir(t);
  // flock hidden behind /dev/null (not executable) in a mount namespace of the child's own.
  const script = 'for f in $(which -a flock); do mount --bind /dev/null "$f" || exit 99; done; exec "$@"';
  const program = `const store = await import(${JSON.stringify(STORE)});\nconst args = process.argv.slice(1);\n${WITHOUT_FLOCK}`;
  const result = await execa(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', process.execPath, '--input-type=module', '-e', program, dir],
    { reject: false },
  );
  assert.equal(result.exitCode, 0, `unshare/mount failed: ${result.stderr}`);
  const reported = JSON.parse(result.stdout) as { name?: string; kind?: string; message?: string };
  assert.equal(reported.name, new KernelError('', 'other').name);
  assert.match(reported.message ?? '', /flock program.*not installed.*util-linux/);
});
