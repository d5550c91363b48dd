// The vipmesh command line: the commands, their options and how each ends. Exit
// codes (SPEC §4): 0 ok, 1 drift (diff), 2 usage or invalid catalog, 3 applied in
// part or an unexpected error (errors.ts). Importing this runs nothing; bin.ts is
// the program.
import { release } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { loadCatalog } from '../catalog/load.js';
import type { Catalog } from '../catalog/types.js';
import { parseSource } from '../cluster/source.js';
import { KernelError } from '../kernel/types.js';
import { planNode } from '../plan/index.js';
import { runPass } from '../reconcile/pass.js';
import type { Mode } from '../reconcile/run.js';
import { summarize } from '../reconcile/summary.js';
import { printablePath, renderPlanJsonChunks, renderPlanTextChunks } from '../render/plan.js';
import { removeResolvConfsOf } from '../resolver/resolv-conf.js';
import { readNodeFacts, runDir } from '../state/runtime.js';
import { acquireLock, LockBusyError } from '../state/store.js';
import { EXIT, EXIT_INTERNAL, UsageError, internalErrorText, isClosedPipe } from './errors.js';
import { parseKernelRelease, parseNodeName } from './input.js';
import { OutputError, writeChunks } from './output.js';
import { currentCredentials, privilegeProblem } from './privileges.js';
import { resolverCommand } from './resolver.js';
import { agentCommand } from './agent.js';
import { labCommand } from './lab.js';
import { catalogCommand, catalogForNode, type EtcdFlags, readEtcdCatalog, withEtcdFlags } from './catalog.js';
import { packageVersion } from './version.js';

export { EXIT, EXIT_INTERNAL } from './errors.js';
const DEFAULT_CATALOG = '/etc/vipmesh/catalog.yaml';

export interface CommonOptions extends EtcdFlags {
  /** A file path or an etcd source (etcd://HOST:PORT[,…]/PREFIX, etcds://…): src/cluster/source.ts. */
  catalog: string;
  node?: string;
}

async function loadForNode(options: CommonOptions): Promise<{ catalog: Catalog; node: string }> {
  const parsed = parseSource(options.catalog);
  if (!parsed.ok) throw new UsageError(parsed.message);
  const { source } = parsed;
  const result = source.kind === 'file' ? await loadCatalog(source.path) : (await readEtcdCatalog(source, options)).result;
  const what = source.kind === 'file' ? printablePath(options.catalog) : `the catalog in ${source.text}`;
  return catalogForNode(result, { what, source: options.catalog }, options.node);
}

function withCommon(command: Command): Command {
  command
    .option('-c, --catalog <source>', 'catalog file (YAML or JSON), or etcd://HOST:PORT[,HOST:PORT…]/PREFIX (etcds:// for TLS)', DEFAULT_CATALOG)
    .option('--node <name>', 'the node to act for (default: this host name)', parseNodeName);
  return withEtcdFlags(command);
}

export function buildProgram(): Command {
  const program = new Command('vipmesh')
    .description("Docker Swarm's service discovery and load balancing for any Linux node")
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    // Commander's errors as one line in vipmesh's voice, like every other error.
    .configureOutput({ outputError: (text, write) => write(`vipmesh: ${oneLine(text)} (see --help)\n`) });

  withCommon(program.command('plan'))
    .description('print the kernel state vipmesh would program on the node; touches nothing, needs no root')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--kernel-release <release>', 'plan for this kernel release instead of the running one (uname -r)', parseKernelRelease)
    .action(async (options: CommonOptions & { format: 'text' | 'json'; kernelRelease?: string }) => {
      const { catalog, node } = await loadForNode(options);
      const facts = await readNodeFacts(runDir(), options.kernelRelease ?? release());
      const plan = planNode(catalog, node, facts);
      // Streamed: a large node's plan is more text than one string can hold.
      if (options.format === 'json') {
        await writeChunks(process.stdout, renderPlanJsonChunks(plan));
      } else if (plan.namespaces.length === 0) {
        process.stderr.write(`vipmesh: nothing to program on node ${node}\n`);
      } else {
        await writeChunks(process.stdout, renderPlanTextChunks(plan));
      }
    });

  const oneShot = (name: string, mode: Mode, description: string) =>
    withCommon(program.command(name))
      .description(description)
      .action(async (options: CommonOptions) => {
        const problem = privilegeProblem(name, currentCredentials());
        if (problem !== undefined) throw new UsageError(problem);
        process.exitCode = await runOneShot(name, mode, options);
      });
  oneShot('diff', 'diff', 'show what reconcile would change; exit 0 when nothing, 1 on drift');
  oneShot('reconcile', 'apply', 'bring the node to the plan once, and print what changed');
  oneShot('cleanup', 'cleanup', 'remove everything vipmesh created on the node');
  resolverCommand(withCommon(program.command('resolver')), loadForNode);
  agentCommand(withCommon(program.command('agent')), loadForNode);
  catalogCommand(program);
  labCommand(program);

  return program;
}

/** Where `ip netns exec` takes per-namespace files from; the agent writes resolv.conf there. */
const ETC_NETNS = '/etc/netns';

// The holder is most likely the agent, which keeps the lock for its life: waiting is pointless.
const LOCK_WAIT_MS = 0;

async function runOneShot(verb: string, mode: Mode, options: CommonOptions): Promise<number> {
  const { catalog, node } = await loadForNode(options);
  const dir = runDir();
  const lock = mode === 'diff' ? undefined : await acquireLock(dir, { waitMs: LOCK_WAIT_MS });
  try {
    const result = await runPass({ catalog, node, mode, runDir: dir });
    const printed = summarize(verb, result, mode === 'diff');
    process.stdout.write(printed.stdout);
    if (mode === 'cleanup') {
      // The agent leaves its tasks' resolv.conf behind on stop (a restart must not
      // cut their DNS); cleanup is where they go.
      const tasks = Object.values(catalog.tasks).filter((task) => task.node === node).map((task) => task.netns);
      for (const file of await removeResolvConfsOf(ETC_NETNS, tasks)) process.stdout.write(`# removed ${file}\n`);
    }
    process.stderr.write(printed.stderr);
    if (printed.failed > 0) return EXIT.partial;
    return mode === 'diff' && printed.drift ? EXIT.drift : EXIT.ok;
  } finally {
    await lock?.release();
  }
}

/** Commander's `error: …` text, possibly with a `(Did you mean …?)` line, as one line. */
function oneLine(text: string): string {
  return text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
}

/**
 * grpc-js passes an etcds:// endpoint's IP address to TLS as the server name,
 * and Node warns once per process (DEP0123) that it ignores it there. The member's
 * certificate is still checked against that address, so the warning is noise on a
 * command's stderr: drop that one, keep every other.
 */
let ipServerNameQuiet = false;
function quietIpServerNameWarning(): void {
  if (ipServerNameQuiet) return;
  ipServerNameQuiet = true;
  for (const listener of process.listeners('warning')) {
    process.off('warning', listener);
    process.on('warning', (warning) => {
      if ((warning as { code?: unknown }).code !== 'DEP0123') listener(warning);
    });
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  quietIpServerNameWarning();
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    // Actions that end in something other than success set process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    return failed(error);
  }
}

function failed(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander already printed the message; help and version exit 0.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`vipmesh: ${error.message}\n`);
    return EXIT.usage;
  }
  if (error instanceof LockBusyError) {
    const ask = error.pid === undefined ? 'systemctl reload vipmesh' : `kill -HUP ${error.pid} or systemctl reload vipmesh`;
    process.stderr.write(`vipmesh: ${error.message}; nothing was done (to ask it for a pass: ${ask})\n`);
    return EXIT.usage;
  }
  if (error instanceof KernelError) {
    // Nothing could be applied (e.g. the host's iptables backend is not installed).
    process.stderr.write(`vipmesh: ${error.message}\n`);
    return EXIT.partial;
  }
  if (isClosedPipe(error)) {
    // The reader of stdout left (`vipmesh plan | head`): what it read was right.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  }
  if (error instanceof OutputError) {
    // bin.ts reports a failing stdout (a full disk) once, from the stream's error event.
    return EXIT_INTERNAL;
  }
  process.stderr.write(internalErrorText(error));
  return EXIT_INTERNAL;
}
