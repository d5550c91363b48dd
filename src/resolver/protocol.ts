// What the agent's thread (host.ts) and the resolver's (worker.ts) say to each
// other. Every request carries an id and gets exactly one answer with that id
// (`synced` for an update, `done` for the rest, or `failed`); the worker also
// speaks unasked: `synced` with a null id after a sync it ran on its own (a
// retry, a namespace found gone), `counters` batches, and `log` lines.
import type { ResolverPorts } from '../kernel/netns-sockets.js';
import type { CatalogWire, PatchWire } from './catalog-wire.js';
import type { ServeLimits } from './serve.js';
import type { LogLevel, SyncReport } from './service.js';
import type { Outcome, Upstream } from './types.js';

/** How the worker is set up (its workerData). */
export interface WorkerConfig {
  readonly node: string;
  readonly runDir: string;
  readonly etcNetns?: string;
  readonly upstreams: readonly Upstream[];
  readonly search: readonly string[];
  readonly concurrency?: number;
  readonly retryMs?: number;
  readonly checkMs?: number;
  readonly limits?: Partial<ServeLimits>;
  readonly maxConcurrentForwards?: number;
  readonly upstreamTimeoutMs?: number;
  /** How often the worker sends what its counters gained (when they gained anything). */
  readonly countersIntervalMs: number;
}

/**
 * A catalog for the worker: whole, or as a patch on top of the one the host
 * sent as `base` (each catalog sent has the next `seq`). A worker that does not
 * hold `base` refuses the patch, and the host sends the catalog whole.
 */
export type CatalogUpdate =
  | { readonly kind: 'whole'; readonly seq: number; readonly wire: CatalogWire }
  | { readonly kind: 'patch'; readonly seq: number; readonly base: number; readonly patch: PatchWire };

export type Request =
  /** New input. `catalog` is null when the catalog is the one sent last (only probes or gone namespaces changed). */
  | {
      readonly type: 'update';
      readonly id: number;
      readonly catalog: CatalogUpdate | null;
      readonly probes: readonly (readonly [string, boolean])[];
      readonly gone: readonly string[];
    }
  | { readonly type: 'upstreams'; readonly id: number; readonly upstreams: readonly Upstream[]; readonly search: readonly string[] | null }
  /** Send the counters' gains now (a `counters` message), then `done`. */
  | { readonly type: 'counters'; readonly id: number }
  /** Close every socket; resolver.json stays for the next start. */
  | { readonly type: 'stop'; readonly id: number };

export type RequestType = Request['type'];

/** What the DNS counters gained since the previous batch. */
export interface DnsCounters {
  readonly queries: Readonly<Partial<Record<Outcome, number>>>;
  /** How long each forwarded query took, in seconds. */
  readonly forwardSeconds: readonly number[];
}

export type WorkerMessage =
  /** resolver.json is read (its ports will be taken again): requests are welcome. */
  | { readonly type: 'started' }
  /** The worker cannot serve (another resolver holds the node): it ends. */
  | { readonly type: 'start-failed'; readonly message: string }
  /** A sync's report and the ports held after it; id null: a sync the worker ran on its own. */
  | { readonly type: 'synced'; readonly id: number | null; readonly report: SyncReport; readonly ports: readonly (readonly [string, ResolverPorts])[] }
  | { readonly type: 'done'; readonly id: number }
  | { readonly type: 'failed'; readonly id: number; readonly message: string }
  | { readonly type: 'counters'; readonly counters: DnsCounters }
  | { readonly type: 'log'; readonly level: LogLevel; readonly message: string };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const isId = (value: unknown): value is number => Number.isSafeInteger(value);
const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');
const isPorts = (value: unknown): value is ResolverPorts => isObject(value) && isId(value['udp']) && isId(value['tcp']);
const isUpstreams = (value: unknown): value is Upstream[] =>
  Array.isArray(value) && value.every((u) => isObject(u) && typeof u['address'] === 'string' && isId(u['port']));
const isWire = (value: unknown): value is CatalogWire =>
  isObject(value) && typeof value['head'] === 'string' && isStrings(value['services']) && isStrings(value['tasks']);
const isPatch = (value: unknown): value is PatchWire =>
  isObject(value) && typeof value['services'] === 'string' && typeof value['tasks'] === 'string';
const isCatalogUpdate = (value: unknown): value is CatalogUpdate =>
  isObject(value) && isId(value['seq']) &&
  ((value['kind'] === 'whole' && isWire(value['wire'])) || (value['kind'] === 'patch' && isId(value['base']) && isPatch(value['patch'])));

export function isRequest(value: unknown): value is Request {
  if (!isObject(value) || !isId(value['id'])) return false;
  switch (value['type']) {
    case 'update':
      return (
        (value['catalog'] === null || isCatalogUpdate(value['catalog'])) &&
        Array.isArray(value['probes']) &&
        value['probes'].every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'boolean') &&
        isStrings(value['gone'])
      );
    case 'upstreams':
      return isUpstreams(value['upstreams']) && (value['search'] === null || isStrings(value['search']));
    case 'counters':
    case 'stop':
      return true;
    default:
      return false;
  }
}

const isReport = (value: unknown): value is SyncReport =>
  isObject(value) &&
  Array.isArray(value['bound']) &&
  isStrings(value['closed']) &&
  Array.isArray(value['failed']) &&
  isStrings(value['gone']) &&
  isId(value['serving']);

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  if (!isObject(value)) return false;
  switch (value['type']) {
    case 'started':
      return true;
    case 'start-failed':
      return typeof value['message'] === 'string';
    case 'synced':
      return (
        (value['id'] === null || isId(value['id'])) &&
        isReport(value['report']) &&
        Array.isArray(value['ports']) &&
        value['ports'].every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && isPorts(p[1]))
      );
    case 'done':
      return isId(value['id']);
    case 'failed':
      return isId(value['id']) && typeof value['message'] === 'string';
    case 'counters': {
      const counters = value['counters'];
      return (
        isObject(counters) &&
        isObject(counters['queries']) &&
        Object.values(counters['queries']).every((n) => typeof n === 'number') &&
        Array.isArray(counters['forwardSeconds']) &&
        counters['forwardSeconds'].every((n) => typeof n === 'number')
      );
    }
    case 'log':
      return (value['level'] === 'info' || value['level'] === 'warn' || value['level'] === 'error') && typeof value['message'] === 'string';
    default:
      return false;
  }
}
