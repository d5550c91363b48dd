// What makes the agent sync (SPEC §5 "When to sync"), apart from probe results
// and the runner's own schedule: the catalog file changing, SIGHUP, a named
// namespace appearing or vanishing, and links or addresses coming and going in
// the node's namespace. Each trigger ends in one call of the `request` callback
// the composition root gives it, with the reason; the runner coalesces, so a
// trigger need not. Every trigger has close(), after which it calls nothing and
// holds nothing open (watchers, timers, signal handlers, sockets): a process
// left with only closed triggers exits.
import { type RtnetlinkEvent, type WatchRtnetlink, watchRtnetlink } from '../kernel/rtnetlink.js';
import type { Clock } from './clock.js';
import type { PassKind } from './runner.js';
import { watchFile } from './watch-file.js';
import { watchNetns } from './watch-netns.js';

export type { RtnetlinkEvent } from '../kernel/rtnetlink.js';

export type TriggerReason =
  | { readonly trigger: 'catalog'; readonly path: string }
  | { readonly trigger: 'sighup' }
  | { readonly trigger: 'netns'; readonly change: 'appeared' | 'vanished'; readonly name: string }
  | { readonly trigger: 'rtnetlink'; readonly event: RtnetlinkEvent }
  /** rtnetlink events were lost: what changed is unknown. */
  | { readonly trigger: 'rtnetlink-lost' };

export type RequestSync = (reason: TriggerReason) => void;

export interface Trigger {
  /** Resolves once the trigger sees changes (watches armed, first state noted). */
  readonly ready: Promise<void>;
  close(): void;
}

/** A problem a trigger survived, for the log. */
export type TriggerError = (message: string) => void;

/**
 * The pass a reason calls for. A changed-only pass revisits only namespaces
 * whose plan changed, and only a new catalog changes plans by itself; a
 * namespace or a link coming or going changes the kernel under an unchanged
 * plan, which only a full pass reads. SIGHUP is an operator asking for repair.
 */
export function passKindFor(reason: TriggerReason): PassKind {
  return reason.trigger === 'catalog' ? 'changed' : 'full';
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

// The request callback is the composition root's code: one that throws must not
// stop a watcher, and inside netlink's native callbacks must not abort the process.
function safely(request: RequestSync, onError: TriggerError): RequestSync {
  return (reason) => {
    try {
      request(reason);
    } catch (error) {
      try {
        onError(`requesting a sync for ${reason.trigger}: ${describe(error)}`);
      } catch {
        // nowhere left to say it
      }
    }
  };
}

export interface CatalogTriggerOptions {
  /** The catalog file, as given with -c. */
  readonly path: string;
  readonly clock: Clock;
  readonly request: RequestSync;
  readonly onError: TriggerError;
  /** Quiet time that ends a burst of writes (default 100 ms). */
  readonly quietMs?: number;
  /** Fallback poll for file systems inotify cannot see into (default 2 s). */
  readonly pollMs?: number;
}

/** One request per burst of changes to the catalog file, however the tool wrote it. */
export function createCatalogTrigger(options: CatalogTriggerOptions): Trigger {
  const { path, clock, onError } = options;
  const request = safely(options.request, onError);
  return watchFile({
    path,
    clock,
    onError,
    onChange: () => request({ trigger: 'catalog', path }),
    ...(options.quietMs === undefined ? {} : { quietMs: options.quietMs }),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
  });
}

/** Where signals come from: the process, or an emitter a test drives. */
export interface SignalSource {
  on(signal: 'SIGHUP', listener: () => void): unknown;
  off(signal: 'SIGHUP', listener: () => void): unknown;
}

export interface SighupTriggerOptions {
  readonly request: RequestSync;
  readonly onError: TriggerError;
  readonly signals?: SignalSource;
}

/**
 * SIGHUP (`systemctl reload vipmesh`, `kill -HUP`) asks for a full pass. While
 * installed, the handler replaces the default action (exit); close() removes it.
 */
export function createSighupTrigger(options: SighupTriggerOptions): Trigger {
  const signals = options.signals ?? process;
  const request = safely(options.request, options.onError);
  const listener = (): void => request({ trigger: 'sighup' });
  signals.on('SIGHUP', listener);
  let open = true;
  return {
    ready: Promise.resolve(),
    close() {
      if (!open) return;
      open = false;
      signals.off('SIGHUP', listener);
    },
  };
}

export interface NetnsTriggerOptions {
  readonly clock: Clock;
  readonly request: RequestSync;
  readonly onError: TriggerError;
  /** Default /run/netns. */
  readonly dir?: string;
}

/** A request naming each namespace that appears or vanishes under /run/netns. */
export function createNetnsTrigger(options: NetnsTriggerOptions): Trigger {
  const request = safely(options.request, options.onError);
  return watchNetns({
    clock: options.clock,
    onError: options.onError,
    onChange: ({ change, name }) => request({ trigger: 'netns', change, name }),
    ...(options.dir === undefined ? {} : { dir: options.dir }),
  });
}

export interface RtnetlinkTriggerOptions {
  readonly request: RequestSync;
  readonly onError: TriggerError;
  /**
   * Keeps the events that matter: a link or address of a task (its host-side
   * veth peer or bridge), the sandbox, or the node's published-port path.
   * A filter that throws keeps the event: a spare pass costs less than a missed one.
   */
  readonly filter: (event: RtnetlinkEvent) => boolean;
  /** The event source; the kernel's rtnetlink socket unless a test gives its own. */
  readonly watch?: WatchRtnetlink;
}

/**
 * Link and address events in the node's namespace that pass the filter, one
 * request each. Events lost (the listener died and is being started again)
 * always make a request.
 */
export function createRtnetlinkTrigger(options: RtnetlinkTriggerOptions): Trigger {
  const { filter, onError } = options;
  const request = safely(options.request, onError);
  const watch = (options.watch ?? watchRtnetlink)({
    onEvent(event) {
      let keep = true;
      try {
        keep = filter(event);
      } catch (error) {
        onError(`rtnetlink filter failed on a ${event.kind} event for index ${event.ifindex}: ${describe(error)}`);
      }
      if (keep) request({ trigger: 'rtnetlink', event });
    },
    onLost: () => request({ trigger: 'rtnetlink-lost' }),
    onError,
  });
  return watch;
}
