// Throwaway network namespaces for kernel tests, made by the lab's plumbing
// (src/lab/plumbing.ts) like every other topology in the tests, the kernel
// lane's scenarios and the lab. Names are unique per process and call; each
// test (or subtest) has one Plumbing, and everything it made is removed when
// that test ends, pass or fail.
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import { Plumbing, inNs, sh } from '../../src/lab/plumbing.js';
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

/** Runs one program; a non-zero exit is an error quoting the command and its stderr. */
export const run = sh;

/** Runs a command inside the namespace. */
export const inNetns = inNs;

const perTest = new WeakMap<TestContext, Plumbing>();

/**
 * The test's plumbing: one per test (or subtest), made on first use, and
 * removed by an after hook added then. After hooks run in the order they were
 * added, so a test that must stop processes before its namespaces and their
 * /etc/netns entries go adds that hook before its first namespace.
 */
export function plumbing(t: TestContext): Plumbing {
  let made = perTest.get(t);
  if (made === undefined) {
    requireRoot();
    const p = new Plumbing();
    t.after(() => p.remove());
    perTest.set(t, p);
    made = p;
  }
  return made;
}

/** A new namespace, lo up, that is deleted when the test (or subtest) finishes. */
export async function netns(t: TestContext, prefix = 'vmt'): Promise<string> {
  return plumbing(t).ns(uniqueName(prefix));
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
  // Its own plumbing: the answer is shared by every test of the process, so no one test owns it.
  const probe = new Plumbing();
  try {
    const name = await probe.ns(uniqueName('vmp'));
    const r = await execa('ip', ['netns', 'exec', name, 'ipvsadm', '-Ln'], { reject: false });
    if (r.exitCode === 0 && /^IP Virtual Server version/m.test(r.stdout)) return true;
    if (/Can't initialize ipvs|Protocol not available/.test(r.stderr)) return false;
    throw new Error(`cannot tell whether this kernel has IPVS: ${r.command} exited ${r.exitCode}: ${r.stderr.trim()}`);
  } finally {
    await probe.remove();
  }
}
