// Runtime state under /run/vipmesh/ (VIPMESH_RUN_DIR overrides it, for tests and
// for running several agents side by side): the resolver ports a running agent
// holds, its latest probe verdicts, and the fwmarks the last reconcile kept. Reading is enough for `plan`, which needs
// no root; a missing or stale file simply means "no agent".
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRecord, processAlive, readJson } from './util.js';
import type { NodeFacts, ResolverPorts } from '../plan/types.js';
import { readState } from './store.js';

export const DEFAULT_RUN_DIR = '/run/vipmesh';

export function runDir(): string {
  return process.env['VIPMESH_RUN_DIR'] ?? DEFAULT_RUN_DIR;
}

export const RESOLVER_FILE = 'resolver.json';
export const HEALTH_FILE = 'health.json';



function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;
}


/** `resolver.json`: `{ pid, namespaces: { <netns path>: { udp, tcp } } }`, honoured only while pid lives. */
export async function readResolverPorts(dir: string): Promise<Map<string, ResolverPorts>> {
  const data = await readJson(join(dir, RESOLVER_FILE));
  const ports = new Map<string, ResolverPorts>();
  if (!isRecord(data) || typeof data['pid'] !== 'number' || !processAlive(data['pid'])) return ports;
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

/**
 * Writes `health.json` whole and renames it into place, so a reader (the
 * resolver, a one-shot reconcile) never sees half a file. One writer at a time:
 * the agent's probe scheduler.
 */
export async function writeProbes(dir: string, probes: ReadonlyMap<string, boolean>): Promise<void> {
  const sorted = [...probes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const tasks = Object.fromEntries(sorted.map(([task, healthy]) => [task, { healthy }]));
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `${HEALTH_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify({ tasks }, null, 2) + '\n');
  await rename(tmp, join(dir, HEALTH_FILE));
}

/** Everything the planner needs from this node; marks are the ones the last reconcile kept. */
export async function readNodeFacts(dir: string, kernelRelease: string): Promise<NodeFacts> {
  const [resolverPorts, probes, state] = await Promise.all([readResolverPorts(dir), readProbes(dir), readState(dir)]);
  const marks = new Map(Object.entries(state.marks).map(([ns, byLabel]) => [ns, new Map(Object.entries(byLabel))]));
  return { kernelRelease, resolverPorts, marks, probes };
}
