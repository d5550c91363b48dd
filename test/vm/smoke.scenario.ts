// Proves the kernel lane itself: IPVS is there and works inside a fresh namespace,
// and the built CLI runs in the guest. Guest-only: the host kernel has no IPVS.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import test from 'node:test';
import { execa } from 'execa';
import { Plumbing } from '../../src/lab/plumbing.js';

const CLI = '/vipmesh/dist/src/cli/bin.js';

if (process.env['VIPMESH_LANE'] !== '1') {
  // Fails the whole file at once rather than letting each test fail obscurely.
  throw new Error('smoke.scenario is a guest-only scenario: it runs inside the kernel lane VM (test/lane/run.sh, npm run test:lane), not on the host');
}

test('smoke: an IPVS fwmark service in a fresh namespace', async (t) => {
  const plumbing = new Plumbing();
  t.after(() => plumbing.remove());
  // A namespace with no interface up has no FIB table yet, and IPVS refuses every real
  // server there (EINVAL, "address not unicast"): the plumbing brings lo up, as a task's would be.
  const name = await plumbing.ns(`smoke${randomBytes(4).toString('hex')}`);
  const inNs = (file: string, args: readonly string[]) => execa('ip', ['netns', 'exec', name, file, ...args]);

  await inNs('ipvsadm', ['-A', '-f', '100', '-s', 'rr']);
  await inNs('ipvsadm', ['-a', '-f', '100', '-r', '10.0.0.1:0', '-m', '-w', '1']);
  const { stdout } = await inNs('ipvsadm', ['-Ln']);
  assert.match(stdout, /^FWM {2}100 rr\s*$/m, stdout);
  assert.match(stdout, /^ {2}-> 10\.0\.0\.1:0\s+Masq\s+1\s/m, stdout);
  // net.ipv4.vs.* exists per namespace once IPVS is loaded; vipmesh sets conntrack there.
  const { exitCode } = await execa('ip', ['netns', 'exec', name, 'test', '-e', '/proc/sys/net/ipv4/vs/conntrack'],
    { reject: false });
  assert.equal(exitCode, 0, '/proc/sys/net/ipv4/vs/conntrack exists in the namespace');
});

test('smoke: vipmesh plan runs in the guest', async () => {
  assert.ok(existsSync(CLI), `${CLI} is in the guest`);
  const result = await execa(process.execPath,
    [CLI, 'plan', '-c', '/vipmesh/fixtures/article-003-whoami.yaml', '--node', 'node-1'], { reject: false });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(result.stdout, /^# netns host$/m);
});
