// Throwaway network namespaces for kernel tests. Names are unique per process and
// call; every namespace is removed when the test ends, pass or fail.
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import { requireTool } from './tools.js';

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

let ipvs: Promise<boolean> | undefined;

/**
 * Does this kernel have IPVS? Kernel tests assert what vipmesh does either way: an
 * ordinary Debian host and the kernel lane's guest have it, some CI kernels do not.
 * Asked once per process, the way vipmesh meets it: `ipvsadm -Ln` in a fresh
 * namespace (which loads ip_vs where the module exists). Anything but a list or
 * "no IPVS here" is an error, so a broken probe never passes for a missing IPVS.
 */
export function kernelHasIpvs(): Promise<boolean> {
  ipvs ??= probeIpvs();
  return ipvs;
}

async function probeIpvs(): Promise<boolean> {
  requireRoot();
  await requireTool('ipvsadm');
  const name = uniqueName('vmp');
  await run('ip', ['netns', 'add', name]);
  try {
    const r = await execa('ip', ['netns', 'exec', name, 'ipvsadm', '-Ln'], { reject: false });
    if (r.exitCode === 0 && /^IP Virtual Server version/m.test(r.stdout)) return true;
    if (/Can't initialize ipvs|Protocol not available/.test(r.stderr)) return false;
    throw new Error(`cannot tell whether this kernel has IPVS: ${r.command} exited ${r.exitCode}: ${r.stderr.trim()}`);
  } finally {
    await execa('ip', ['netns', 'delete', name], { reject: false });
  }
}
