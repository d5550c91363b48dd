// IPVS through ipvsadm. Listing uses -Ln rather than -S because draining needs
// the per-real-server connection counters that only -L prints. Changes arrive as
// typed operations and become `ipvsadm -R` text here, at the edge, and nowhere else.
import { deleteRealServerLine, deleteServiceLine, realServerLine, serviceLine } from '../render/ipvs.js';
import { ExecError } from './exec.js';
import type { KernelEnv } from './env.js';
import { ipvsUnavailableReason, parseIpvsadmList } from './parse-ipvsadm.js';
import { KernelError, type IpvsOp, type ObservedIpvs } from './types.js';

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

/** One change as the `ipvsadm -R` line that makes it. */
export function ipvsadmLine(op: IpvsOp): string {
  switch (op.kind) {
    case 'add-service': return serviceLine(op, '-A');
    case 'edit-service': return serviceLine(op, '-E');
    case 'delete-service': return deleteServiceLine(op.fwmark);
    case 'add-real-server': return realServerLine(op.fwmark, op, '-a');
    case 'edit-real-server': return realServerLine(op.fwmark, op, '-e');
    case 'delete-real-server': return deleteRealServerLine(op.fwmark, op);
  }
}

/** The `ipvsadm -R` input for a batch of changes. */
export function renderIpvsOps(ops: readonly IpvsOp[]): string {
  return ops.map((op) => `${ipvsadmLine(op)}\n`).join('');
}

export async function applyIpvs(env: KernelEnv, netns: string | null, ops: readonly IpvsOp[]): Promise<void> {
  if (ops.length === 0) return;
  const lines = ops.map(ipvsadmLine);
  // ipvsadm -R reads one command per line; a newline inside a field would smuggle in another.
  const bad = lines.find((line) => /[\n\r]/.test(line));
  if (bad !== undefined) throw new KernelError(`IPVS command spans lines: ${JSON.stringify(bad)}`, 'other');
  await env.requireNamespace(netns);
  const file = await env.program('ipvsadm');
  if (file === undefined) throw new KernelError(NOT_INSTALLED, 'no-ipvs');
  const result = await env.runner.run({ file, args: ['-R'], netns, input: lines.map((line) => `${line}\n`).join('') });
  if (result.exitCode === 0 && result.failure === undefined) return;
  const reason = ipvsUnavailableReason(result.stderr);
  if (reason !== undefined) throw new KernelError(`cannot program IPVS in ${env.describe(netns)}: ${reason}`, 'no-ipvs');
  await env.requireNamespace(netns);
  const kind = result.failure === undefined ? 'rejected' : 'other';
  throw new KernelError(`ipvsadm -R failed in ${env.describe(netns)}: ${new ExecError(result).message}`, kind);
}
