// Runtime state under /run/vipmesh/ (VIPMESH_RUN_DIR overrides it, for tests and
// for running several agents side by side): the resolver ports a running agent
// holds and its latest probe verdicts. Reading is enough for `plan`, which needs
// no root; a missing or stale file simply means "no agent".
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeFacts, ResolverPorts } from '../plan/types.js';

export const DEFAULT_RUN_DIR = '/run/vipmesh';

export function runDir(): string {
  return process.env['VIPMESH_RUN_DIR'] ?? DEFAULT_RUN_DIR;
}

export const RESOLVER_FILE = 'resolver.json';
export const HEALTH_FILE = 'health.json';

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else, still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `resolver.json`: `{ pid, namespaces: { <netns path>: { udp, tcp } } }`, honoured only while pid lives. */
export async function readResolverPorts(dir: string): Promise<Map<string, ResolverPorts>> {
  const data = await readJson(join(dir, RESOLVER_FILE));
  const ports = new Map<string, ResolverPorts>();
  if (!isRecord(data) || typeof data['pid'] !== 'number' || !alive(data['pid'])) return ports;
  const namespaces = data['namespaces'];
  if (!isRecord(namespaces)) return ports;
  for (const [netns, entry] of Object.entries(namespaces)) {
    if (isRecord(entry) && isPort(entry['udp']) && isPort(entry['tcp'])) {
      ports.set(netns, { udp: entry['udp'], tcp: entry['tcp'] });
    }
  }
  return ports;
}

/** `health.json`: `{ tasks: { <task>: { healthy: boolean } } }`. */
export async function readProbes(dir: string): Promise<Map<string, boolean>> {
  const data = await readJson(join(dir, HEALTH_FILE));
  const probes = new Map<string, boolean>();
  const tasks = isRecord(data) ? data['tasks'] : undefined;
  if (!isRecord(tasks)) return probes;
  for (const [task, entry] of Object.entries(tasks)) {
    if (isRecord(entry) && typeof entry['healthy'] === 'boolean') probes.set(task, entry['healthy']);
  }
  return probes;
}

export async function readNodeFacts(dir: string, kernelRelease: string): Promise<NodeFacts> {
  const [resolverPorts, probes] = await Promise.all([readResolverPorts(dir), readProbes(dir)]);
  return { kernelRelease, resolverPorts, marks: new Map(), probes };
}
