// Sockets inside a task's network namespace, owned by this process. A socket
// belongs for life to the namespace it was created in, and Node cannot enter a
// namespace, so a short-lived helper (../resolver/bind-helper.ts, found by path:
// it is a program, not a module of ours) is started inside it through nsenter,
// binds 127.0.0.11 there and passes both sockets back over its IPC channel. The
// helper then exits; this process alone serves them. What the two sides share is
// in bind-protocol.ts.
import type dgram from 'node:dgram';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { type HelperMessage, RESOLVER_ADDRESS, helperArgs, isHelperMessage } from './bind-protocol.js';
import { ExecError, type Runner, spawnWithIpc } from './exec.js';
import { namespaceExists, namespaceId } from './env.js';
import type { NamespaceId } from './types.js';

export { RESOLVER_ADDRESS } from './bind-protocol.js';

export interface ResolverPorts {
  readonly udp: number;
  readonly tcp: number;
}

export interface NamespaceSockets {
  readonly netns: string;
  /**
   * Which namespace the sockets live in (device and inode of the namespace file).
   * The path alone can come to name another namespace (`ip netns delete` then
   * `add`, a pid reused): comparing this with the path's id now says whether these
   * sockets still serve the namespace the path names.
   */
  readonly id: NamespaceId;
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
  readonly ports: ResolverPorts;
  /** A wanted port could not be had and the kernel chose another. */
  readonly changed: boolean;
  /** Milliseconds from spawning the helper to holding both sockets. */
  readonly durationMs: number;
  /** Things that went wrong without failing the bind (e.g. conntrack could not be cleared). */
  readonly warnings: readonly string[];
}

/**
 * `no-namespace`: the path names no namespace (never did, or it is gone);
 * `replaced`: the path came to name another namespace while binding (tried again, it binds there).
 */
export type BindErrorKind = 'no-namespace' | 'replaced' | 'address' | 'in-use' | 'timeout' | 'helper';

export class BindError extends Error {
  constructor(readonly netns: string, readonly kind: BindErrorKind, message: string) {
    super(`namespace ${netns}: ${message}`);
    this.name = 'BindError';
  }
}

export interface BindOptions {
  /** Ports to take again (from resolver.json after a restart); 0 or absent: the kernel chooses. */
  readonly wanted?: ResolverPorts;
  /** Runs `conntrack` when a wanted port had to change; without it nothing is flushed. */
  readonly runner?: Runner;
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const HELPER = fileURLToPath(new URL('../resolver/bind-helper.js', import.meta.url));

function kindOf(code: string): BindErrorKind {
  if (code === 'EADDRNOTAVAIL') return 'address';
  if (code === 'EADDRINUSE') return 'in-use';
  return 'helper';
}

/**
 * Binds a UDP socket and a TCP server on 127.0.0.11 inside `netns` (a path such
 * as /run/netns/NAME or /proc/PID/ns/net) and returns them, listening, to this
 * process. Where a wanted port is taken another is bound, and that namespace's
 * conntrack entries for 127.0.0.11:53 are removed, so a client that keeps its
 * source port is not held on the old port by a stale NAT mapping.
 */
export async function bindInNamespace(netns: string, options: BindOptions = {}): Promise<NamespaceSockets> {
  const id = (await namespaceExists(netns)) ? await namespaceId(netns) : undefined;
  if (id === undefined) throw new BindError(netns, 'no-namespace', 'the namespace does not exist');
  const wanted = options.wanted ?? { udp: 0, tcp: 0 };
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = performance.now();

  const child = spawnWithIpc(
    {
      file: process.execPath,
      args: [HELPER, ...helperArgs(wanted)],
      netns,
      timeoutMs,
      // The helper is tiny and short-lived: an inherited --inspect or --require would
      // collide with the parent's or slow every bind.
      env: { NODE_OPTIONS: '' },
    },
    options.runner?.stats,
  );
  let udp: dgram.Socket | undefined;
  let tcp: net.Server | undefined;
  let changed = false;
  let loDown = false;
  let failure: Extract<HelperMessage, { type: 'error' }> | undefined;
  let ports = { udp: 0, tcp: 0 };
  const settled = new Promise<void>((resolve) => {
    child.onMessage((message, handle) => {
      if (!isHelperMessage(message)) return;
      if (message.type === 'error') failure = message;
      else {
        changed ||= message.fallback;
        loDown ||= message.loDown;
        ports = { ...ports, [message.proto]: message.port };
        if (message.proto === 'udp') udp = handle as dgram.Socket;
        else tcp = handle as net.Server;
      }
      if (failure !== undefined || (udp !== undefined && tcp !== undefined)) resolve();
    });
  });
  const result = await child.exited;
  // Node emits a handle's message only once this side has adopted the socket,
  // which can come after the helper (which exits right after sending) is gone.
  if (result.exitCode === 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, 2_000)))]);
    clearTimeout(timer);
  }
  if (udp === undefined || tcp === undefined) {
    udp?.close();
    tcp?.close();
    if (failure !== undefined) throw new BindError(netns, kindOf(failure.code), failure.message);
    if (result.timedOut) throw new BindError(netns, 'timeout', `binding 127.0.0.11 took longer than ${timeoutMs} ms`);
    // nsenter fails this way when the namespace went away after the check above.
    if (!(await namespaceExists(netns))) throw new BindError(netns, 'no-namespace', 'the namespace vanished');
    throw new BindError(netns, 'helper', new ExecError(result).message);
  }

  // nsenter opened the path after the id was read: make sure it was the same namespace.
  const after = await namespaceId(netns).catch(() => undefined);
  if (after !== id) {
    udp.close();
    tcp.close();
    if (after === undefined) throw new BindError(netns, 'no-namespace', 'the namespace vanished');
    throw new BindError(netns, 'replaced', 'the path came to name another namespace while binding');
  }

  const warnings: string[] = [];
  if (loDown) warnings.push(`namespace ${netns}: lo is down: 127.0.0.11 is bound, but unreachable until lo is up`);
  if (changed && options.runner !== undefined) {
    try {
      await flushDnsConntrack(options.runner, netns);
    } catch (error) {
      warnings.push((error as Error).message);
    }
  }
  return { netns, id, udp, tcp, ports, changed, durationMs: performance.now() - started, warnings };
}

/**
 * Deletes the namespace's conntrack entries for 127.0.0.11:53 (UDP and TCP). A
 * NAT mapping is chosen by the first packet of a flow, so after the resolver's
 * port changes, a client that keeps its source port would keep reaching the old
 * one until its entry expired. Returns how many entries went.
 */
export async function flushDnsConntrack(runner: Runner, netns: string): Promise<number> {
  let deleted = 0;
  for (const proto of ['udp', 'tcp']) {
    const result = await runner.run({
      file: 'conntrack',
      args: ['-D', '-p', proto, '--orig-dst', RESOLVER_ADDRESS, '--dport', '53'],
      netns,
      timeoutMs: 10_000,
    });
    // conntrack reports "N flow entries have been deleted" and exits 1 when N is 0.
    const count = /(\d+) flow entries have been deleted/.exec(result.stderr);
    if (count !== null && result.failure === undefined) {
      deleted += Number(count[1]);
      continue;
    }
    const missing = result.exitCode === 127 || /failed to execute|No such file/i.test(result.stderr);
    throw new Error(
      missing
        ? `cannot clear stale DNS flows in ${netns}: conntrack is not installed (Debian package conntrack)`
        : `cannot clear stale DNS flows in ${netns}: \`${result.command}\` ${result.failure ?? `exited ${result.exitCode}`}: ${result.stderr.trim()}`,
    );
  }
  return deleted;
}
