// Interface addresses in a namespace, read and written over rtnetlink (npm
// `netlink`), as SPEC §2 asks for a load balancer's VIP addresses.
//
// A netlink socket talks to the namespace of the process that opened it, and a
// Node process cannot move itself into another (setns(2) is not reachable and a
// threaded process may not change its network namespace anyway). So the socket
// is opened by a small child (addresses-child.ts) started inside the namespace
// with nsenter, through the runner like every other program: one spawn per read
// and one per batch of changes, recorded and timed like the rest. `ip -batch`
// would do the same work, but through a text format to quote and parse back.
import { fileURLToPath } from 'node:url';
import { ExecError } from './exec.js';
import type { KernelEnv } from './env.js';
import { KernelError, type AddressOp, type ObservedAddress } from './types.js';

const CHILD = fileURLToPath(new URL('./addresses-child.js', import.meta.url));

interface Answer {
  readonly addresses?: ObservedAddress[];
  readonly done?: number;
  readonly error?: string;
}

async function ask(env: KernelEnv, netns: string | null, request: object, what: string): Promise<Answer> {
  await env.requireNamespace(netns);
  const result = await env.runner.run({ file: process.execPath, args: [CHILD], netns, input: JSON.stringify(request) });
  let answer: Answer | undefined;
  try {
    answer = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as Answer;
  } catch {
    answer = undefined;
  }
  if (answer === undefined || result.exitCode !== 0 || result.failure !== undefined) {
    await env.requireNamespace(netns);
    throw new KernelError(`cannot ${what} in ${env.describe(netns)}: ${new ExecError(result).message}`, 'other');
  }
  return answer;
}

export async function readAddresses(env: KernelEnv, netns: string | null): Promise<ObservedAddress[]> {
  const answer = await ask(env, netns, { list: true }, 'list addresses');
  if (answer.error !== undefined || answer.addresses === undefined) {
    throw new KernelError(`cannot list addresses in ${env.describe(netns)}: ${answer.error ?? 'no answer'}`, 'other');
  }
  return answer.addresses;
}

/** Applies the changes in order; stops at the first the kernel refuses and says which. */
export async function applyAddresses(env: KernelEnv, netns: string | null, ops: readonly AddressOp[]): Promise<void> {
  if (ops.length === 0) return;
  const answer = await ask(env, netns, { ops }, 'change addresses');
  if (answer.error !== undefined) {
    throw new KernelError(`${answer.error} in ${env.describe(netns)} (${answer.done ?? 0} of ${ops.length} changes made)`, 'rejected');
  }
}
