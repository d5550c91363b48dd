// dnsperf, run inside a namespace, and what the benchmarks read from its output:
// the summary counts and, from `-v`'s per-query lines, latency percentiles.
import { execa } from 'execa';

export interface DnsTarget {
  /** For error messages. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export async function requireTools(what: string, tools: readonly string[]): Promise<void> {
  for (const tool of tools) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) {
      throw new Error(`${what} needs ${tool} (run scripts/install-system-deps.sh)`);
    }
  }
}

/** Runs dnsperf in `netns` (a name under /run/netns) against `target`; its stdout. */
export async function dnsperf(netns: string, target: DnsTarget, file: string, args: readonly string[]): Promise<string> {
  const r = await execa('ip', ['netns', 'exec', netns, 'dnsperf', '-s', target.address, '-p', String(target.port), '-d', file, ...args], {
    reject: false, maxBuffer: 512 * 1024 * 1024,
  });
  if (r.exitCode !== 0) throw new Error(`dnsperf against ${target.name} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export interface Counts {
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  readonly qps: number;
}

export function counts(out: string): Counts {
  const num = (re: RegExp) => Number(re.exec(out)?.[1]);
  return {
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    qps: num(/Queries per second:\s+([\d.]+)/),
  };
}

export interface Latency {
  readonly samples: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** RCODE → share of the answers, e.g. "NOERROR 90%, NXDOMAIN 10%". */
  readonly rcodes: string;
}

/** Percentiles from dnsperf -v's per-query lines (`> RCODE name type seconds`). */
export function latency(out: string, what: string): Latency {
  const samples: number[] = [];
  const rcodes = new Map<string, number>();
  for (const m of out.matchAll(/^> (\S+) \S+ \S+ ([\d.]+)$/gm)) {
    samples.push(Number(m[2]) * 1000);
    rcodes.set(m[1]!, (rcodes.get(m[1]!) ?? 0) + 1);
  }
  if (samples.length === 0) throw new Error(`dnsperf -v printed no per-query lines for ${what}`);
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  const total = samples.length;
  return {
    samples: total, p50: at(0.5), p99: at(0.99), max: samples[total - 1]!,
    rcodes: [...rcodes].map(([k, v]) => `${k} ${((v / total) * 100).toFixed(0)}%`).join(', '),
  };
}
