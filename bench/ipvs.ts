// IPVS benchmark, host side. This machine's kernel may have no IPVS, so the
// measuring happens in the kernel lane's QEMU guest (bench/ipvs-guest.ts, started
// with test/lane/run.sh and VIPMESH_LANE_RUN); this side boots it, takes the table
// out of the guest console and says how to reproduce it. Needs `npm run build`
// first, like the lane itself; no root here (the guest is root), but the first
// lane build may need it for apt-get.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { BEGIN, END } from './ipvs-guest.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUEST = 'dist/bench/ipvs-guest.js';
const EXIT = /^VIPMESH-LANE-EXIT (\d+)$/;
const RUNNING = /^kernel-lane: (\S+), running /;

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

export interface GuestBench {
  readonly table: string;
  /** The guest kernel release, from init's "running" line. */
  readonly kernel?: string;
}

/**
 * The benchmark's table in a guest console: the lines between the last BEGIN and
 * END markers (kernel messages that land in between are dropped). Throws with the
 * reason when the guest did not get that far.
 */
export function extractBench(console: string): GuestBench {
  const lines = console.split('\n').map((l) => l.replace(/\r$/, ''));
  let kernel: string | undefined;
  let status: number | undefined;
  let begin = -1;
  let end = -1;
  lines.forEach((line, i) => {
    const running = RUNNING.exec(line);
    if (running) kernel = running[1];
    const exit = EXIT.exec(line);
    if (exit) status = Number(exit[1]);
    if (line === BEGIN) {
      begin = i;
      end = -1;
    } else if (line === END && begin >= 0) {
      end = i;
    }
  });
  if (begin < 0 || end < 0) {
    const why = status === undefined ? 'the guest never printed VIPMESH-LANE-EXIT (hung or crashed)' : `the guest exited ${status}`;
    throw new Error(`no benchmark table in the guest console (${begin < 0 ? 'no' : 'no closing'} ${begin < 0 ? BEGIN : END} line): ${why}`);
  }
  if (status !== undefined && status !== 0) throw new Error(`the guest printed a table but exited ${status}`);
  const table = lines.slice(begin + 1, end).filter((l) => !/^\[\s*\d+\.\d+\]/.test(l)).join('\n').trim();
  return kernel === undefined ? { table } : { table, kernel };
}

/** The kernel command line words that carry the sizes to the guest (empty: its defaults). */
export function laneAppend(o: IpvsBenchOptions): string {
  const words: string[] = [];
  const put = (name: string, value: number | undefined) => {
    if (value === undefined) return;
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name}: ${value} is not a whole number`);
    words.push(`vipmesh_ipvs_${name}=${value}`);
  };
  put('services', o.services);
  put('reals', o.realServers);
  put('rounds', o.rounds);
  put('percmd', o.perCommandServices);
  return words.join(' ');
}

export async function runIpvsBench(options: IpvsBenchOptions = {}): Promise<{ markdown: string }> {
  if (!existsSync(join(ROOT, GUEST))) throw new Error(`${GUEST} is missing: run npm run build first`);
  const append = laneAppend(options);
  const env: Record<string, string> = { VIPMESH_LANE_RUN: GUEST, ...(append === '' ? {} : { VIPMESH_LANE_APPEND: append }) };
  const child = execa('bash', [join(ROOT, 'test', 'lane', 'run.sh')], { env, reject: false, stdin: 'ignore' });
  if (options.verbose) child.stdout?.pipe(process.stderr);
  const lane = await child;
  const stdout = String(lane.stdout ?? '');
  let guest: GuestBench;
  try {
    guest = extractBench(stdout);
  } catch (error) {
    const tail = stdout.trimEnd().split('\n').slice(-30).join('\n');
    throw new Error(`${(error as Error).message}\nrun.sh exited ${lane.exitCode}: ${String(lane.stderr ?? '').trim()}\n--- last guest console lines ---\n${tail}`);
  }
  const command = [
    ...Object.entries(env).map(([k, v]) => `${k}=${/\s/.test(v) ? `'${v}'` : v}`),
    'test/lane/run.sh',
  ].join(' ');
  const markdown = `${guest.table}\n\nGuest kernel: ${guest.kernel ?? 'unknown'}. Command: \`npm run build && ${command}\` ` +
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
