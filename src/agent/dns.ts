// The agent's view of the embedded DNS. The resolver runs on a worker thread of
// its own (src/resolver/host.ts), so a pass that plans 10 000 services on the
// agent's loop never holds up an answer (SPEC §5). This keeps one host running:
// a worker that dies is started again and given the last update, so the agent
// goes on serving DNS through it.
import type { Catalog } from '../catalog/types.js';
import type { ResolverPorts } from '../kernel/netns-sockets.js';
import { type DnsCounters, type ResolverHost, type SyncReport, startResolverHost } from '../resolver/host.js';
import type { Log } from '../resolver/service.js';
import type { Upstream } from '../resolver/types.js';

export type { DnsCounters, SyncReport } from '../resolver/host.js';

export interface AgentDns {
  /**
   * The catalog in force (tasks whose namespace is gone already marked not
   * running), the probe verdicts, and those gone namespaces: answers change at
   * once, sockets in gone namespaces close, new namespaces are bound, and
   * resolver.json names every port before this resolves.
   */
  update(catalog: Catalog, probes: ReadonlyMap<string, boolean>, goneNamespaces: ReadonlySet<string>): Promise<SyncReport>;
  /** Namespace → the ports served there. */
  ports(): ReadonlyMap<string, ResolverPorts>;
  /** Closes every socket; resolver.json keeps the ports for the next agent. */
  stop(): Promise<void>;
}

export interface DnsOptions {
  readonly node: string;
  readonly runDir: string;
  /** --upstream; empty or absent: the nameservers of /etc/resolv.conf. */
  readonly upstreams?: readonly Upstream[];
  readonly log: Log;
  /** What the DNS counters gained since the last call (for /metrics). */
  readonly onCounters: (counters: DnsCounters) => void;
  /** The resolver changed its ports on its own (a retry bound a namespace, one was found gone). */
  readonly onSync: (report: SyncReport) => void;
}

/** A worker that keeps dying is started again no faster than this. */
const RESTART_MS = 1_000;

type Update = Parameters<AgentDns['update']>;

type State =
  | { readonly state: 'running'; readonly host: ResolverHost }
  | { readonly state: 'restarting'; readonly started: Promise<ResolverHost | undefined> }
  | { readonly state: 'stopped' };

export async function startDns(options: DnsOptions): Promise<AgentDns> {
  const upstreams = options.upstreams !== undefined && options.upstreams.length > 0 ? options.upstreams : undefined;
  const start = (): Promise<ResolverHost> =>
    startResolverHost({
      node: options.node, runDir: options.runDir, ...(upstreams === undefined ? {} : { upstreams }),
      log: options.log, onCounters: options.onCounters, onSync: options.onSync,
    });
  let last: Update | undefined;
  let current: State;

  const watch = (host: ResolverHost): void => {
    void host.exited.then((exit) => {
      if (exit.state !== 'failed' || current.state !== 'running' || current.host !== host) return;
      options.log('error', `the resolver worker failed (${exit.error}); starting another`);
      current = { state: 'restarting', started: restart() };
    });
  };
  const restart = async (): Promise<ResolverHost | undefined> => {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, RESTART_MS));
      if (current.state === 'stopped') return undefined;
      try {
        const host = await start();
        if (last !== undefined) await host.update(...last);
        // A stop() that came meanwhile is waiting for this attempt to end.
        if (current.state !== 'restarting') return host;
        current = { state: 'running', host };
        watch(host);
        return host;
      } catch (error) {
        options.log('error', `the resolver worker could not be started again: ${(error as Error).message}`);
      }
    }
  };

  const first = await start();
  current = { state: 'running', host: first };
  watch(first);

  const host = async (): Promise<ResolverHost | undefined> => {
    const now = current;
    if (now.state === 'running') return now.host;
    if (now.state === 'restarting') return now.started;
    return undefined;
  };

  return {
    async update(...args) {
      last = args;
      const target = await host();
      if (target === undefined) return { bound: [], closed: [], failed: [], gone: [], serving: 0 };
      return target.update(...args);
    },
    ports: () => (current.state === 'running' ? current.host.ports() : new Map()),
    async stop() {
      const was = current;
      current = { state: 'stopped' };
      const target = was.state === 'running' ? was.host : was.state === 'restarting' ? await was.started : undefined;
      await target?.stop();
    },
  };
}
