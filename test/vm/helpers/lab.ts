// Guest-only: namespaces, bridges and veths for a scenario, made by the lab's
// plumbing (src/lab/plumbing.ts) and all removed when the test ends. Runs only
// inside the kernel lane's VM (VIPMESH_LANE=1).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import { Plumbing, inNs } from '../../../src/lab/plumbing.js';
import type { StreamRecord } from './client.js';

export { inNs };

export const ROOT = '/vipmesh';
const HELPERS = `${ROOT}/dist/test/vm/helpers`;
const CLI = `${ROOT}/dist/src/cli/bin.js`;

export function requireLane(): void {
  if (process.env['VIPMESH_LANE'] !== '1') {
    throw new Error('this is a guest-only scenario: it runs inside the kernel lane VM (test/lane/run.sh), which has IPVS');
  }
}

export class Lab {
  /** Namespace names end in it, so two labs in one guest never meet. */
  private readonly id = randomBytes(2).toString('hex');
  /** One per test: everything the scenario's topology is made of, removed when the test ends. */
  readonly plumbing = new Plumbing();
  readonly dir = mkdtempSync(join(tmpdir(), 'lab-'));

  constructor(private readonly t: TestContext) {
    requireLane();
    t.after(() => this.plumbing.remove());
  }

  /** A namespace with lo up; returns its name (its path is /run/netns/<name>). */
  ns(label: string): Promise<string> {
    return this.plumbing.ns(`${label}-${this.id}`);
  }

  /** A namespace holding bridge br0: one L2 segment. */
  segment(label: string): Promise<string> {
    return this.plumbing.segment(`${label}-${this.id}`);
  }

  /** Plugs `ns` into a segment as interface `ifname` with address `cidr`. */
  async plug(ns: string, segment: string, ifname: string, cidr: string): Promise<void> {
    await this.plumbing.plug(ns, segment, ifname, cidr);
  }

  /** A point-to-point veth between two namespaces. */
  wire(a: string, aIf: string, aCidr: string, b: string, bIf: string, bCidr: string): Promise<void> {
    return this.plumbing.wire(a, aIf, aCidr, b, bIf, bCidr);
  }

  route(ns: string, ...args: string[]): Promise<void> {
    return this.plumbing.route(ns, ...args);
  }

  /** Starts an echo server (TCP+UDP) named `name` in `ns` on `port`. */
  async server(ns: string, name: string, port = 80): Promise<{ stop: () => void }> {
    const child = execa('ip', ['netns', 'exec', ns, 'node', `${HELPERS}/echo-server.js`, name, String(port)], { reject: false, buffer: false });
    this.t.after(() => { child.kill('SIGKILL'); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`echo server ${name} did not start`)), 20_000);
      child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(timer); resolve(); } });
    });
    return { stop: () => { child.kill('SIGKILL'); } };
  }

  /** Runs the client in `ns`; returns its answer lines. */
  async client(ns: string, ...args: string[]): Promise<string[]> {
    return (await inNs(ns, 'node', [`${HELPERS}/client.js`, ...args])).split('\n').filter((l) => l !== '');
  }

  /** A held TCP connection: send(line) returns the answer; close() resets it. */
  async hold(ns: string, host: string, port: number): Promise<{ first: string; send: (l: string) => Promise<string>; close: () => Promise<void> }> {
    const child = execa('ip', ['netns', 'exec', ns, 'node', `${HELPERS}/client.js`, 'hold', host, String(port)], { reject: false, buffer: false, stdin: 'pipe' });
    this.t.after(() => { child.kill('SIGKILL'); });
    const lines: string[] = [];
    const waiters: ((l: string) => void)[] = [];
    let partial = '';
    child.stdout?.on('data', (d: Buffer) => {
      partial += d.toString();
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        const w = waiters.shift();
        if (w) w(line); else lines.push(line);
      }
    });
    const next = () => new Promise<string>((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) return resolve(l);
      const timer = setTimeout(() => reject(new Error('held connection: no answer')), 20_000);
      waiters.push((line) => { clearTimeout(timer); resolve(line); });
    });
    const first = await next();
    return {
      first,
      send: async (line) => { child.stdin?.write(`${line}\n`); return next(); },
      close: async () => { child.stdin?.write('close\n'); await next(); },
    };
  }

  /**
   * A steady stream of connections from `ns`, one every `periodMs` (client.js
   * stream). `records` grows as they answer; stop() ends the stream, waits for the
   * connections in flight and returns every record.
   */
  stream(ns: string, host: string, port: number, periodMs: number): { records: StreamRecord[]; stop: () => Promise<StreamRecord[]> } {
    const child = execa('ip', ['netns', 'exec', ns, 'node', `${HELPERS}/client.js`, 'stream', host, String(port), String(periodMs)], { reject: false, buffer: false, stdin: 'pipe' });
    this.t.after(() => { child.kill('SIGKILL'); });
    const records: StreamRecord[] = [];
    let partial = '';
    let stderr = '';
    let finished = false; // the client said "done": every connection it opened is in records
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout?.on('data', (d: Buffer) => {
      partial += d.toString();
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line === 'done') finished = true;
        else records.push(JSON.parse(line) as StreamRecord);
      }
    });
    return {
      records,
      stop: async () => {
        child.stdin?.write('stop\n');
        const result = await child;
        if (result.exitCode !== 0 || !finished) throw new Error(`the stream's client exited ${result.exitCode}${finished ? '' : ' without finishing'}: ${stderr}`);
        return records;
      },
    };
  }

  /**
   * Writes the catalog file and returns its path. Always a new file renamed over
   * the old, as tools do: an agent watching it never reads half a file.
   */
  catalog(yaml: string): string {
    const file = join(this.dir, 'catalog.yaml');
    writeFileSync(`${file}.tmp`, yaml);
    renameSync(`${file}.tmp`, file);
    return file;
  }
}

export interface CliResult { readonly exitCode: number; readonly stdout: string; readonly stderr: string }

/** Runs vipmesh as a node would: each node has its own runtime directory. */
export async function vipmesh(runDir: string, ...args: string[]): Promise<CliResult> {
  const r = await execa('node', [CLI, ...args], { reject: false, env: { VIPMESH_RUN_DIR: runDir } });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `vipmesh reconcile` of the catalog for one node, which must succeed, then
 * `vipmesh diff`, which must find nothing left to do. Returns reconcile's output.
 */
export async function reconcileAndCheck(runDir: string, catalog: string, node: string): Promise<string> {
  const result = await vipmesh(runDir, 'reconcile', '-c', catalog, '--node', node);
  assert.equal(result.exitCode, 0, `${node}: reconcile failed:\n${result.stdout}\n${result.stderr}`);
  const diff = await vipmesh(runDir, 'diff', '-c', catalog, '--node', node);
  assert.equal(diff.exitCode, 0, `${node}: diff after reconcile should find nothing:\n${diff.stdout}\n${diff.stderr}`);
  return result.stdout;
}

/** Counts answers per backend name ("web.1 10.0.1.9" → web.1). */
export function tally(lines: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const name = line.split(' ')[0] ?? '';
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}
