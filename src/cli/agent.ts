// `vipmesh agent` (SPEC §5): the node's daemon, run by systemd. Options are
// checked before anything is touched; an invalid catalog or a busy lock exits 2
// (main.ts words them); SIGTERM/SIGINT stop it cleanly with exit 0, leaving every
// rule in place. Logs are JSON lines on stdout.
//
// With an etcd source (SPEC §6) the agent reads the catalog once here, exactly
// as a file: invalid, it exits 2 and touches nothing. Unreachable, it does not
// exit: it says so and tries again until etcd answers (or SIGTERM). An exit
// would be worse under systemd — exit 2 is not restarted (the unit's
// RestartPreventExitStatus), so a node booting before etcd would stay without
// an agent; any other code is restarted only a few times before systemd gives
// up. Nothing is touched while it waits: no lock, no resolver, no rule.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Catalog } from '../catalog/types.js';
import { parseDuration } from '../catalog/duration.js';
import { type AgentSource, startAgent, type Agent } from '../agent/daemon.js';
import { DEFAULT_LISTEN, type ListenAddress, ListenError, parseListen } from '../agent/http.js';
import { type Logger, createLogger } from '../agent/log.js';
import type { EtcdSource } from '../cluster/connect.js';
import { DEFAULT_LEASE_TTL_SECONDS } from '../cluster/membership.js';
import { parseSource } from '../cluster/source.js';
import { backoffMs } from '../cluster/view.js';
import { type ClusterSnapshot, listCluster } from '../cluster/watch.js';
import type { Upstream } from '../resolver/types.js';
import { runDir } from '../state/runtime.js';
import { catalogForNode, tlsOf } from './catalog.js';
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
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdLeaseTtl: number;
}

type Load = (options: { catalog: string; node?: string }) => Promise<{ catalog: Catalog; node: string }>;

/** SIGTERM must end the process within 5 s (SPEC §5); this only catches a leak that keeps the loop alive. */
const EXIT_GRACE_MS = 4_000;

function leaseTtl(value: string): number {
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new InvalidArgumentError(`--etcd-lease-ttl ${value}: give whole seconds from 1 to 3600`);
  return seconds;
}

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
    // For tests: how soon other nodes notice this one gone (SPEC §6's default is 10 s).
    .addOption(new Option('--etcd-lease-ttl <seconds>', 'the liveness lease\'s TTL').argParser(leaseTtl).default(DEFAULT_LEASE_TTL_SECONDS).hideHelp())
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
    const parsed = parseSource(options.catalog);
    if (!parsed.ok) throw new UsageError(parsed.message);
    const log = createLogger();
    let source: AgentSource;
    let catalog: Catalog;
    let node: string;
    if (parsed.source.kind === 'file') {
      ({ catalog, node } = await load(options));
      source = { kind: 'file', path: options.catalog };
    } else {
      const read = await readEtcd(parsed.source, options, log, stop.signal);
      if (read === undefined) {
        log.info({ event: 'stopped', why }, 'stopped while waiting for etcd; nothing was touched');
        return 0;
      }
      ({ catalog, node, source } = read);
    }
    let agent: Agent;
    try {
      agent = await startAgent({
        source, catalog, node, runDir: runDir(), listen,
        syncPeriodMs: options.syncPeriod, minSyncPeriodMs: options.minSyncPeriod, upstreams: options.upstream,
        log, env: process.env, signal: stop.signal,
      });
    } catch (error) {
      // The lock may have been busy before the agent took the client: it must not keep the process alive.
      if (source.kind === 'etcd') source.client.close();
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

/** A certificate the client cannot verify, or one the member refuses: no retry mends it. */
const isTlsFailure = (message: string): boolean => /certificate|handshake|ssl|tls/i.test(message);

/**
 * The etcd source read once, validated as a file is, for this node. Undefined:
 * stopped while etcd was unreachable. Invalid or not naming the node: a
 * UsageError (exit 2), the client closed.
 */
async function readEtcd(
  etcd: EtcdSource, options: AgentCliOptions, log: Logger, signal: AbortSignal,
): Promise<{ catalog: Catalog; node: string; source: AgentSource } | undefined> {
  // Loaded only for an etcd source: etcd3 and gRPC take about half a second to load, which
  // a file-catalog agent (and its restart's DNS outage) should not pay.
  const { EtcdSetupError, connectEtcd, describeEtcdError } = await import('../cluster/connect.js');
  let client;
  try {
    client = await connectEtcd(etcd, tlsOf(options));
  } catch (error) {
    if (error instanceof EtcdSetupError) throw new UsageError(error.message);
    throw error;
  }
  let snapshot: ClusterSnapshot | undefined;
  try {
    for (let attempt = 0; snapshot === undefined; attempt++) {
      if (signal.aborted) return undefined;
      try {
        snapshot = await listCluster(client, etcd.prefix);
      } catch (error) {
        const message = describeEtcdError(etcd, error);
        if (isTlsFailure(message)) throw new UsageError(`cannot read the catalog from ${etcd.text}: ${message}`);
        const waitMs = backoffMs(attempt, { initialMs: 500, maxMs: 5_000 });
        log.warn({ event: 'source', state: 'down', err: message }, `waiting for ${etcd.text}: ${message}; trying again in ${waitMs} ms (nothing is touched meanwhile)`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
    }
    const { catalog, node } = catalogForNode(snapshot.catalog, { what: `the catalog in ${etcd.text}`, source: etcd.text }, options.node);
    const source: AgentSource = { kind: 'etcd', text: etcd.text, prefix: etcd.prefix, client, initial: snapshot, leaseTtlSeconds: options.etcdLeaseTtl };
    client = undefined; // the agent's now
    return { catalog, node, source };
  } finally {
    client?.close();
  }
}
