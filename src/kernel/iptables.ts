// iptables-save / iptables-restore of the backend the host uses. The explicit
// -nft-/-legacy- binaries are used because the plain names follow the
// alternatives system, which may point elsewhere than the host's `iptables`; rules
// written through the other backend would be invisible to the host's tools.
import type { Family } from '../catalog/types.js';
import { ExecError, type ExecResult, type Runner } from './exec.js';
import type { KernelEnv } from './env.js';
import { parseIptablesSave, quoteInput, restoreFailureLines, restoreStderr } from './parse-iptables-save.js';
import { KernelError, type ObservedIptables } from './types.js';

export type Backend = 'nft' | 'legacy';

const BACKEND_NAMES: Record<Backend, string> = { nft: 'nf_tables', legacy: 'legacy' };

/** Which backend `iptables --version`, run in the agent's own namespace, reports. */
export async function detectBackend(runner: Runner): Promise<Backend> {
  const result = await runner.run({ file: 'iptables', args: ['--version'] });
  if (result.failure !== undefined || result.exitCode !== 0) {
    throw new KernelError(`cannot tell which iptables backend the host uses: ${new ExecError(result).message}`, 'backend');
  }
  const text = result.stdout + result.stderr;
  if (text.includes('(nf_tables)')) return 'nft';
  if (text.includes('(legacy)')) return 'legacy';
  // Before 1.8 there was only the legacy backend, and the version line does not name it.
  if (/iptables v1\.[0-7]\./.test(text)) return 'legacy';
  throw new KernelError(`cannot tell which iptables backend the host uses from \`iptables --version\`: ${text.trim()}`, 'backend');
}

export type Tool = 'save' | 'restore';

/**
 * The binary for one backend, family and tool. iptables before 1.8 ships only
 * the plain names, which then are legacy; `lookup` answers from the file system.
 */
export async function iptablesProgram(
  backend: Backend, family: Family, tool: Tool, lookup: (name: string) => Promise<string | undefined>,
): Promise<string> {
  const base = family === 6 ? 'ip6tables' : 'iptables';
  const expected = `${base}-${backend}-${tool}`;
  const path = await lookup(expected);
  if (path !== undefined) return path;
  if (backend === 'legacy' && (await lookup(`${base}-nft-${tool}`)) === undefined) {
    const plain = await lookup(`${base}-${tool}`);
    if (plain !== undefined) return plain;
  }
  throw new KernelError(
    `the host's iptables uses the ${BACKEND_NAMES[backend]} backend, but ${expected} is not installed`,
    'backend',
  );
}

async function failed(env: KernelEnv, netns: string | null, result: ExecResult): Promise<boolean> {
  if (result.exitCode === 0 && result.failure === undefined) return false;
  // nsenter fails the same way for a namespace deleted since the check above.
  await env.requireNamespace(netns);
  return true;
}

export async function readIptables(env: KernelEnv, backend: Backend, netns: string | null, family: Family): Promise<ObservedIptables> {
  await env.requireNamespace(netns);
  const file = await iptablesProgram(backend, family, 'save', (name) => env.program(name));
  const result = await env.runner.run({ file, args: [], netns });
  if (await failed(env, netns, result)) {
    throw new KernelError(`cannot read IPv${family} rules in ${env.describe(netns)}: ${new ExecError(result).message}`, 'other');
  }
  try {
    return parseIptablesSave(result.stdout);
  } catch (error) {
    throw new KernelError(`cannot parse the output of ${file} in ${env.describe(netns)}: ${(error as Error).message}`, 'other');
  }
}

export async function restoreIptables(env: KernelEnv, backend: Backend, netns: string | null, family: Family, text: string): Promise<void> {
  await env.requireNamespace(netns);
  const file = await iptablesProgram(backend, family, 'restore', (name) => env.program(name));
  // -w: the legacy backend shares the xtables lock with every other iptables user.
  const result = await env.runner.run({ file, args: ['--noflush', '-w'], netns, input: text });
  if (!(await failed(env, netns, result))) return;
  if (result.failure !== undefined) {
    throw new KernelError(`cannot restore IPv${family} rules in ${env.describe(netns)}: ${new ExecError(result).message}`, 'other');
  }
  const lines = restoreFailureLines(result.stderr, text);
  const quoted = quoteInput(text, lines);
  throw new KernelError(
    `${file.split('/').pop()} rejected the IPv${family} rules for ${env.describe(netns)}: ${restoreStderr(result.stderr)}` +
      (quoted === '' ? '' : `\ninput around line${lines.length === 1 ? '' : 's'} ${lines.join(', ')}:\n${quoted}`),
    'rejected',
  );
}
