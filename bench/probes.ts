// What health probes cost an idle agent: N task namespaces (default 200), each
// probed every 2 s (100 probes/s), for ~20 s. The probing side runs in a child
// process of its own, as the agent would: its CPU (user + system, its reaped
// children included) plus that of its live probe shells is what is reported, as
// a share of one core. The servers probed live in this process (listening
// sockets bound inside each namespace by the resolver's bind helper), so their
// accept work is not counted. Modes: tcp and http through the per-namespace
// shells, and exec (`true`, a fork per probe) for comparison.
//   sudo node dist/bench/probes.js [--namespaces 200] [--interval 2000] [--seconds 20] [--modes tcp,http,exec]
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type net from 'node:net';
import { execa } from 'execa';
import { systemClock } from '../src/agent/clock.js';
import { createProbeScheduler, type ProbeTask } from '../src/agent/probes.js';
import type { HealthProbe } from '../src/catalog/types.js';
import { createRunner, type RunnerStats } from '../src/kernel/exec.js';
import { bindInNamespace, RESOLVER_ADDRESS } from '../src/kernel/netns-sockets.js';
import { createProber } from '../src/kernel/probe-session.js';
import { createLab, machine, requireRoot } from './lab.js';

const SELF = fileURLToPath(import.meta.url);
const MODES = ['tcp', 'http', 'exec'] as const;
type Mode = (typeof MODES)[number];

export interface ProbesBenchOptions {
  readonly namespaces?: number;
  readonly intervalMs?: number;
  readonly seconds?: number;
  readonly modes?: readonly Mode[];
}

interface Target {
  readonly netns: string;
  readonly port: number;
}

interface ChildJob {
  readonly mode: Mode;
  readonly targets: readonly Target[];
  readonly intervalMs: number;
  readonly seconds: number;
}

export interface ModeResult {
  readonly mode: Mode;
  readonly seconds: number;
  readonly probes: number;
  readonly passed: number;
  /** CPU seconds of the probing process itself (its reaped children included). */
  readonly agentCpu: number;
  /** CPU seconds of its live probe shells. */
  readonly shellsCpu: number;
  readonly shells: number;
  /** Proportional set size of the live shells, bytes. */
  readonly shellsPss: number;
  readonly spawns: number;
  /** The most common failure reason in the window, if any probe failed. */
  readonly failure?: string;
}

const TICK = 100; // USER_HZ: /proc/PID/stat counts CPU in 1/100 s on Linux

/** CPU seconds of this process (every thread) and of the children it has reaped. */
async function selfCpu(): Promise<number> {
  const { user, system } = process.cpuUsage();
  const text = await readFile('/proc/self/stat', 'utf8');
  // After the command: state is field 3, cutime 16, cstime 17.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (user + system) / 1e6 + (Number(fields[16 - 3]) + Number(fields[17 - 3])) / TICK;
}

/**
 * CPU seconds a live process has run, to the nanosecond (schedstat's first
 * field): a shell runs ~0.1 ms per probe, far below the 10 ms tick that
 * /proc/PID/stat rounds each process down to.
 */
async function runtime(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/schedstat`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : Number(text.split(' ')[0]) / 1e9;
}

async function childrenOf(pid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) pids.push(Number(entry));
  }
  return pids;
}

async function pss(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
}

/** The probing side, in a process of its own: probes every target for the job's window and measures itself. */
async function probeChild(job: ChildJob): Promise<ModeResult> {
  const stats: RunnerStats = { spawns: 0, commands: 0, bytesWritten: 0 };
  const runner = createRunner();
  const prober = createProber({ runner, stats });
  const spawns = () => stats.spawns + runner.stats.spawns;
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-bench-probes-'));
  const counts = { pass: 0, fail: 0 };
  const reasons = new Map<string, number>();
  const probe = (port: number): HealthProbe =>
    job.mode === 'tcp' ? { kind: 'tcp', port } : job.mode === 'http' ? { kind: 'http', port, path: '/healthz' } : { kind: 'exec', argv: ['true'] };
  const tasks: ProbeTask[] = job.targets.map((target, i) => ({
    name: `task-${i}`,
    netns: target.netns,
    address: RESOLVER_ADDRESS,
    healthcheck: { probe: probe(target.port), intervalMs: job.intervalMs, timeoutMs: 1000, retries: 3 },
  }));
  const scheduler = createProbeScheduler({
    clock: systemClock, runDir: dir, onChange: () => {}, countResult: (result) => counts[result]++,
    prober: {
      retain: (netns) => prober.retain(netns),
      probe: async (request) => {
        const outcome = await prober.probe(request);
        if (outcome.result === 'fail') reasons.set(outcome.reason, (reasons.get(outcome.reason) ?? 0) + 1);
        return outcome;
      },
    },
  });
  scheduler.update(tasks);
  // One interval (plus a little) so every task has its shell and the jitter has spread them.
  await new Promise((resolve) => setTimeout(resolve, job.intervalMs + 500));
  // Scanning /proc costs this process too: done before the window opens and after it closes.
  const shellsBefore = new Map<number, number>();
  for (const pid of await childrenOf(process.pid)) shellsBefore.set(pid, (await runtime(pid)) ?? 0);
  const before = { counts: { ...counts }, self: await selfCpu(), spawns: spawns() };
  reasons.clear();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, job.seconds * 1000));
  const seconds = (performance.now() - started) / 1000;
  const after = { counts: { ...counts }, spawns: spawns(), reasons: [...reasons] };
  const self = await selfCpu();
  // The shells that were there when the window opened (a shell restarted in the
  // window is missed: the spawns column says whether any was).
  let shellsCpu = 0;
  for (const [pid, start] of shellsBefore) shellsCpu += ((await runtime(pid)) ?? start) - start;
  let shellsPss = 0;
  const live = await childrenOf(process.pid);
  for (const pid of live) shellsPss += await pss(pid);
  const result: ModeResult = {
    mode: job.mode,
    seconds,
    probes: after.counts.pass + after.counts.fail - before.counts.pass - before.counts.fail,
    passed: after.counts.pass - before.counts.pass,
    agentCpu: self - before.self,
    shellsCpu,
    shells: live.length,
    shellsPss,
    spawns: after.spawns - before.spawns,
  };
  const common = after.reasons.sort((a, b) => b[1] - a[1])[0];
  if (common !== undefined) Object.assign(result, { failure: `${common[0]} (${common[1]}×)` });
  await scheduler.stop();
  await prober.close();
  await rm(dir, { recursive: true, force: true });
  return result;
}

async function runMode(job: ChildJob): Promise<ModeResult> {
  const child = execa(process.execPath, [SELF, '--child'], { input: JSON.stringify(job), env: { NODE_OPTIONS: '' } });
  const { stdout } = await child;
  return JSON.parse(stdout) as ModeResult;
}

const HTTP_OK = 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n';

export async function measure(options: ProbesBenchOptions = {}): Promise<ModeResult[]> {
  requireRoot('the probes benchmark');
  const count = options.namespaces ?? 200;
  const lab = createLab('vbp');
  const servers: net.Server[] = [];
  const udps: { close(): void }[] = [];
  try {
    const paths = await lab.add(Array.from({ length: count }, (_, i) => String(i)));
    for (let i = 0; i < paths.length; i += 16) {
      await Promise.all(paths.slice(i, i + 16).map((p) => execa('ip', ['-n', p.slice('/run/netns/'.length), 'link', 'set', 'lo', 'up'])));
    }
    const targets: Target[] = [];
    for (let i = 0; i < paths.length; i += 8) {
      const bound = await Promise.all(paths.slice(i, i + 8).map((path) => bindInNamespace(path)));
      for (const b of bound) {
        udps.push(b.udp);
        servers.push(b.tcp);
        b.tcp.on('connection', (socket) => {
          socket.on('error', () => {});
          socket.once('data', () => socket.end(HTTP_OK));
        });
        targets.push({ netns: b.netns, port: b.ports.tcp });
      }
    }
    const results: ModeResult[] = [];
    for (const mode of options.modes ?? MODES) {
      process.stderr.write(`probes bench: ${mode}, ${count} namespaces...\n`);
      results.push(await runMode({ mode, targets, intervalMs: options.intervalMs ?? 2000, seconds: options.seconds ?? 20 }));
    }
    return results;
  } finally {
    for (const server of servers) server.close();
    for (const udp of udps) udp.close();
    await lab.close();
  }
}

const pct = (cpu: number, seconds: number): string => `${((cpu / seconds) * 100).toFixed(1)} %`;

export async function runProbesBench(options: ProbesBenchOptions = {}): Promise<{ markdown: string }> {
  const results = await measure(options);
  const count = options.namespaces ?? 200;
  const interval = options.intervalMs ?? 2000;
  const lines = [
    `${count} task namespaces, each probed every ${interval / 1000} s (${(count / (interval / 1000)).toFixed(0)} probes/s), `
      + `measured over ${options.seconds ?? 20} s after one interval of warm-up. CPU is user + system time as a share of one core: `
      + 'the probing process (the agent\'s part, its reaped children included) and its live probe shells. '
      + 'tcp and http go through one long-lived `bash` per namespace; exec runs `true` in the namespace, a fork per probe.',
    '',
    '| probe | probes/s | passed | agent CPU | shells CPU | **total** | shells | shells PSS | spawns in window |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    lines.push(`| ${r.mode} | ${(r.probes / r.seconds).toFixed(1)} | ${r.passed}/${r.probes} | ${pct(r.agentCpu, r.seconds)} `
      + `| ${pct(r.shellsCpu, r.seconds)} | **${pct(r.agentCpu + r.shellsCpu, r.seconds)}** | ${r.shells} `
      + `| ${(r.shellsPss / 1_000_000).toFixed(0)} MB | ${r.spawns} |`);
  }
  for (const r of results) if (r.failure !== undefined) lines.push('', `${r.mode}: most failures said “${r.failure}”.`);
  lines.push('', `Machine: ${await machine()}, Node ${process.version}. Command: \`sudo node dist/bench/probes.js\` (after \`npm run build\`).`);
  return { markdown: lines.join('\n') };
}

function option(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at < 0 ? undefined : argv[at + 1];
}

if (process.argv[1] === SELF) {
  const argv = process.argv.slice(2);
  if (argv.includes('--child')) {
    let input = '';
    for await (const chunk of process.stdin) input += String(chunk);
    process.stdout.write(JSON.stringify(await probeChild(JSON.parse(input) as ChildJob)) + '\n');
  } else {
    const num = (name: string) => (option(argv, name) === undefined ? undefined : Number(option(argv, name)));
    const namespaces = num('--namespaces');
    const intervalMs = num('--interval');
    const seconds = num('--seconds');
    const modes = option(argv, '--modes')?.split(',').filter((m): m is Mode => (MODES as readonly string[]).includes(m));
    const { markdown } = await runProbesBench({
      ...(namespaces === undefined ? {} : { namespaces }),
      ...(intervalMs === undefined ? {} : { intervalMs }),
      ...(seconds === undefined ? {} : { seconds }),
      ...(modes === undefined ? {} : { modes }),
    });
    process.stdout.write(markdown + '\n');
  }
}
