// `vipmesh resolver`: the embedded DNS on its own, without the agent — for tests,
// and for nodes whose datapath something else reconciles. It serves every running
// local task's namespace, reloads when the catalog file changes or on SIGHUP
// (from an etcd source: on SIGHUP; answers change without a restart), and stops on SIGTERM/SIGINT leaving
// resolver.json behind so the next start takes the same ports again. It runs the
// resolver as the agent does, on a worker thread (src/resolver/host.ts): loading
// and validating a large catalog here holds this thread for seconds, and answers
// must not wait for that; one code path for both is also one to test.
import { type FSWatcher, watch } from 'node:fs';
import net from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadCatalog } from '../catalog/load.js';
import { formatProblems } from '../catalog/problems.js';
import type { Catalog } from '../catalog/types.js';
import { parseSource } from '../cluster/source.js';
import { type ResolverHost, ResolverHostError, type SyncReport, startResolverHost } from '../resolver/host.js';
import type { Upstream } from '../resolver/types.js';
import { readHostResolvConf } from '../resolver/upstreams.js';
import { readProbes, runDir } from '../state/runtime.js';

interface ResolverOptions {
  catalog: string;
  node?: string;
  upstream: Upstream[];
}

type Load = (options: { catalog: string; node?: string }) => Promise<{ catalog: Catalog; node: string }>;

const RELOAD_DEBOUNCE_MS = 200;
const EXIT_USAGE = 2; // SPEC §4: nothing was done
const EXIT_FAILED = 3; // as an internal error: nothing is served
const RESTART_MS = 1_000;
const NONE_GONE: ReadonlySet<string> = new Set();
const PREFIX = 'vipmesh resolver:';

/** `ADDR`, `ADDR:PORT` or `[IPV6]:PORT`; the port defaults to 53. */
export function parseUpstream(text: string): Upstream {
  let address = text;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed !== null) {
    address = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (net.isIP(text) === 0) {
    const colon = text.lastIndexOf(':');
    if (colon > 0 && /^\d+$/.test(text.slice(colon + 1))) {
      address = text.slice(0, colon);
      port = Number(text.slice(colon + 1));
    }
  }
  if (net.isIP(address) === 0) throw new InvalidArgumentError(`${text} is not an address (ADDR, ADDR:PORT or [IPV6]:PORT)`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`${text}: the port must be 1-65535`);
  return { address, port };
}

function say(line: string): void {
  process.stdout.write(`${PREFIX} ${line}\n`);
}

function warn(line: string): void {
  process.stderr.write(`${PREFIX} ${line}\n`);
}

function describe(report: SyncReport): string {
  const parts = [`serving ${report.serving} namespace${report.serving === 1 ? '' : 's'}`];
  const changes: string[] = [];
  if (report.bound.length > 0) changes.push(`${report.bound.length} bound`);
  if (report.closed.length > 0) changes.push(`${report.closed.length} closed`);
  if (report.failed.length > 0) changes.push(`${report.failed.length} failed`);
  if (changes.length > 0) parts.push(`(${changes.join(', ')})`);
  return parts.join(' ');
}

export function resolverCommand(command: Command, load: Load): Command {
  return command
    .description('serve the embedded DNS (127.0.0.11) in every local task namespace, without the agent')
    .addOption(
      new Option('--upstream <addr[:port]>', 'where names vipmesh does not own go; repeat for more')
        .argParser((value: string, previous: Upstream[]) => [...previous, parseUpstream(value)])
        .default([], 'the nameservers of /etc/resolv.conf'),
    )
    .action(async (options: ResolverOptions) => {
      await runResolver(options, load);
    });
}

async function runResolver(options: ResolverOptions, load: Load): Promise<void> {
  const loaded = await load(options);
  const { node } = loaded;
  let { catalog } = loaded;
  const dir = runDir();
  const hostConf = async () =>
    readHostResolvConf().catch((error: unknown) => {
      warn(`cannot read /etc/resolv.conf (${(error as Error).message}): no upstreams, no search list`);
      return { upstreams: [], search: [] };
    });
  let conf = await hostConf();
  let upstreams = options.upstream.length > 0 ? options.upstream : conf.upstreams;
  if (upstreams.length === 0) warn('no upstream servers: names vipmesh does not own get SERVFAIL');
  let probes = await readProbes(dir);

  // The same resolver the agent runs: on a thread of its own, so loading a big
  // catalog here never holds up an answer there.
  const startHost = () =>
    startResolverHost({
      node,
      runDir: dir,
      upstreams,
      search: conf.search,
      log: (level, message) => (level === 'info' ? say(message.replace(/^resolver: /, '')) : warn(message.replace(/^resolver: /, ''))),
    });

  let stopping = false;
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let restart: NodeJS.Timeout | undefined;
  const file = resolve(options.catalog);
  const parsed = parseSource(options.catalog);
  const fromEtcd = parsed.ok && parsed.source.kind === 'etcd';
  let host: ResolverHost | undefined;

  const reloadCatalog = async (): Promise<Catalog | undefined> => {
    if (fromEtcd) {
      // The same read and checks as at start; any failure leaves the previous catalog serving.
      return load(options).then(({ catalog: next }) => next, (error: unknown) => {
        warn(`${(error as Error).message}; still serving the previous catalog`);
        return undefined;
      });
    }
    const result = await loadCatalog(file);
    if (!result.ok) {
      warn(`${file} is not a valid catalog; still serving the previous one:\n${formatProblems(result.problems)}`);
      return undefined;
    }
    if (!Object.hasOwn(result.catalog.nodes, node)) {
      warn(`node ${node} is no longer in ${file}; still serving the previous catalog`);
      return undefined;
    }
    return result.catalog;
  };

  const reload = async (why: string) => {
    if (stopping || host === undefined) return;
    const next = await reloadCatalog();
    if (next === undefined || stopping) return;
    if (options.upstream.length === 0 || why === 'SIGHUP') {
      conf = await hostConf();
      upstreams = options.upstream.length > 0 ? options.upstream : conf.upstreams;
      await host.setUpstreams(upstreams, conf.search);
    }
    catalog = next;
    probes = await readProbes(dir);
    const report = await host.update(catalog, probes, NONE_GONE);
    say(`reloaded (${why}): ${describe(report)}`);
  };
  const scheduleReload = (why: string) => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      reload(why).catch((error: unknown) => warn(`reload failed: ${(error as Error).message}`));
    }, RELOAD_DEBOUNCE_MS);
  };

  // Signals are handled from the start: a stop during the first bind waits for it, then stops.
  let stopSignal: NodeJS.Signals | undefined;
  const stopped = new Promise<NodeJS.Signals>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      stopSignal ??= signal;
      stopping = true;
      done(signal);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  const onHup = () => scheduleReload('SIGHUP');
  process.on('SIGHUP', onHup);

  // A worker that dies is started again (its sockets closed with it; the new one takes the same ports).
  const watchHost = (current: ResolverHost) => {
    void current.exited.then((exit) => {
      if (exit.state !== 'failed' || stopping) return;
      warn(`${exit.error}; starting it again in ${RESTART_MS} ms`);
      restart = setTimeout(() => {
        (async () => {
          const next = await startHost();
          host = next;
          watchHost(next);
          say(`restarted: ${describe(await next.update(catalog, probes, NONE_GONE))}`);
        })().catch((error: unknown) => {
          warn(`restarting failed: ${(error as Error).message}; stopping`);
          process.exitCode = EXIT_FAILED;
          process.kill(process.pid, 'SIGTERM');
        });
      }, RESTART_MS);
    });
  };

  let report: SyncReport;
  try {
    const first = await startHost();
    host = first;
    watchHost(first);
    report = await first.update(catalog, probes, NONE_GONE);
  } catch (error) {
    // Another resolver serves the node (or resolver.json could not be written): nothing is served.
    process.off('SIGHUP', onHup);
    if (stopSignal === undefined) stopping = true;
    await host?.stop();
    warn((error as Error).message);
    process.exitCode = error instanceof ResolverHostError && error.kind === 'refused' ? EXIT_USAGE : EXIT_FAILED;
    return;
  }

  if (stopSignal === undefined && fromEtcd) {
    // Watching etcd is the agent's work; alone, the resolver reads it again on SIGHUP.
    say(`${describe(report)}; the catalog in etcd is read again on SIGHUP`);
  } else if (stopSignal === undefined) {
    // The directory, not the file: editors and config managers replace files by renaming.
    try {
      watcher = watch(dirname(file), (_event, name) => {
        if (name === null || name === basename(file)) scheduleReload('catalog changed');
      });
      watcher.on('error', (error) => warn(`watching ${file} failed: ${error.message}; reload with SIGHUP`));
    } catch (error) {
      warn(`cannot watch ${file}: ${(error as Error).message}; reload with SIGHUP`);
    }
    say(describe(report));
  }

  const signal = await stopped;
  clearTimeout(debounce);
  clearTimeout(restart);
  watcher?.close();
  process.off('SIGHUP', onHup);
  await host?.stop();
  say(`stopped (${signal}); resolver.json keeps the ports for the next start`);
}
