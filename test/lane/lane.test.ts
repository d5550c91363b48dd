// The kernel lane seen from the host: test/lane/run.sh boots a QEMU guest with a Debian
// kernel that has IPVS (this machine's may have none) and runs there every guest
// scenario (test/vm/*.scenario.ts) and the kernel tests that assert IPVS behaviour
// (test/kernel/adapters.test.ts, reconcile.test.ts), so those hold on an IPVS kernel
// whatever the host's. Each guest result becomes a host test named after its group, so
// `npm test` reports them one by one. The lane never skips: a lane that cannot start fails.
// VIPMESH_LANE_VERBOSE=1 streams the guest console to stderr while it runs.
import assert from 'node:assert/strict';
import { delimiter, dirname, join } from 'node:path';
import test from 'node:test';
import { execa } from 'execa';
import { ROOT } from '../helpers/paths.js';
import { lastLines, parseGuestConsole } from './tap.js';

const RUN = join(ROOT, 'test', 'lane', 'run.sh');
const CONSOLE_LOG = join(process.env['VIPMESH_LANE_CACHE'] ?? join(ROOT, '.cache', 'kernel-lane'), 'console.log');

// The guest gets the `node` that build.sh finds on PATH: make it the one running this test.
const PATH = `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`;
const child = execa('bash', [RUN], { reject: false, stdin: 'ignore', env: { PATH } });
if (process.env['VIPMESH_LANE_VERBOSE'] === '1') child.stdout?.pipe(process.stderr);
const lane = await child;
const stdout = String(lane.stdout ?? '');
const stderr = String(lane.stderr ?? '').trim();
const guest = parseGuestConsole(stdout);

for (const r of guest.results) {
  const options = r.directive === 'SKIP' ? { skip: r.reason || true } : r.directive === 'TODO' ? { todo: r.reason || true } : {};
  test(`kernel lane (${r.group ?? 'no group'}): ${r.name}`, options, () => {
    if (r.ok) return;
    const printed = r.output === '' ? '' : `\n--- what it printed (last lines) ---\n${r.output}`;
    assert.fail(`the guest reported this scenario failed:\n${r.yaml}${printed}`);
  });
}

test('kernel lane boots and finishes', () => {
  const tail = stdout.trim() === '' ? '' : `\n--- last 60 guest console lines (all: ${CONSOLE_LOG}) ---\n${lastLines(stdout, 60)}`;
  const context = () => `${stderr}${tail}`;
  // run.sh exits 2 when the build fails; a guest that ran has printed its own status.
  if (guest.status === undefined && (lane.exitCode === 2 || lane.exitCode === undefined)) {
    assert.fail(`the kernel lane could not start (run.sh ${lane.exitCode === 2 ? 'exited 2' : `did not run: ${lane.message}`}):\n${context()}`);
  }
  assert.ok(guest.status !== undefined, `the guest never printed VIPMESH-LANE-EXIT (hung or crashed):\n${context()}`);
  assert.ok(guest.results.length > 0, `the guest reported no test result:\n${context()}`);
  const silent = guest.groups.filter((g) => !guest.results.some((r) => r.group === g));
  assert.deepEqual(silent, [], `these groups reported no test result:\n${context()}`);
  assert.equal(guest.status, 0, `the guest's test run exited ${guest.status}:\n${context()}`);
});
