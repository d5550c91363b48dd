// The agent's view of the embedded DNS: one small interface, so the daemon does
// not care whether the resolver runs on the agent's event loop or on its own
// (SPEC §5 "DNS keeps answering while the agent works" asks for the latter; the
// resolver host that does it replaces startInProcessDns below, same shape).
// Until then the resolver service runs here, in-process.
import type { Catalog } from '../catalog/types.js';
import { createRunner } from '../kernel/exec.js';
import type { ResolverPorts } from '../kernel/netns-sockets.js';
import { type SyncReport, createResolverService, type ResolverService } from '../resolver/service.js';
import type { Outcome, Upstream } from '../resolver/types.js';
import { readHostResolvConf } from '../resolver/upstreams.js';

export type { SyncReport } from '../resolver/service.js';

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
  /** Queries answered since the start, by outcome (only ever grows). */
  counters(): Readonly<Record<Outcome, number>>;
  /** Closes every socket; resolver.json keeps the ports for the next agent. */
  stop(): Promise<void>;
}

export interface DnsOptions {
  readonly node: string;
  readonly runDir: string;
  /** --upstream; empty: the nameservers of /etc/resolv.conf. */
  readonly upstreams?: readonly Upstream[];
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const NO_COUNTS: Readonly<Record<Outcome, number>> = {
  answered: 0, nodata: 0, forwarded: 0, servfail: 0, refused: 0, formerr: 0, dropped: 0,
};

/** The resolver service on this event loop. The first update() binds (taking resolver.json's ports again). */
export async function startInProcessDns(options: DnsOptions): Promise<AgentDns> {
  const conf = await readHostResolvConf().catch((error: unknown) => {
    options.log('warn', `cannot read /etc/resolv.conf (${(error as Error).message}): no upstreams, no search list`);
    return { upstreams: [] as Upstream[], search: [] as string[] };
  });
  const upstreams = options.upstreams !== undefined && options.upstreams.length > 0 ? options.upstreams : conf.upstreams;
  if (upstreams.length === 0) options.log('warn', 'no upstream servers: names vipmesh does not own get SERVFAIL');

  type State =
    | { readonly state: 'unbound' }
    | { readonly state: 'serving'; readonly service: ResolverService }
    | { readonly state: 'stopped' };
  let current: State = { state: 'unbound' };

  return {
    async update(catalog, probes) {
      // The catalog given already has the gone tasks marked not running, which is
      // what closes their sockets here.
      switch (current.state) {
        case 'stopped':
          return { bound: [], closed: [], failed: [], serving: 0 };
        case 'serving':
          return current.service.update(catalog, probes);
        case 'unbound': {
          const service = createResolverService({
            catalog, node: options.node, probes, upstreams, search: conf.search, runDir: options.runDir,
            runner: createRunner(), log: options.log,
          });
          current = { state: 'serving', service };
          return service.start();
        }
      }
    },
    ports: () => (current.state === 'serving' ? current.service.ports() : new Map()),
    counters: () => (current.state === 'serving' ? { ...current.service.resolver.counters } : NO_COUNTS),
    async stop() {
      const was = current;
      current = { state: 'stopped' };
      if (was.state === 'serving') await was.service.stop();
    },
  };
}
