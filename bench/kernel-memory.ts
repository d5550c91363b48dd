// Kernel memory for the guest benchmarks: /proc/meminfo and /proc/slabinfo read
// before and after some state is programmed, and the difference. IPVS services
// and real servers live in kmalloc caches (kmalloc-512 on 6.1) plus per-CPU
// counters, so the whole slab, SUnreclaim and Percpu say more than the ip_vs_*
// caches alone (those hold connections, not configuration).
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Memory {
  /** kB, from /proc/meminfo. */
  readonly meminfo: ReadonlyMap<string, number>;
  /** cache → active objects and object size, from /proc/slabinfo (absent if unreadable). */
  readonly slabs?: ReadonlyMap<string, { objects: number; size: number }>;
}

export function parseMeminfo(text: string): Map<string, number> {
  const meminfo = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (m) meminfo.set(m[1]!, Number(m[2]));
  }
  return meminfo;
}

export function parseSlabinfo(text: string): Map<string, { objects: number; size: number }> {
  const slabs = new Map<string, { objects: number; size: number }>();
  for (const line of text.split('\n')) {
    // name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables ...
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(line);
    if (m && !line.startsWith('#')) slabs.set(m[1]!, { objects: Number(m[2]), size: Number(m[4]) });
  }
  return slabs;
}

export function readMemory(): Memory {
  const meminfo = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'));
  let text: string;
  try {
    text = readFileSync('/proc/slabinfo', 'utf8');
  } catch {
    return { meminfo };
  }
  return { meminfo, slabs: parseSlabinfo(text) };
}

/** Memory once the spawned processes are gone and RCU has freed what they left. */
export async function settledMemory(ms = 1500): Promise<Memory> {
  await sleep(ms);
  return readMemory();
}

export interface MemoryDelta {
  /** bytes, over every slab cache: active objects × object size */
  readonly slabObjects?: number;
  /** bytes, from /proc/meminfo (these move by whole pages) */
  readonly slab: number;
  readonly sunreclaim: number;
  readonly percpu: number;
  /** What MemAvailable went down by (kernel and user memory alike). */
  readonly availableDrop: number;
  /** caches that grew most, by bytes */
  readonly caches: readonly { name: string; objects: number; bytes: number }[];
}

export function memoryDelta(before: Memory, after: Memory): MemoryDelta {
  const kb = (name: string) => ((after.meminfo.get(name) ?? 0) - (before.meminfo.get(name) ?? 0)) * 1024;
  const caches: { name: string; objects: number; bytes: number }[] = [];
  let slabObjects: number | undefined;
  if (before.slabs && after.slabs) {
    slabObjects = 0;
    for (const [name, a] of after.slabs) {
      const b = before.slabs.get(name) ?? { objects: 0, size: a.size };
      const bytes = a.objects * a.size - b.objects * b.size;
      slabObjects += bytes;
      caches.push({ name, objects: a.objects - b.objects, bytes });
    }
    caches.sort((x, y) => y.bytes - x.bytes);
  }
  return {
    ...(slabObjects === undefined ? {} : { slabObjects }),
    slab: kb('Slab'),
    sunreclaim: kb('SUnreclaim'),
    percpu: kb('Percpu'),
    availableDrop: -kb('MemAvailable'),
    caches: caches.filter((c) => c.bytes > 0).slice(0, 4),
  };
}

export function bytesText(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1024 * 1024 * 1024) return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
  if (abs >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (abs >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n.toFixed(0)} B`;
}
