// The planning side of vipmesh at scale: load (read + parse text) and validate a
// catalog, plan one node, render the plan as text — what `vipmesh plan` does,
// minus printing. S services × 10 tasks over 10 networks, 10 of the tasks local
// to node-0 (bench/synthetic.ts), in JSON and in YAML.
//
// Every run is a fresh `node` process, so its peak RSS belongs to that run alone;
// the catalog file is written beforehand by the parent, so generating it is
// neither timed nor counted. Phases are timed with the wall clock and, to show
// how much a busy machine stretched them, with the process's CPU time.
//
//   node dist/bench/plan.js                     the table (3 runs per row, medians)
//   node dist/bench/plan.js --runs 1 --sizes 100,1000 --formats json
//   node dist/bench/plan.js --one FILE          one run on a catalog file: a JSON line
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { loadCatalog } from '../src/catalog/load.js';
import { formatProblems } from '../src/catalog/problems.js';
import { planNode } from '../src/plan/index.js';
import type { NodeFacts } from '../src/plan/types.js';
import { renderPlanText } from '../src/render/plan.js';
import { median } from './lab.js';
import { NODE, syntheticCatalog } from './synthetic.js';

export const SIZES = [100, 1_000, 10_000] as const;
export const TASKS_PER_SERVICE = 10;
export const NETWORKS = 10;
export const LOCAL_TASKS = 10;
export type Format = 'json' | 'yaml';
export const FORMATS: readonly Format[] = ['json', 'yaml'];
export const RUNS = 3;

/** The planner's view of the node: fixed, so runs compare (the CLI reads these from /run/vipmesh). */
const FACTS: NodeFacts = { kernelRelease: '6.1.0', resolverPorts: new Map(), marks: new Map(), probes: new Map() };

/** One run, as the child prints it. Times in milliseconds; RSS in bytes. */
export interface Run {
  readonly loadMs: number;
  readonly planMs: number;
  readonly renderMs: number;
  readonly totalMs: number;
  /** User + system CPU time of the three phases. */
  readonly cpuMs: number;
  readonly maxRssBytes: number;
  readonly namespaces: number;
  readonly outputBytes: number;
  /** First 12 hex digits of the rendered text's SHA-256: JSON and YAML must plan alike. */
  readonly outputHash: string;
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** The child: load, validate, plan and render one catalog file, timing each phase. */
export async function runOne(file: string): Promise<Run> {
  const cpu0 = cpuMs();
  const t0 = performance.now();
  const loaded = await loadCatalog(file);
  const t1 = performance.now();
  if (!loaded.ok) throw new Error(`${file} is not a valid catalog:\n${formatProblems(loaded.problems)}`);
  const plan = planNode(loaded.catalog, NODE, FACTS);
  const t2 = performance.now();
  const text = renderPlanText(plan);
  const t3 = performance.now();
  const cpu = cpuMs() - cpu0;
  return {
    loadMs: t1 - t0,
    planMs: t2 - t1,
    renderMs: t3 - t2,
    totalMs: t3 - t0,
    cpuMs: cpu,
    // resourceUsage() reports kilobytes.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    namespaces: plan.namespaces.length,
    outputBytes: Buffer.byteLength(text),
    outputHash: createHash('sha256').update(text).digest('hex').slice(0, 12),
  };
}

export function catalogText(services: number, format: Format): string {
  const catalog = syntheticCatalog({
    services, tasksPerService: TASKS_PER_SERVICE, networks: NETWORKS, localTasks: LOCAL_TASKS,
  });
  // Indented JSON, as a person or a tool that expects to be read would write it.
  return format === 'json' ? `${JSON.stringify(catalog, null, 2)}\n` : stringify(catalog);
}

const SELF = fileURLToPath(import.meta.url);

async function runChild(file: string): Promise<Run> {
  const child = await execa(process.execPath, [SELF, '--one', file]);
  return JSON.parse(child.stdout) as Run;
}

export interface Row {
  readonly services: number;
  readonly format: Format;
  readonly textBytes: number;
  readonly runs: readonly Run[];
  /** The machine's 1-minute load average before and after the row's runs: a shared machine stretches wall times. */
  readonly load?: readonly [number, number];
}

export interface PlanBenchOptions {
  readonly sizes?: readonly number[];
  readonly formats?: readonly Format[];
  readonly runs?: number;
  /** Called after each row, for progress. */
  readonly onRow?: (row: Row) => void;
}

export async function measure(options: PlanBenchOptions = {}): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-bench-plan-'));
  const rows: Row[] = [];
  try {
    for (const services of options.sizes ?? SIZES) {
      for (const format of options.formats ?? FORMATS) {
        const file = join(dir, `catalog-${services}.${format}`);
        const text = catalogText(services, format);
        await writeFile(file, text);
        const runs: Run[] = [];
        const before = loadavg()[0] ?? 0;
        for (let i = 0; i < (options.runs ?? RUNS); i++) runs.push(await runChild(file));
        const row: Row = { services, format, textBytes: Buffer.byteLength(text), runs, load: [before, loadavg()[0] ?? 0] };
        options.onRow?.(row);
        rows.push(row);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const mb = (bytes: number): string => (bytes / 1_000_000).toFixed(bytes >= 10_000_000 ? 0 : 1);

export function commandLine(options: PlanBenchOptions = {}): string {
  const args: string[] = [];
  if (options.runs !== undefined && options.runs !== RUNS) args.push('--runs', String(options.runs));
  if (options.sizes !== undefined) args.push('--sizes', options.sizes.join(','));
  if (options.formats !== undefined) args.push('--formats', options.formats.join(','));
  return ['npm run build && node dist/bench/plan.js', ...args].join(' ');
}

export function renderTable(rows: readonly Row[], options: PlanBenchOptions = {}): string {
  const runs = options.runs ?? RUNS;
  const lines = [
    `Load (read, parse, validate), plan and render of one node (\`${NODE}\`): S services × ${TASKS_PER_SERVICE} tasks `
      + `over ${NETWORKS} networks, ${LOCAL_TASKS} tasks local to the node, every 10th service publishing a port. `
      + `Median of ${runs} run${runs === 1 ? '' : 's'}, each in a fresh \`node\` process; times in ms (wall clock), `
      + 'CPU = user + system time of the three phases, peak RSS of the whole process. Where the machine is shared, '
      + 'the wall clock stretches and CPU time is the steadier figure: the last column is the 1-minute load average '
      + 'before and after the row (2 cores).',
    '',
    '| services | tasks | format | catalog | load + validate | plan | render | total | CPU | peak RSS | plan output | load avg |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const row of rows) {
    const pick = (f: (run: Run) => number): number => median(row.runs.map(f));
    const [first] = row.runs;
    const same = row.runs.every((r) => r.outputHash === first?.outputHash);
    lines.push(`| ${row.services.toLocaleString('en')} | ${(row.services * TASKS_PER_SERVICE).toLocaleString('en')} `
      + `| ${row.format.toUpperCase()} | ${mb(row.textBytes)} MB `
      + `| ${ms(pick((r) => r.loadMs))} | ${ms(pick((r) => r.planMs))} | ${ms(pick((r) => r.renderMs))} `
      + `| **${ms(pick((r) => r.totalMs))}** | ${ms(pick((r) => r.cpuMs))} | ${mb(pick((r) => r.maxRssBytes))} MB `
      + `| ${first?.namespaces ?? 0} namespaces, ${mb(first?.outputBytes ?? 0)} MB, sha256 ${first?.outputHash ?? ''}${same ? '' : ' (runs differ!)'} `
      + `| ${row.load === undefined ? '' : `${row.load[0].toFixed(1)} → ${row.load[1].toFixed(1)}`} |`);
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  lines.push('', `Node ${process.version}, ${cpus().length} × ${cpu}.`, '', 'Reproduce with:', '', '```sh', commandLine(options), '```', '');
  return lines.join('\n');
}

/** The benchmark as a markdown section body: the table and the command that reproduces it. */
export async function runPlanBench(options: PlanBenchOptions = {}): Promise<{ markdown: string }> {
  const rows = await measure(options);
  return { markdown: renderTable(rows, options) };
}

function parseArgs(argv: readonly string[]): { one?: string; options: PlanBenchOptions } {
  const value = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at < 0 ? undefined : argv[at + 1];
  };
  const one = value('--one');
  const runs = value('--runs');
  const sizes = value('--sizes');
  const formats = value('--formats');
  const options: PlanBenchOptions = {
    ...(runs === undefined ? {} : { runs: Number(runs) }),
    ...(sizes === undefined ? {} : { sizes: sizes.split(',').map(Number) }),
    ...(formats === undefined ? {} : { formats: formats.split(',').map((f) => (f === 'yaml' ? 'yaml' : 'json')) }),
  };
  return one === undefined ? { options } : { one, options };
}

async function main(): Promise<void> {
  const { one, options } = parseArgs(process.argv.slice(2));
  if (one !== undefined) {
    process.stdout.write(`${JSON.stringify(await runOne(one))}\n`);
    return;
  }
  const { markdown } = await runPlanBench({
    ...options,
    onRow: (row) => process.stderr.write(`plan bench: ${row.services} services, ${row.format}: `
      + `${row.runs.map((r) => r.totalMs.toFixed(0)).join(', ')} ms\n`),
  });
  process.stdout.write(markdown);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === SELF) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
