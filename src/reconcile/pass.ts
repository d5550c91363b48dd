// One pass over one node, as a library: the one-shot commands and the agent both
// call this. It composes the host's kernel (pooled shells, iptables backend
// detection), the node facts and stored state under the run directory,
// reconcileNode, and the state write; it returns what happened, typed, so the
// caller prints, logs or counts it in one place. Taking the node's lock is the
// caller's business: the CLI takes it per command, the agent for its life.
import { release } from 'node:os';
import type { Catalog } from '../catalog/types.js';
import { createKernel, detectBackend } from '../kernel/index.js';
import { createPooledRunner } from '../kernel/session.js';
import type { Kernel } from '../kernel/types.js';
import { readNodeFacts } from '../state/runtime.js';
import { readState, writeState } from '../state/store.js';
import { reconcileNode, type Mode, type ReconcileResult } from './run.js';
import { FAILURE_KINDS, NO_WRITES, type FailureKind, type WriteCounts } from './types.js';

/** Namespaces handled at once, and the shells that run their programs. */
export const DEFAULT_CONCURRENCY = 8;

export interface PassOptions {
  readonly catalog: Catalog;
  readonly node: string;
  readonly mode: Mode;
  /** Where state.json, resolver.json and health.json live (runDir()). */
  readonly runDir: string;
  /** 'all' (default): read every namespace; 'changed': skip those whose plan did not change. */
  readonly scope?: 'all' | 'changed';
  readonly concurrency?: number;
  /** Stops the pass between namespaces; what was handled is still saved. */
  readonly signal?: AbortSignal;
  /** Plan for this kernel release (default: the running kernel's). */
  readonly kernelRelease?: string;
  /** Milliseconds since the epoch, for drain timing (default: now). */
  readonly now?: number;
  /** A kernel to use instead of the host's (tests, benchmarks); the caller owns it. */
  readonly kernel?: Kernel;
}

export interface PassResult extends ReconcileResult {
  readonly mode: Mode;
  readonly scope: 'all' | 'changed';
  /** Writes that reached the kernel, over every namespace: all zero when nothing had to change. */
  readonly written: WriteCounts;
  /** Failures by kind, every kind present (0 when none), over every namespace. */
  readonly failures: Readonly<Record<FailureKind, number>>;
  /** Whether state.json was written (never by a diff). */
  readonly stateWritten: boolean;
}

/**
 * Runs one pass. Throws only when nothing could be tried at all (the host's
 * iptables backend cannot be told, the run directory cannot be written); every
 * namespace's own failure is in the result.
 */
export async function runPass(options: PassOptions): Promise<PassResult> {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const reconcile = async (kernel: Kernel): Promise<ReconcileResult> => {
    const [facts, state] = await Promise.all([
      readNodeFacts(options.runDir, options.kernelRelease ?? release()),
      readState(options.runDir),
    ]);
    return reconcileNode({
      catalog: options.catalog, node: options.node, kernel, facts, state, mode: options.mode,
      now: options.now ?? Date.now(), concurrency,
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  };
  const result = options.kernel !== undefined ? await reconcile(options.kernel) : await withHostKernel(concurrency, reconcile);
  const stateWritten = options.mode !== 'diff';
  if (stateWritten) await writeState(options.runDir, result.state);
  return {
    ...result,
    mode: options.mode,
    scope: options.scope ?? 'all',
    written: totalWrites(result),
    failures: failuresByKind(result),
    stateWritten,
  };
}

/** The host's kernel over pooled shells, closed when the pass is done. */
async function withHostKernel<T>(concurrency: number, use: (kernel: Kernel) => Promise<T>): Promise<T> {
  const runner = createPooledRunner(concurrency);
  try {
    return await use(createKernel(runner, { backend: await detectBackend(runner) }));
  } finally {
    await runner.close?.();
  }
}

function totalWrites(result: ReconcileResult): WriteCounts {
  const sum = { ...NO_WRITES };
  for (const { writes } of result.namespaces) {
    sum.iptables += writes.iptables;
    sum.ipvs += writes.ipvs;
    sum.sysctl += writes.sysctl;
    sum.conntrack += writes.conntrack;
  }
  return sum;
}

function failuresByKind(result: ReconcileResult): Record<FailureKind, number> {
  const counts = Object.fromEntries(FAILURE_KINDS.map((kind) => [kind, 0])) as Record<FailureKind, number>;
  for (const ns of result.namespaces) for (const error of ns.errors) counts[error.kind]++;
  return counts;
}
