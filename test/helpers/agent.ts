// `vipmesh agent` as a real child process for kernel tests: its JSON log lines
// are collected as they come, waits are bounded only to catch a hang, and the
// process is killed when the test ends, pass or fail.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import { type Cluster, cluster } from './cluster.js';
import { CLI } from './paths.js';
import { requireTool } from './tools.js';

/** Only catches a hang: nothing the agent does here takes near this long. */
export const HANG_MS = 30_000;

export interface LogLine {
  readonly event?: string;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  readonly stderr: () => string;
  /** The first log line (from `from` on) that matches; waits for it (up to `hangMs`, default HANG_MS). */
  line(what: string, match: (line: LogLine) => boolean, from?: number, hangMs?: number): Promise<LogLine>;
  /** Where HTTP listens, from the start line. */
  url(): Promise<string>;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A test's context, or a benchmark's list of things to undo: what the agent process needs of it. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

export function startAgentProcess(t: Cleanup, args: readonly string[], env: Record<string, string>): AgentProcess {
  const child = spawn(process.execPath, [CLI, 'agent', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let stderr = '';
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      lines.push({ msg: text, event: 'not-json' });
    }
    wake();
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      wake();
      resolve({ code, signal });
    });
  });
  t.after(async () => {
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const line = async (what: string, match: (l: LogLine) => boolean, from = 0, hangMs = HANG_MS): Promise<LogLine> => {
    const deadline = Date.now() + hangMs;
    for (;;) {
      const found = lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (done) throw new Error(`waiting for ${what}: the agent exited; stderr: ${stderr.trim()}; log: ${lines.map((l) => l.msg).join(' | ')}`);
      if (Date.now() > deadline) throw new Error(`waiting for ${what}: nothing after ${hangMs} ms (a hang); log: ${lines.map((l) => l.msg).join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(resolve);
          resolve();
        }, 500);
        waiters.add(() => {
          clearTimeout(timer);
          waiters.delete(resolve);
          resolve();
        });
      });
    }
  };
  return {
    child, lines, exited, line,
    stderr: () => stderr,
    async url() {
      const start = await line('the start line', (l) => l.event === 'start');
      return `http://${String(start['listen'])}`;
    },
  };
}

/** Retries `check` until it holds (it throws until then); only a hang fails it. */
export async function eventually<T>(what: string, check: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + HANG_MS;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: still not so after ${HANG_MS} ms: ${(error as Error).message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** GET with a bound that only catches a hang. */
export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(HANG_MS) });
  return { status: response.status, body: await response.text() };
}

/** dig +short against the embedded resolver from inside a namespace; the answers, sorted. */
export async function digIn(ns: string, name: string): Promise<string[]> {
  const result = await execa('ip', ['netns', 'exec', ns, 'dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', name], { reject: false });
  if (result.exitCode !== 0) throw new Error(`dig ${name} in ${ns} exited ${result.exitCode}: ${result.stdout}${result.stderr}`);
  return result.stdout.split('\n').filter((l) => l !== '').sort();
}

/** Every pid in the process tree under `root` (itself included), from /proc/<pid>/task/<tid>/children. */
export function processTree(root: number): number[] {
  const seen: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (seen.includes(pid)) continue;
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // it exited meanwhile
    }
    seen.push(pid);
    for (const tid of tids) {
      try {
        for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (child.trim() !== '') todo.push(Number(child));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return seen;
}

/** An agent test's node: the cluster of test/helpers/cluster.ts, and the agents started on it. */
export interface World {
  readonly c: Cluster;
  readonly env: Record<string, string>;
  readonly args: string[];
  /** Killed before the test's files go, so none of them writes its run directory again. */
  readonly agents: AgentProcess[];
}

/** cluster(), loopbacks up, an address on the client (dig needs one off lo); `edit` changes the catalog first. */
export async function world(t: TestContext, extra: readonly string[] = [], edit?: (yaml: string) => string): Promise<World> {
  await requireTool('dig');
  await requireTool('iptables-save');
  // After hooks run in the order they were added: the agents are killed first, so none of them
  // writes the cluster's files or the namespaces' /etc/netns entries again once those go.
  const agents: AgentProcess[] = [];
  t.after(async () => {
    for (const agent of agents) {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
  });
  const c = await cluster(t);
  // The agents write /etc/netns/<name>/resolv.conf; the plumbing removes it with the namespaces.
  for (const name of Object.values(c.ns)) await c.plumbing.etcNetns(name);
  // Both ends stay in the client's namespace: it only needs an address that is not on lo.
  await c.plumbing.wire(c.ns.client, 'eth0', '10.0.1.31/24', c.ns.client, 'peer0', []);
  if (edit !== undefined) c.write(edit);
  return {
    c, agents,
    env: { VIPMESH_RUN_DIR: c.runDir },
    args: ['-c', c.catalog, '--node', 'node-1', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', ...extra],
  };
}
