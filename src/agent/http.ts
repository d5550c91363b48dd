// The agent's HTTP endpoint on --listen (SPEC §5): /metrics for Prometheus,
// /livez and /healthz for whoever watches the node (kubelet-style probes, a load
// balancer's health check, an operator with curl). Read-only: GET (and HEAD).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';

export const DEFAULT_LISTEN = '127.0.0.1:9641';

export interface ListenAddress {
  /** An IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

export type ParsedListen = { readonly ok: true; readonly address: ListenAddress } | { readonly ok: false; readonly problem: string };

// Both spellings of "every address": ::ffff:0.0.0.0 is 0.0.0.0 seen from IPv6.
const isWildcard = (host: string, family: 4 | 6): boolean =>
  family === 4 ? host === '0.0.0.0' : ['[::]', '[::ffff:0:0]'].includes(new URL(`http://[${host.split('%')[0]}]/`).hostname);

/**
 * `ADDR:PORT` or `[IPV6]:PORT`. A wildcard address would serve /metrics (the
 * node's whole service layout) to every network the node is on, so it is refused
 * unless the operator asked for it.
 */
export function parseListen(text: string, options: { readonly allowWildcard: boolean }): ParsedListen {
  const fail = (why: string): ParsedListen => ({ ok: false, problem: `--listen ${text}: ${why}` });
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  const colon = text.lastIndexOf(':');
  const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]!] : colon < 0 ? [text, undefined] : [text.slice(0, colon), text.slice(colon + 1)];
  if (port === undefined) return fail('give ADDR:PORT, e.g. 127.0.0.1:9641');
  const family = isIP(host) as 0 | 4 | 6;
  if (family === 0) return fail(`${host || 'the address'} is not an IP address; give ADDR:PORT or [IPV6]:PORT`);
  if (family === 6 && !bracketed) return fail(`write an IPv6 address in brackets: [${host}]:${port}`);
  if (family === 4 && bracketed) return fail(`brackets are for IPv6 addresses: ${host}:${port}`);
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return fail(`the port must be a number from 1 to 65535, not "${port}"`);
  if (!options.allowWildcard && isWildcard(host, family)) {
    return fail('a wildcard address would serve the metrics and health endpoints on every network; give one address, or allow wildcards explicitly');
  }
  return { ok: true, address: { host, port: Number(port) } };
}

/** The catalog in force. An invalid newer one is ignored; the last good one stays (SPEC §5). */
export type CatalogHealth =
  | { readonly state: 'valid' }
  | { readonly state: 'invalid'; readonly since: number; readonly problems: number };

/** Where the catalog comes from, and whether it can be read now (SPEC §6). */
export type SourceHealth = { readonly state: 'up' } | { readonly state: 'down'; readonly since: number; readonly error: string };

/** What /healthz reports; times are epoch milliseconds. */
export interface HealthStatus {
  readonly lastSuccessfulSync: number | undefined;
  /** When the oldest change not yet programmed was seen; undefined when none is. */
  readonly pendingSince: number | undefined;
  readonly currentTime: number;
  readonly catalog: CatalogHealth;
  readonly source: SourceHealth;
}

/**
 * kube-proxy's meaning of healthy: a pass has succeeded, and no change has
 * waited longer than two sync periods. A bad catalog or an unreachable source
 * leave the last good state in force, so they do not make the node unhealthy.
 */
export function isHealthy(status: HealthStatus, syncPeriodMs: number): boolean {
  if (status.lastSuccessfulSync === undefined) return false;
  return status.pendingSince === undefined || status.currentTime - status.pendingSince <= 2 * syncPeriodMs;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

function healthBody(status: HealthStatus): string {
  const { catalog, source } = status;
  return `${JSON.stringify({
    lastSuccessfulSync: iso(status.lastSuccessfulSync),
    pendingSince: iso(status.pendingSince),
    currentTime: iso(status.currentTime),
    catalog: catalog.state === 'valid' ? catalog : { ...catalog, since: iso(catalog.since) },
    source: source.state === 'up' ? source : { ...source, since: iso(source.since) },
  })}\n`;
}

export interface HttpOptions {
  /** Where to listen; port 0 lets the kernel choose (tests). */
  readonly address: ListenAddress;
  readonly metrics: { readonly contentType: string; scrape(): Promise<string> };
  readonly health: () => HealthStatus;
  readonly syncPeriodMs: number;
  /** The same judgement the systemd watchdog uses: the loop and the runner are alive. */
  readonly alive: () => boolean;
  /** A server error once listening (accept failing for want of file descriptors), for the log. */
  readonly onError: (error: Error) => void;
}

export interface AgentHttp {
  /** Where it listens (the port the kernel chose, for port 0). */
  readonly address: ListenAddress;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

export class ListenError extends Error {
  constructor(address: ListenAddress, cause: NodeJS.ErrnoException) {
    const where = address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
    const why = cause.code === 'EADDRINUSE' ? 'the port is in use' : cause.code === 'EADDRNOTAVAIL' ? 'no interface has that address' : cause.message;
    super(`cannot listen on ${where}: ${why}`);
    this.name = 'ListenError';
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

const TEXT = 'text/plain; charset=utf-8';

async function handle(options: HttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, TEXT, `${req.method ?? 'this method'} is not allowed; use GET\n`, { Allow: 'GET, HEAD' });
    return;
  }
  const path = new URL(req.url ?? '/', 'http://agent').pathname;
  switch (path) {
    case '/metrics':
      try {
        send(res, 200, options.metrics.contentType, await options.metrics.scrape());
      } catch (error) {
        send(res, 500, TEXT, `collecting metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
      }
      return;
    case '/livez':
      if (options.alive()) send(res, 200, TEXT, 'ok\n');
      else send(res, 503, TEXT, 'the sync loop is stuck\n');
      return;
    case '/healthz': {
      const status = options.health();
      send(res, isHealthy(status, options.syncPeriodMs) ? 200 : 503, 'application/json', healthBody(status));
      return;
    }
    default:
      send(res, 404, TEXT, `no ${path} here; try /metrics, /healthz or /livez\n`);
  }
}

export async function startHttp(options: HttpOptions): Promise<AgentHttp> {
  const server = createServer((req, res) => {
    handle(options, req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, TEXT, `${error instanceof Error ? error.message : String(error)}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(new ListenError(options.address, error));
    server.once('error', failed);
    server.listen({ host: options.address.host, port: options.address.port }, () => {
      server.off('error', failed);
      server.on('error', options.onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: { host: options.address.host, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
