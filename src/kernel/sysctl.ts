// net.* sysctls are per network namespace, and /proc/sys/net shows the namespace
// of the process that reads it. So for another namespace one small shell runs
// inside it and touches every file in one spawn; names and values reach it only
// as positional arguments, never as script text.
import { readFile, writeFile } from 'node:fs/promises';
import { ExecError } from './exec.js';
import type { KernelEnv } from './env.js';
import { KernelError } from './types.js';
import type { Sysctl } from '../plan/types.js';

const NAME = /^[a-z0-9_.-]+$/;
const MARK = 'vipmesh-sysctl:';

// Prints `path=value` for each existing file; a missing one prints nothing.
const READ_SCRIPT = `
for f do
  [ -e "$f" ] || continue
  v=
  IFS= read -r v < "$f" || [ -n "$v" ] || { printf '${MARK}failed:%s\\n' "$f" >&2; exit 1; }
  printf '%s=%s\\n' "$f" "$v"
done`;

// Arguments come in path, value pairs; stops at the first failure and names it.
const WRITE_SCRIPT = `
while [ $# -ge 2 ]; do
  [ -e "$1" ] || { printf '${MARK}missing:%s\\n' "$1" >&2; exit 3; }
  printf %s "$2" > "$1" || { printf '${MARK}failed:%s\\n' "$1" >&2; exit 1; }
  shift 2
done`;

/** net.ipv4.ip_forward → /proc/sys/net/ipv4/ip_forward, after checking the name. */
export function sysctlPath(name: string): string {
  if (!NAME.test(name) || name.split('.').some((part) => part === '')) {
    throw new KernelError(`not a sysctl name: ${JSON.stringify(name)}`, 'other');
  }
  return `/proc/sys/${name.replaceAll('.', '/')}`;
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function missing(env: KernelEnv, netns: string | null, name: string): KernelError {
  // The IPVS sysctls appear in a namespace only once ip_vs is loaded.
  if (name.startsWith('net.ipv4.vs.') || name.startsWith('net.ipv6.vs.')) {
    return new KernelError(`sysctl ${name} does not exist in ${env.describe(netns)}: the kernel lacks IPVS (ip_vs is not loaded)`, 'no-ipvs');
  }
  return new KernelError(`sysctl ${name} does not exist in ${env.describe(netns)}`, 'other');
}

export async function readSysctls(env: KernelEnv, netns: string | null, names: readonly string[]): Promise<Map<string, string | undefined>> {
  const byPath = new Map(names.map((name) => [sysctlPath(name), name]));
  const values = new Map<string, string | undefined>(names.map((name) => [name, undefined]));
  if (names.length === 0) return values;
  if (netns === null) {
    for (const [path, name] of byPath) {
      try {
        values.set(name, (await readFile(path, 'utf8')).split('\n')[0]);
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw new KernelError(`cannot read sysctl ${name}: ${(error as Error).message}`, 'other');
      }
    }
    return values;
  }
  await env.requireNamespace(netns);
  const result = await env.runner.run({ file: 'sh', args: ['-c', READ_SCRIPT, 'sh', ...byPath.keys()], netns });
  if (result.exitCode !== 0 || result.failure !== undefined) {
    await env.requireNamespace(netns);
    throw new KernelError(`cannot read sysctls in ${env.describe(netns)}: ${new ExecError(result).message}`, 'other');
  }
  for (const line of result.stdout.split('\n')) {
    const eq = line.indexOf('=');
    const name = eq < 0 ? undefined : byPath.get(line.slice(0, eq));
    if (name !== undefined) values.set(name, line.slice(eq + 1));
  }
  return values;
}

export async function writeSysctls(env: KernelEnv, netns: string | null, values: readonly Sysctl[]): Promise<void> {
  if (values.length === 0) return;
  const byPath = new Map<string, string>();
  for (const { name, value } of values) {
    byPath.set(sysctlPath(name), name);
    if (/[\n\r]/.test(value)) throw new KernelError(`sysctl ${name}: value spans lines: ${JSON.stringify(value)}`, 'other');
  }
  if (netns === null) {
    for (const { name, value } of values) {
      try {
        await writeFile(sysctlPath(name), value);
      } catch (error) {
        if (errorCode(error) === 'ENOENT') throw missing(env, netns, name);
        throw new KernelError(`cannot set sysctl ${name}=${value}: ${(error as Error).message}`, 'rejected');
      }
    }
    return;
  }
  await env.requireNamespace(netns);
  const args = values.flatMap(({ name, value }) => [sysctlPath(name), value]);
  const result = await env.runner.run({ file: 'sh', args: ['-c', WRITE_SCRIPT, 'sh', ...args], netns });
  if (result.exitCode === 0 && result.failure === undefined) return;
  await env.requireNamespace(netns);
  const marker = new RegExp(`^${MARK}(missing|failed):(.*)$`, 'm').exec(result.stderr);
  const name = marker === null ? undefined : byPath.get(marker[2]!);
  if (name === undefined) {
    throw new KernelError(`cannot set sysctls in ${env.describe(netns)}: ${new ExecError(result).message}`, 'other');
  }
  if (marker?.[1] === 'missing') throw missing(env, netns, name);
  const value = values.find((v) => v.name === name)?.value ?? '';
  const why = result.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(MARK)).join('; ');
  throw new KernelError(`cannot set sysctl ${name}=${value} in ${env.describe(netns)}${why ? `: ${why}` : ''}`, 'rejected');
}
