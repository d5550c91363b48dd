// The per-namespace shell session against real namespaces: what a program prints,
// its exit code and its input survive the framing byte for byte, and it runs
// inside the namespace.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import test from 'node:test';
import { createRunner } from '../../src/kernel/exec.js';
import { netns } from '../helpers/netns.js';

test('a session runs each command inside its namespace and frames its output exactly', async (t) => {
  const name = await netns(t, 'vss');
  const runner = createRunner();
  const session = runner.session!(`/run/netns/${name}`);
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
  assert.equal(runner.stats.spawns, 1, 'one spawn for the whole session');
  assert.equal(runner.stats.commands, 6);
});

test('a session in a missing namespace fails each command with the reason; a timeout ends the session', async (t) => {
  const runner = createRunner();
  const gone = runner.session!('/run/netns/vipmesh-no-such-namespace');
  const result = await gone.run({ file: 'true', args: [] });
  assert.match(result.failure ?? '', /could not be run/);
  assert.match(result.stderr, /vipmesh-no-such-namespace/);
  await gone.close();

  const name = await netns(t, 'vss');
  const slow = runner.session!(`/run/netns/${name}`);
  const timedOut = await slow.run({ file: 'sleep', args: ['10'], timeoutMs: 200 });
  assert.equal(timedOut.failure, 'timed out after 200 ms');
  const after = await slow.run({ file: 'true', args: [] });
  assert.match(after.failure ?? '', /^not run: /);
  await slow.close();
});
