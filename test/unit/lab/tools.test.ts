// The lab names a missing program and its package before it makes anything.
import assert from 'node:assert/strict';
import test from 'node:test';
import { missingTools } from '../../../src/lab/tools.js';

test('missingTools: nothing to say when all are there; the missing ones named with their package', async () => {
  assert.equal(await missingTools(['sh']), undefined);
  assert.equal(await missingTools(['sh', 'vipmesh-no-such-tool']), 'the lab needs vipmesh-no-such-tool (package vipmesh-no-such-tool), not found on PATH');
});
