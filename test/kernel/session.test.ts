// Long-lived shells against real namespaces: what a program prints, its exit
// code and its input survive the framing byte for byte; pooled commands run
// inside the namespace they name, for a few spawns in all.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import test from 'node:test';
import type { RunnerStats } from '../../src/kernel/exec.js';
import { createPooledRunner } from '../../src/kernel/session.js';
import { openSession } from '../../src/kernel/session.js';
import { netns } from '../helpers/netns.js';

const stats = (): RunnerStats => ({ spawns: 0, commands: 0, bytesWritten: 0 });

test('a session frames each command\'s output, exit code and input exactly', async (t) => {
  const name = await netns(t, 'vss');
  const counted = stats();
  const session = openSession(`/run/netns/${name}`, counted, 30_000);
  t.after(() => session.close());

  const inode = String(statSync(`/run/netns/${name}`).ino);
  const ns = await session.run({ file: 'readlink', args: ['/proc/self/ns/net'] });
  assert.equal(ns.stdout, `net:[${inode}]\n`, 'the program runs in the namespace');

  const tricky = "no newline, 'quotes' \"double\" $HOME `cmd` \\ \n@@vipmesh-out-x 0\n\u00e9";
  const echoed = await session.run({ file: 'cat', args: [], input: tricky });
  assert.equal(echoed.stdout, tricky, 'input and output pass unchanged, marker-like text included');

  const failing = await session.run({ file: 'sh', args: ['-c', 'printf out; printf err >&2; exit 7'] });
  assert.deepEqual([failing.exitCode, failing.stdout, failing.stderr, failing.failure], [7, 'out', 'err', undefined]);

  const both = await Promise.all([1, 2, 3].map((n) => session.run({ file: 'echo', args: [String(n)] })));
  assert.deepEqual(both.map((r) => r.stdout), ['1\n', '2\n', '3\n'], 'concurrent callers are served in order');
  assert.equal(counted.spawns, 1, 'one spawn for the whole session');
  assert.equal(counted.commands, 6);
});

test('a session in a missing namespace fails with the reason; a timeout ends the session', async (t) => {
  const gone = openSession('/run/netns/vipmesh-no-such-namespace', stats(), 30_000);
  const result = await gone.run({ file: 'true', args: [] });
  assert.match(result.failure ?? '', /could not be run/);
  assert.match(result.stderr, /vipmesh-no-such-namespace/);
  await gone.close();

  const name = await netns(t, 'vss');
  const slow = openSession(`/run/netns/${name}`, stats(), 30_000);
  const timedOut = await slow.run({ file: 'sleep', args: ['10'], timeoutMs: 200 });
  assert.equal(timedOut.failure, 'timed out after 200 ms');
  const after = await slow.run({ file: 'true', args: [] });
  assert.match(after.failure ?? '', /^not run: /);
  await slow.close();
});

test('a pooled runner enters each command\'s namespace, forks a few shells in all, and isolates failures', async (t) => {
  const names = await Promise.all([1, 2, 3, 4, 5, 6].map(() => netns(t, 'vsp')));
  const runner = createPooledRunner(2);
  t.after(() => runner.close!());
  const results = await Promise.all(names.flatMap((name) => [1, 2, 3].map(() =>
    runner.run({ file: 'readlink', args: ['/proc/self/ns/net'], netns: `/run/netns/${name}` }))));
  results.forEach((r, i) => {
    const name = names[Math.floor(i / 3)]!;
    assert.equal(r.stdout, `net:[${statSync(`/run/netns/${name}`).ino}]\n`, `command ${i} ran in ${name}`);
  });
  assert.equal(runner.stats.spawns, 2, '18 commands in 6 namespaces through 2 shells');

  const [missing, slow, fine] = await Promise.all([
    runner.run({ file: 'true', args: [], netns: '/run/netns/vipmesh-no-such-namespace' }),
    runner.run({ file: 'sleep', args: ['10'], netns: `/run/netns/${names[0]}`, timeoutMs: 300 }),
    runner.run({ file: 'echo', args: ['ok'], netns: `/run/netns/${names[1]}` }),
  ]);
  assert.notEqual(missing.exitCode, 0);
  assert.match(missing.stderr, /vipmesh-no-such-namespace/);
  assert.equal(slow.failure, 'timed out after 300 ms');
  assert.equal(fine.stdout, 'ok\n', 'the others are unaffected');
  const next = await runner.run({ file: 'echo', args: ['again'], netns: `/run/netns/${names[0]}` });
  assert.equal(next.stdout, 'again\n', 'a new shell replaces the one that timed out');
});
