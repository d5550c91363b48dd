// Guest-only: `vipmesh agent` as a real child process, as a node runs it, its
// JSON log lines collected as they come. Waits are bounded only to catch a hang,
// and generously: the guest is emulated (TCG), every process start takes seconds.
// The process is killed when the test ends, pass or fail.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { ROOT } from './lab.js';

const CLI = `${ROOT}/dist/src/cli/bin.js`;
const HANG_MS = 180_000;

export interface LogLine {
  readonly event?: string;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface GuestAgent {
  readonly lines: LogLine[];
  /** The first log line at index `from` or later that matches, and its index; waits for it. */
  line(what: string, match: (line: LogLine) => boolean, from?: number): Promise<{ line: LogLine; index: number }>;
  /**
   * Waits until the agent has programmed the catalog written after log line
   * `from`: its reload logged, then a pass that the reload asked for, which
   * failed nowhere. Resolves once that pass's line is logged, so with the
   * datapath programmed.
   */
  programmed(from: number): Promise<LogLine>;
  /** Sends SIGTERM; resolves with how the process ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startAgent(t: TestContext, catalog: string, runDir: string, node: string, extra: readonly string[] = []): GuestAgent {
  const args = [CLI, 'agent', '-c', catalog, '--node', node, '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', ...extra];
  const child = spawn(process.execPath, args, { env: { ...process.env, VIPMESH_RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let stderr = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      lines.push({ event: 'not-json', msg: text });
    }
    wake();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      wake();
      resolve(exit);
    });
  });
  t.after(async () => {
    if (exit === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const log = (): string => lines.map((l) => l.msg).join(' | ');

  const line = async (what: string, match: (l: LogLine) => boolean, from = 0): Promise<{ line: LogLine; index: number }> => {
    const deadline = Date.now() + HANG_MS;
    for (;;) {
      const index = lines.findIndex((l, i) => i >= from && match(l));
      if (index >= 0) return { line: lines[index]!, index };
      if (exit !== undefined) throw new Error(`waiting for ${what}: the agent exited (${exit.code ?? exit.signal}); stderr: ${stderr.trim()}; log: ${log()}`);
      if (Date.now() > deadline) throw new Error(`waiting for ${what}: nothing after ${HANG_MS} ms (a hang); log: ${log()}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, 500);
        waiters.add(done);
      });
    }
  };

  return {
    lines, line,
    async programmed(from) {
      const reload = await line('the catalog reload', (l) => l.event === 'catalog', from);
      if (reload.line['valid'] !== true) throw new Error(`the agent found the catalog invalid: ${JSON.stringify(reload.line)}`);
      // A pass that started before the reload was logged cannot carry its request.
      const pass = await line('the pass the reload asked for', (l) => l.event === 'pass' && Array.isArray(l['triggers']) && l['triggers'].includes('catalog'), reload.index + 1);
      const failures = pass.line['failures'];
      if (pass.line['error'] !== undefined || !Array.isArray(failures) || failures.length > 0) {
        throw new Error(`the pass programming the catalog failed: ${JSON.stringify(pass.line)}`);
      }
      return pass.line;
    },
    async stop() {
      if (exit === undefined) child.kill('SIGTERM');
      return exited;
    },
  };
}
