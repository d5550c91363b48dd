// IPVS benchmark, host side. This machine's kernel may have no IPVS, so the
// measuring happens in the kernel lane's QEMU guest (bench/ipvs-guest.ts, started
// with test/lane/run.sh and VIPMESH_LANE_RUN); this side boots it, takes the table
// out of the guest console and says how to reproduce it (bench/lane.ts). Needs
// `npm run build` first, like the lane itself; no root here (the guest is root),
// but the first lane build may need it for apt-get.
import { fileURLToPath } from 'node:url';
import { BEGIN, END } from './ipvs-guest.js';
import { type GuestBench, extractBench as extractFrom, laneWords, runLaneBench } from './lane.js';

const GUEST = 'dist/bench/ipvs-guest.js';

export interface IpvsBenchOptions {
  /** fwmark services (default 1000) */
  readonly services?: number;
  /** real servers per service (default 10) */
  readonly realServers?: number;
  /** rounds from empty and of each change (default 5; the changes take at least 7) */
  readonly rounds?: number;
  /** services for the one-process-per-object comparison (default 20, extrapolated to the full size; 0 skips it) */
  readonly perCommandServices?: number;
  /** Stream the guest console to stderr while it runs. */
  readonly verbose?: boolean;
}

export type { GuestBench };

/** The IPVS table in a guest console (bench/lane.ts's extractBench with this benchmark's markers). */
export function extractBench(console: string): GuestBench {
  return extractFrom(console, { begin: BEGIN, end: END });
}

/** The kernel command line words that carry the sizes to the guest (empty: its defaults). */
export function laneAppend(o: IpvsBenchOptions): string {
  return laneWords('vipmesh_ipvs', { services: o.services, reals: o.realServers, rounds: o.rounds, percmd: o.perCommandServices });
}

export async function runIpvsBench(options: IpvsBenchOptions = {}): Promise<{ markdown: string }> {
  const guest = await runLaneBench({
    guest: GUEST, markers: { begin: BEGIN, end: END }, append: laneAppend(options), ...(options.verbose ? { verbose: true } : {}),
  });
  const markdown = `${guest.table}\n\nGuest kernel: ${guest.kernel ?? 'unknown'}. Command: \`npm run build && ${guest.command}\` ` +
    `(or \`node dist/bench/ipvs.js\`); the whole console is kept in \`.cache/kernel-lane/console.log\`.`;
  return { markdown };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node dist/bench/ipvs.js [services [real servers [rounds [per-command services]]]]
  const [services, realServers, rounds, perCommandServices] = process.argv.slice(2).map(Number);
  const { markdown } = await runIpvsBench({
    ...(services === undefined ? {} : { services }),
    ...(realServers === undefined ? {} : { realServers }),
    ...(rounds === undefined ? {} : { rounds }),
    ...(perCommandServices === undefined ? {} : { perCommandServices }),
    verbose: process.env['VIPMESH_LANE_VERBOSE'] === '1',
  });
  process.stdout.write(markdown + '\n');
}
