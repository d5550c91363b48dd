// The demo inside the kernel-lane guest (test/lane/run.sh with
// VIPMESH_LANE_RUN=dist/src/lab/guest.js): the guest's init hands the kernel
// command line's vipmesh_lab_catalog=FILE (under the package) and
// vipmesh_lab_etcd=1 over as environment variables. Its output goes to the
// console between two marker lines, which the host's `lab demo` shows.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { runDemo } from './demo.js';
import { DEMO_BEGIN, DEMO_END } from './lane.js';
import { EMULATED_PACE } from './pace.js';
import { DEFAULT_RUN_DIR, PACKAGE_ROOT } from './paths.js';

if (process.env['VIPMESH_LANE'] !== '1') {
  process.stderr.write('guest.js runs inside the kernel-lane guest only (vipmesh lab demo starts it there)\n');
  process.exit(2);
}

// The guest is a bare initramfs; a node has these. `ip netns exec` mounts each task's
// resolv.conf over /etc/resolv.conf, which must exist for that; and curl asks DNS only
// when nsswitch.conf says so.
if (!existsSync('/etc/resolv.conf')) writeFileSync('/etc/resolv.conf', '');
const nsswitch = existsSync('/etc/nsswitch.conf') ? readFileSync('/etc/nsswitch.conf', 'utf8') : '';
if (!/^hosts:.*\bdns\b/m.test(nsswitch)) writeFileSync('/etc/nsswitch.conf', `${nsswitch.replace(/^hosts:.*\n?/m, '')}hosts: files dns\n`);

const write = (text: string): void => {
  process.stdout.write(text);
};
write(`\n${DEMO_BEGIN}\n`);
write(`kernel ${release()} with IPVS, in the kernel-lane guest\n`);
const status = await runDemo({
  catalogPath: join(PACKAGE_ROOT, process.env['vipmesh_lab_catalog'] ?? 'fixtures/lab.yaml'),
  etcd: process.env['vipmesh_lab_etcd'] === '1',
  runDir: DEFAULT_RUN_DIR,
  out: write,
  pace: EMULATED_PACE,
});
write(`${DEMO_END}\n`);
process.exitCode = status;
