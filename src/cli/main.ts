#!/usr/bin/env node
// Command-line entry. Exit codes (SPEC §4): 0 ok, 1 drift (diff), 2 usage or
// invalid catalog, 3 applied in part.
import { hostname, release } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { loadCatalog } from '../catalog/load.js';
import { formatProblems } from '../catalog/problems.js';
import type { Catalog } from '../catalog/types.js';
import { planNode } from '../plan/index.js';
import { renderPlanJson, renderPlanText } from '../render/plan.js';
import { readNodeFacts, runDir } from '../state/runtime.js';

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
  if (result.catalog.nodes[node] === undefined) {
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

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed the message; help and version exit 0.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`vipmesh: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
