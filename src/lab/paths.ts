// Where the lab finds this package's own files: it runs the package's own
// `vipmesh` for the agents, its whoami server in each task, and by default its
// own fixtures/lab.yaml. Compiled, this file is dist/src/lab/paths.js.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'bin.js');
export const WHOAMI = join(PACKAGE_ROOT, 'dist', 'src', 'lab', 'whoami.js');
export const DEFAULT_LAB_CATALOG = join(PACKAGE_ROOT, 'fixtures', 'lab.yaml');
/** Only in a checkout: the kernel lane that boots a kernel with IPVS under QEMU. */
export const LANE_SCRIPT = join(PACKAGE_ROOT, 'test', 'lane', 'run.sh');
export const DEFAULT_RUN_DIR = '/run/vipmesh-lab';
