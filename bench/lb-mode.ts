// Load-balancer mode against per-task mode (issue 13), host side: the measuring
// happens in the kernel lane's guest (bench/lb-mode-guest.ts; this machine's
// kernel has no IPVS); this side boots it with the sizes, takes the table out of
// the console and says how to reproduce it (bench/lane.ts). Needs `npm run build`
// first. Per-task mode at K=200 programs ~2 M real servers under QEMU TCG: the
// whole run can take an hour, so the lane's time limit is raised.
import { fileURLToPath } from 'node:url';
import { BEGIN, END } from './lb-mode-guest.js';
import { laneWords, runLaneBench } from './lane.js';

const GUEST = 'dist/bench/lb-mode-guest.js';
const TIMEOUT_S = 3 * 3600;

export interface LbModeBenchOptions {
  /** Local task counts K (default 10, 20, 50, 200). */
  readonly sizes?: readonly number[];
  /** VIP services (default 1000). */
  readonly services?: number;
  /** Tasks per service (default 10). */
  readonly tasks?: number;
  /** Minutes one per-task reconcile from empty may be projected to take before it is not run (default 25). */
  readonly budgetMinutes?: number;
  /** Stream the guest console to stderr while it runs. */
  readonly verbose?: boolean;
}

export function lbLaneAppend(o: LbModeBenchOptions): string {
  return laneWords('vipmesh_lb', { sizes: o.sizes, services: o.services, tasks: o.tasks, budget: o.budgetMinutes });
}

export async function runLbModeBench(options: LbModeBenchOptions = {}): Promise<{ markdown: string }> {
  const guest = await runLaneBench({
    guest: GUEST, markers: { begin: BEGIN, end: END }, append: lbLaneAppend(options),
    env: { VIPMESH_LANE_TIMEOUT: String(TIMEOUT_S) }, ...(options.verbose ? { verbose: true } : {}),
  });
  const markdown = `${guest.table}\n\nGuest kernel: ${guest.kernel ?? 'unknown'}. Command: \`npm run build && ${guest.command}\` ` +
    `(or \`node dist/bench/lb-mode.js\`); the whole console, with each pass's progress, is kept in \`.cache/kernel-lane/console.log\`.`;
  return { markdown };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node dist/bench/lb-mode.js [K,K,… [services [tasks per service [budget minutes]]]]
  const [sizes, services, tasks, budget] = process.argv.slice(2);
  const { markdown } = await runLbModeBench({
    ...(sizes === undefined ? {} : { sizes: sizes.split(',').map(Number) }),
    ...(services === undefined ? {} : { services: Number(services) }),
    ...(tasks === undefined ? {} : { tasks: Number(tasks) }),
    ...(budget === undefined ? {} : { budgetMinutes: Number(budget) }),
    verbose: process.env['VIPMESH_LANE_VERBOSE'] === '1',
  });
  process.stdout.write(markdown + '\n');
}
