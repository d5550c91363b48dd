import assert from 'node:assert/strict';
import test from 'node:test';
import { parseCapEff, privilegeProblem } from '../../../src/cli/privileges.js';

const NET_ADMIN = 1n << 12n;
const SYS_ADMIN = 1n << 21n;
const DAC_OVERRIDE = 1n << 1n;
const ALL = 0x1ffffffffffn;

test('CapEff is read from /proc/self/status text', () => {
  const status = 'Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n';
  assert.equal(parseCapEff(status), ALL);
  assert.equal(parseCapEff('CapEff:\t0000000000000000\n'), 0n);
  assert.equal(parseCapEff('Name:\tnode\n'), undefined);
});

test('root with every capability, or anyone holding the ones needed, may go on', () => {
  for (const verb of ['reconcile', 'cleanup', 'diff']) {
    assert.equal(privilegeProblem(verb, { euid: 0, effective: ALL }), undefined);
    assert.equal(privilegeProblem(verb, { euid: 0, effective: undefined }), undefined, 'without /proc, uid 0 is believed');
    assert.equal(privilegeProblem(verb, { euid: 1000, effective: NET_ADMIN | SYS_ADMIN | DAC_OVERRIDE }), undefined);
  }
  assert.equal(privilegeProblem('diff', { euid: 1000, effective: NET_ADMIN | SYS_ADMIN }), undefined, 'diff writes no root files');
});

test('a plain user is told once, on one line, that it must run as root', () => {
  for (const verb of ['reconcile', 'cleanup', 'diff']) {
    for (const effective of [0n, undefined]) {
      const problem = privilegeProblem(verb, { euid: 65534, effective });
      assert.ok(problem !== undefined);
      assert.match(problem, new RegExp(`^${verb} must run as root \\(it needs CAP_NET_ADMIN(, | and )CAP_SYS_ADMIN`));
      assert.match(problem, /nothing was done$/);
      assert.doesNotMatch(problem, /\n/);
    }
  }
  assert.match(privilegeProblem('reconcile', { euid: 1000, effective: NET_ADMIN | SYS_ADMIN })!, /lacks CAP_DAC_OVERRIDE\)/);
});

test('root whose capability set was cut is told which capability is missing', () => {
  const problem = privilegeProblem('reconcile', { euid: 0, effective: ALL & ~SYS_ADMIN });
  assert.match(problem!, /^reconcile lacks CAP_SYS_ADMIN, though it runs as root/);
  assert.match(privilegeProblem('diff', { euid: 0, effective: 0n })!, /lacks CAP_NET_ADMIN and CAP_SYS_ADMIN/);
});
