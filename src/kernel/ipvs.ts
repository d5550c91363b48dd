// IPVS through ipvsadm. Listing uses -Ln rather than -S because draining needs
// the per-real-server connection counters that only -L prints.
import { ExecError } from './exec.js';
import type { KernelEnv } from './env.js';
import { ipvsUnavailableReason, parseIpvsadmList } from './parse-ipvsadm.js';
import { KernelError, type ObservedIpvs } from './types.js';

const NOT_INSTALLED = 'ipvsadm is not installed, so IPVS cannot be read or programmed (install the ipvsadm package)';

// Lists the given fwmark services one ipvsadm call each, in one command; a mark
// with no service prints nothing. Listing a whole namespace of 1000 services
// takes seconds under emulation, so confirming a small change reads only it.
const LIST_SOME = 'p=$1; shift; for m do "$p" -Ln --fwmark-service "$m" 2>/dev/null || :; done';

export async function readIpvs(env: KernelEnv, netns: string | null, fwmarks?: readonly number[]): Promise<ObservedIpvs> {
  await env.requireNamespace(netns);
  const file = await env.program('ipvsadm');
  if (file === undefined) return { available: false, reason: NOT_INSTALLED };
  const some = fwmarks !== undefined && fwmarks.every((m) => Number.isInteger(m) && m > 0 && m < 2 ** 32);
  const result = await env.runner.run(some
    ? { file: 'sh', args: ['-c', LIST_SOME, 'sh', file, ...fwmarks.map(String)], netns }
    : { file, args: ['-Ln'], netns });
  if (result.exitCode !== 0 || result.failure !== undefined) {
    const reason = ipvsUnavailableReason(result.stderr);
    if (reason !== undefined) return { available: false, reason };
    await env.requireNamespace(netns);
    throw new KernelError(`cannot list IPVS services in ${env.describe(netns)}: ${new ExecError(result).message}`, 'other');
  }
  try {
    return { available: true, services: parseIpvsadmList(result.stdout) };
  } catch (error) {
    throw new KernelError(`cannot parse ipvsadm -Ln in ${env.describe(netns)}: ${(error as Error).message}`, 'other');
  }
}

export async function applyIpvs(env: KernelEnv, netns: string | null, commands: readonly string[]): Promise<void> {
  if (commands.length === 0) return;
  // ipvsadm -R reads one command per line; a newline inside one would smuggle in another.
  const bad = commands.find((c) => /[\n\r]/.test(c));
  if (bad !== undefined) throw new KernelError(`IPVS command spans lines: ${JSON.stringify(bad)}`, 'other');
  await env.requireNamespace(netns);
  const file = await env.program('ipvsadm');
  if (file === undefined) throw new KernelError(NOT_INSTALLED, 'no-ipvs');
  const result = await env.runner.run({ file, args: ['-R'], netns, input: commands.map((c) => `${c}\n`).join('') });
  if (result.exitCode === 0 && result.failure === undefined) return;
  const reason = ipvsUnavailableReason(result.stderr);
  if (reason !== undefined) throw new KernelError(`cannot program IPVS in ${env.describe(netns)}: ${reason}`, 'no-ipvs');
  await env.requireNamespace(netns);
  const kind = result.failure === undefined ? 'rejected' : 'other';
  throw new KernelError(`ipvsadm -R failed in ${env.describe(netns)}: ${new ExecError(result).message}`, kind);
}
