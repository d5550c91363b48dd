import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI } from './paths.js';

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** An empty runtime directory, so no agent state on this machine leaks into a test. */
export function emptyRunDir(): string {
  return mkdtempSync(join(tmpdir(), 'vipmesh-run-'));
}

/** Runs the built CLI; without a VIPMESH_RUN_DIR it gets an empty one, removed afterwards. */
export async function vipmesh(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const own = env['VIPMESH_RUN_DIR'] === undefined ? emptyRunDir() : undefined;
  try {
    const result = await execa(process.execPath, [CLI, ...args], {
      reject: false,
      stripFinalNewline: false,
      env: { ...(own === undefined ? {} : { VIPMESH_RUN_DIR: own }), ...env },
    });
    return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
  } finally {
    if (own !== undefined) rmSync(own, { recursive: true, force: true });
  }
}
