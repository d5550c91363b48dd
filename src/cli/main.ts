#!/usr/bin/env node
// Command-line entry. Exit codes (SPEC §4): 0 ok, 1 drift (diff), 2 usage or
// invalid catalog, 3 applied in part.
import { hostname, release } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { loadCatalog } from '../catalog/load.js';
import { formatProblems } from '../catalog/problems.js';
import type { Catalog } from '../catalog/types.js';
import { KernelError } from '../kernel/types.js';
import { createPooledRunner } from '../kernel/session.js';
import { createKernel, detectBackend } from '../kernel/index.js';
import { planNode } from '../plan/index.js';
import { type Mode, reconcileNode } from '../reconcile/run.js';
import { summarize } from '../reconcile/summary.js';
import { renderPlanJson, renderPlanText } from '../render/plan.js';
import { readNodeFacts, runDir } from '../state/runtime.js';
import { acquireLock, readState, writeState } from '../state/store.js';
import { resolverCommand } from './resolver.js';

export const EXIT = { ok: 0, drift: 1, usage: 2, partial: 3 } as const;
const DEFAULT_CATALOG = '/etc/vipmesh/catalog.yaml';

class UsageError extends Error {}

interface CommonOptions {
  catalog: string;
  node?: string;
}

async function loadForNode(options: CommonOptions): Promise<{ catalog: Catalog; node: string }> {
  const result = await loadCatalog(options.catalog);
  if (!result.ok) {
    const n = result.problems.length;
    throw new UsageError(
      `${options.catalog} is not a valid catalog (${n} problem${n === 1 ? '' : 's'}); nothing was done:\n` +
        formatProblems(result.problems),
    );
  }
  const node = options.node ?? hostname();
  // Own keys only: `--node constructor` must not find Object.prototype's member.
  if (!Object.hasOwn(result.catalog.nodes, node)) {
    const known = Object.keys(result.catalog.nodes).sort().join(', ') || 'none';
    throw new UsageError(`node ${node} is not in ${options.catalog} (its nodes: ${known}); pass --node NAME`);
  }
  return { catalog: result.catalog, node };
}

function withCommon(command: Command): Command {
  return command
    .option('-c, --catalog <file>', 'catalog file (YAML or JSON)', DEFAULT_CATALOG)
    .option('--node <name>', 'the node to act for (default: this host name)');
}

export function buildProgram(): Command {
  const program = new Command('vipmesh')
    .description("Docker Swarm's service discovery and load balancing for any Linux node")
    .showHelpAfterError()
    .exitOverride();

  withCommon(program.command('plan'))
    .description('print the kernel state vipmesh would program on the node; touches nothing, needs no root')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--kernel-release <release>', 'plan for this kernel release instead of the running one (uname -r)')
    .action(async (options: CommonOptions & { format: 'text' | 'json'; kernelRelease?: string }) => {
      const { catalog, node } = await loadForNode(options);
      const facts = await readNodeFacts(runDir(), options.kernelRelease ?? release());
      const plan = planNode(catalog, node, facts);
      if (options.format === 'json') {
        process.stdout.write(renderPlanJson(plan));
      } else if (plan.namespaces.length === 0) {
        process.stderr.write(`vipmesh: nothing to program on node ${node}\n`);
      } else {
        process.stdout.write(renderPlanText(plan));
      }
    });

  const oneShot = (name: string, mode: Mode, description: string) =>
    withCommon(program.command(name))
      .description(description)
      .action(async (options: CommonOptions) => {
        process.exitCode = await runOneShot(name, mode, options);
      });
  oneShot('diff', 'diff', 'show what reconcile would change; exit 0 when nothing, 1 on drift');
  oneShot('reconcile', 'apply', 'bring the node to the plan once, and print what changed');
  oneShot('cleanup', 'cleanup', 'remove everything vipmesh created on the node');
  resolverCommand(withCommon(program.command('resolver')), loadForNode);

  return program;
}

const LOCK_TIMEOUT_MS = 60_000;
/** Namespaces handled at once, and the shells that run their programs. */
const CONCURRENCY = 8;

async function runOneShot(verb: string, mode: Mode, options: CommonOptions): Promise<number> {
  const { catalog, node } = await loadForNode(options);
  const dir = runDir();
  const unlock = mode === 'diff' ? async () => {} : await acquireLock(dir, LOCK_TIMEOUT_MS);
  try {
    const runner = createPooledRunner(CONCURRENCY);
    let result;
    try {
      const kernel = createKernel(runner, { backend: await detectBackend(runner) });
      const [facts, state] = await Promise.all([readNodeFacts(dir, release()), readState(dir)]);
      result = await reconcileNode({ catalog, node, kernel, facts, state, mode, now: Date.now(), concurrency: CONCURRENCY });
    } finally {
      await runner.close?.();
    }
    if (mode !== 'diff') await writeState(dir, result.state);
    const printed = summarize(verb, result, mode === 'diff');
    process.stdout.write(printed.stdout);
    process.stderr.write(printed.stderr);
    if (printed.failed > 0) return EXIT.partial;
    return mode === 'diff' && printed.drift ? EXIT.drift : EXIT.ok;
  } finally {
    await unlock();
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    // Actions that end in something other than success set process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed the message; help and version exit 0.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`vipmesh: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof KernelError) {
      // Nothing could be applied (e.g. the host's iptables backend is not installed).
      process.stderr.write(`vipmesh: ${error.message}\n`);
      return EXIT.partial;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
