// Throwaway network namespaces for kernel tests. Names are unique per process and
// call; every namespace is removed when the test ends, pass or fail.
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { execa } from 'execa';

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('kernel tests need root (they create network namespaces); run them as root, as CI does');
  }
}

export function uniqueName(prefix: string): string {
  // Interface names are limited to 15 characters; keep namespace names as short.
  return `${prefix}${randomBytes(4).toString('hex')}`.slice(0, 15);
}

export async function run(file: string, args: readonly string[], input?: string): Promise<string> {
  const result = await execa(file, args, { ...(input === undefined ? {} : { input }), reject: false });
  if (result.exitCode !== 0) {
    throw new Error(`${result.command} exited ${result.exitCode}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Runs a command inside the namespace. */
export async function inNetns(name: string, file: string, args: readonly string[], input?: string): Promise<string> {
  return run('ip', ['netns', 'exec', name, file, ...args], input);
}

/** A new namespace that is deleted when the test (or subtest) finishes. */
export async function netns(t: TestContext, prefix = 'vmt'): Promise<string> {
  requireRoot();
  const name = uniqueName(prefix);
  await run('ip', ['netns', 'add', name]);
  t.after(async () => {
    await execa('ip', ['netns', 'delete', name], { reject: false });
  });
  return name;
}
