// `vipmesh agent` (SPEC §5): the node's daemon, run by systemd. Options are
// checked before anything is touched; an invalid catalog or a busy lock exits 2
// (main.ts words them); SIGTERM/SIGINT stop it cleanly with exit 0, leaving every
// rule in place. Logs are JSON lines on stdout.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Catalog } from '../catalog/types.js';
import { parseDuration } from '../catalog/duration.js';
import { startAgent, type Agent } from '../agent/daemon.js';
import { DEFAULT_LISTEN, type ListenAddress, ListenError, parseListen } from '../agent/http.js';
import { createLogger } from '../agent/log.js';
import type { Upstream } from '../resolver/types.js';
import { runDir } from '../state/runtime.js';
import { UsageError } from './errors.js';
import { currentCredentials, privilegeProblem } from './privileges.js';
import { parseUpstream } from './resolver.js';

interface AgentCliOptions {
  catalog: string;
  node?: string;
  listen: string;
  syncPeriod: number;
  minSyncPeriod: number;
  upstream: Upstream[];
  allowWildcardListen?: boolean;
}

type Load = (options: { catalog: string; node?: string }) => Promise<{ catalog: Catalog; node: string }>;

/** SIGTERM must end the process within 5 s (SPEC §5); this only catches a leak that keeps the loop alive. */
const EXIT_GRACE_MS = 4_000;

function duration(flag: string) {
  return (value: string): number => {
    const parsed = parseDuration(value);
    if (!parsed.ok) throw new InvalidArgumentError(`${flag} ${value} ${parsed.message}`);
    return parsed.ms;
  };
}

/**
 * parseListen, and port 0 too (any free port, for tests and side-by-side
 * agents): the start log line names the port the kernel chose.
 */
function listenAddress(text: string, allowWildcard: boolean): ListenAddress {
  const anyPort = /:0$/.test(text);
  const parsed = parseListen(anyPort ? `${text.slice(0, -1)}1` : text, { allowWildcard });
  if (!parsed.ok) throw new UsageError(anyPort ? parsed.problem.replace(/:1(?=:| )/, ':0') : parsed.problem);
  return anyPort ? { ...parsed.address, port: 0 } : parsed.address;
}

export function agentCommand(command: Command, load: Load): Command {
  return command
    .description('run the node agent: sync passes, the embedded DNS, health probes, metrics (SPEC §5)')
    .option('--listen <addr:port>', 'where /metrics, /healthz and /livez are served (port 0: any free port)', DEFAULT_LISTEN)
    .option('--allow-wildcard-listen', 'allow --listen on 0.0.0.0 or [::] (serves the node layout to every network)')
    .option('--sync-period <duration>', 'a full pass at least this often', duration('--sync-period'), 30_000)
    .option('--min-sync-period <duration>', 'at least this long between passes (bursts of 2 allowed)', duration('--min-sync-period'), 1_000)
    .addOption(
      new Option('--upstream <addr[:port]>', 'where names vipmesh does not own go; repeat for more')
        .argParser((value: string, previous: Upstream[]) => [...previous, parseUpstream(value)])
        .default([], 'the nameservers of /etc/resolv.conf'),
    )
    .action(async (options: AgentCliOptions) => {
      process.exitCode = await runAgent(options, load);
    });
}

async function runAgent(options: AgentCliOptions, load: Load): Promise<number> {
  // SIGHUP's default action ends the process: ignore it until the agent's own handler is in.
  const ignoreHup = (): void => {};
  process.on('SIGHUP', ignoreHup);
  const stop = new AbortController();
  let why: string | undefined;
  const onStop = (signal: NodeJS.Signals): void => {
    why ??= signal;
    stop.abort();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  try {
    const problem = privilegeProblem('agent', currentCredentials());
    if (problem !== undefined) throw new UsageError(problem);
    const listen = listenAddress(options.listen, options.allowWildcardListen === true);
    if (options.minSyncPeriod > options.syncPeriod) {
      throw new UsageError(`--min-sync-period (${options.minSyncPeriod} ms) must not be longer than --sync-period (${options.syncPeriod} ms)`);
    }
    const { catalog, node } = await load(options);
    const log = createLogger();
    let agent: Agent;
    try {
      agent = await startAgent({
        catalogPath: options.catalog, catalog, node, runDir: runDir(), listen,
        syncPeriodMs: options.syncPeriod, minSyncPeriodMs: options.minSyncPeriod, upstreams: options.upstream,
        log, env: process.env, signal: stop.signal,
      });
    } catch (error) {
      if (stop.signal.aborted) {
        log.info({ event: 'stopped', why }, 'stopped while starting; nothing is left running');
        return 0;
      }
      // A port in use or an address no interface has: the operator's to fix, nothing was touched.
      if (error instanceof ListenError) throw new UsageError(error.message);
      throw error;
    }
    if (!stop.signal.aborted) await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    await agent.stop(why ?? 'signal');
    setTimeout(() => {
      log.warn({ event: 'exit' }, 'something still held the event loop after stopping; exiting anyway');
      process.exit(0);
    }, EXIT_GRACE_MS).unref();
    return 0;
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', ignoreHup);
  }
}
