// Benchmarks that measure inside the kernel lane's QEMU guest (this machine's
// kernel has no IPVS), host side: boot the lane with one guest script
// (VIPMESH_LANE_RUN), hand it its sizes on the kernel command line
// (VIPMESH_LANE_APPEND), and take its markdown out of the console between the
// script's BEGIN and END marker lines. Needs `npm run build` first, like the lane.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXIT = /^VIPMESH-LANE-EXIT (\d+)$/;
const RUNNING = /^kernel-lane: (\S+), running /;

export interface Markers {
  readonly begin: string;
  readonly end: string;
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
export function extractBench(console: string, markers: Markers): GuestBench {
  const { begin: BEGIN, end: END } = markers;
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

/**
 * Kernel command line words `<prefix>_<name>=<value>` for the guest's init, which
 * hands each to the script as an environment variable; undefined values are left
 * out (the guest's default). Lists go comma-separated.
 */
export function laneWords(prefix: string, values: Readonly<Record<string, number | readonly number[] | undefined>>): string {
  const words: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const list = typeof value === 'number' ? [value] : value;
    if (list.length === 0) throw new Error(`${name}: an empty list`);
    for (const n of list) if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: ${n} is not a whole number`);
    words.push(`${prefix}_${name}=${list.join(',')}`);
  }
  return words.join(' ');
}

export interface LaneBenchOptions {
  /** The guest script, a path under dist/ (e.g. dist/bench/ipvs-guest.js). */
  readonly guest: string;
  readonly markers: Markers;
  /** Kernel command line words (laneWords); empty: the guest's defaults. */
  readonly append: string;
  /** More environment for run.sh (e.g. VIPMESH_LANE_TIMEOUT), shown in the command. */
  readonly env?: Readonly<Record<string, string>>;
  /** Stream the guest console to stderr while it runs. */
  readonly verbose?: boolean;
}

/** Boots the lane with the guest script; its table, the guest kernel and the command that reproduces it. */
export async function runLaneBench(o: LaneBenchOptions): Promise<GuestBench & { command: string }> {
  if (!existsSync(join(ROOT, o.guest))) throw new Error(`${o.guest} is missing: run npm run build first`);
  const env: Record<string, string> = { ...o.env, VIPMESH_LANE_RUN: o.guest, ...(o.append === '' ? {} : { VIPMESH_LANE_APPEND: o.append }) };
  const child = execa('bash', [join(ROOT, 'test', 'lane', 'run.sh')], { env, reject: false, stdin: 'ignore' });
  if (o.verbose) child.stdout?.pipe(process.stderr);
  const lane = await child;
  const stdout = String(lane.stdout ?? '');
  let guest: GuestBench;
  try {
    guest = extractBench(stdout, o.markers);
  } catch (error) {
    const tail = stdout.trimEnd().split('\n').slice(-30).join('\n');
    throw new Error(`${(error as Error).message}\nrun.sh exited ${lane.exitCode}: ${String(lane.stderr ?? '').trim()}\n--- last guest console lines ---\n${tail}`);
  }
  const command = [
    ...Object.entries(env).map(([k, v]) => `${k}=${/\s/.test(v) ? `'${v}'` : v}`),
    'test/lane/run.sh',
  ].join(' ');
  return { ...guest, command };
}
