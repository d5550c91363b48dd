// A restore that iptables-restore rejects, against this machine's kernel in a
// throwaway namespace (root): the error quotes the input lines to blame, whatever
// shape the host backend's message takes (`Error occurred at line: N`,
// `line N failed`, nft's `line N: CHAIN_DEL failed (…)`, a missing chain blamed
// on the COMMIT).
import assert from 'node:assert/strict';
import test, { type TestContext } from 'node:test';
import type { Family } from '../../src/catalog/types.js';
import { createRunner } from '../../src/kernel/exec.js';
import { createKernel, detectBackend, type Backend } from '../../src/kernel/index.js';
import { KernelError } from '../../src/kernel/types.js';
import { netns } from '../helpers/netns.js';

const lines = (...text: string[]): string => [...text, ''].join('\n');

async function setUp(t: TestContext) {
  const runner = createRunner();
  const backend: Backend = await detectBackend(runner);
  const kernel = createKernel(runner, { backend });
  const path = `/run/netns/${await netns(t, 'vmerr')}`;
  return { backend, kernel, path };
}

/** The input lines the error marks with `>`, as quoted. */
async function blamed(restore: Promise<void>): Promise<string[]> {
  let message = '';
  await assert.rejects(restore, (error: unknown) => {
    assert.ok(error instanceof KernelError, String(error));
    assert.equal(error.kind, 'rejected');
    message = error.message;
    return true;
  });
  assert.doesNotMatch(message, /^Try `/m, 'the --help hint is dropped');
  return [...message.matchAll(/^> +\d+ \| (.*)$/gm)].map((m) => m[1]!);
}

for (const family of [4, 6] as const satisfies readonly Family[]) {
  test(`IPv${family}: a jump to a chain that does not exist quotes the jump, not the COMMIT`, async (t) => {
    const { kernel, path } = await setUp(t);
    const text = lines('*filter', ':VIPMESH-A - [0:0]', '-A VIPMESH-A -j ACCEPT', '-A INPUT -j VIPMESH-MISSING', '-A VIPMESH-A -j RETURN', 'COMMIT');
    assert.deepEqual(await blamed(kernel.restoreIptables(path, family, text)), ['-A INPUT -j VIPMESH-MISSING']);
  });
}

test('deleting a chain that is still jumped to quotes the -X line', async (t) => {
  const { kernel, path } = await setUp(t);
  await kernel.restoreIptables(path, 4, lines('*filter', ':VIPMESH-B - [0:0]', '-A INPUT -j VIPMESH-B', 'COMMIT'));
  const text = lines('*filter', ':VIPMESH-A - [0:0]', '-F VIPMESH-B', '-X VIPMESH-B', 'COMMIT');
  assert.deepEqual(await blamed(kernel.restoreIptables(path, 4, text)), ['-X VIPMESH-B']);
});

test('rules the kernel refuses at commit are quoted, each where the backend can tell', async (t) => {
  const { backend, kernel, path } = await setUp(t);
  // DNAT belongs in PREROUTING and OUTPUT: the kernel refuses it in POSTROUTING.
  const bad = '-A POSTROUTING -p tcp -j DNAT --to-destination 192.0.2.1';
  const text = lines('*nat', bad, '-A OUTPUT -j ACCEPT', bad.replace('tcp', 'udp'), 'COMMIT');
  const quoted = await blamed(kernel.restoreIptables(path, 4, text));
  // nft names every refused rule; legacy commits the table as a whole and blames its COMMIT.
  assert.deepEqual(quoted, backend === 'nft' ? [bad, bad.replace('tcp', 'udp')] : ['COMMIT']);
});

test('an option that does not parse is quoted', async (t) => {
  const { kernel, path } = await setUp(t);
  const text = lines('*mangle', ':VIPMESH-OUTPUT - [0:0]', '-A VIPMESH-OUTPUT -j MARK --set-xmark zz', 'COMMIT');
  assert.deepEqual(await blamed(kernel.restoreIptables(path, 4, text)), ['-A VIPMESH-OUTPUT -j MARK --set-xmark zz']);
});

test('a table never closed is quoted at the end of the input', async (t) => {
  const { kernel, path } = await setUp(t);
  const text = lines('*filter', ':VIPMESH-A - [0:0]', '-A VIPMESH-A -j ACCEPT');
  assert.deepEqual(await blamed(kernel.restoreIptables(path, 4, text)), ['(end of input)']);
});
