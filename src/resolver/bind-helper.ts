// The child half of binding the resolver's sockets inside a task's namespace.
// Node cannot setns(2), so ../kernel/netns-sockets.ts starts this program with
// `nsenter --net=<netns> -- node bind-helper.js --udp P --tcp P` and an IPC
// channel. A socket keeps the namespace it was created in for life, so this
// program binds a UDP socket and a TCP server on 127.0.0.11, hands both to the
// parent over the channel (SCM_RIGHTS: the parent ends up with its own
// descriptors) and exits; only the parent then holds them. The messages are in
// ../kernel/bind-protocol.ts, the one module this program shares with its parent
// (a leaf: nothing that starts this program is loaded here). Importing this file
// runs it.
import dgram from 'node:dgram';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { type HelperMessage, type Proto, RESOLVER_ADDRESS } from '../kernel/bind-protocol.js';

interface Bound<T> {
  readonly handle: T;
  readonly port: number;
}

class BindFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function codeOf(error: unknown): string {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'EUNKNOWN';
}

function explain(proto: Proto, port: number, error: unknown): BindFailure {
  const code = codeOf(error);
  const what = `${proto} ${RESOLVER_ADDRESS}:${port}`;
  switch (code) {
    case 'EADDRNOTAVAIL':
      // 127.0.0.0/8 is only local once lo is up; a task's runtime brings it up.
      return new BindFailure(code, `cannot bind ${what}: the address is not local here (is lo down in this namespace?)`);
    case 'EADDRINUSE':
      return new BindFailure(code, `cannot bind ${what}: the port is in use in this namespace`);
    case 'EACCES':
    case 'EPERM':
      return new BindFailure(code, `cannot bind ${what}: permission denied`);
    default:
      return new BindFailure(code, `cannot bind ${what}: ${(error as Error).message}`);
  }
}

function bindUdp(port: number): Promise<Bound<dgram.Socket>> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', (error) => {
      socket.close();
      reject(explain('udp', port, error));
    });
    socket.bind(port, RESOLVER_ADDRESS, () => resolve({ handle: socket, port: socket.address().port }));
  });
}

function bindTcp(port: number): Promise<Bound<net.Server>> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error) => {
      server.close();
      reject(explain('tcp', port, error));
    });
    server.listen({ port, host: RESOLVER_ADDRESS, backlog: 511 }, () => {
      const address = server.address();
      resolve({ handle: server, port: typeof address === 'object' && address !== null ? address.port : port });
    });
  });
}

/** Binds the wanted port; if another socket holds it, lets the kernel choose. */
async function bindEither<T>(
  bind: (port: number) => Promise<Bound<T>>,
  wanted: number,
): Promise<Bound<T> & { fallback: boolean }> {
  try {
    return { ...(await bind(wanted)), fallback: false };
  } catch (error) {
    if (wanted === 0 || !(error instanceof BindFailure) || error.code !== 'EADDRINUSE') throw error;
    return { ...(await bind(0)), fallback: true };
  }
}

function send(message: HelperMessage, handle?: dgram.Socket | net.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, handle, {}, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

function parsePort(args: readonly string[], flag: string): number {
  const index = args.indexOf(flag);
  if (index === -1) return 0;
  const value = Number(args[index + 1]);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new BindFailure('EINVAL', `${flag} wants a port (0-65535)`);
  return value;
}

async function main(): Promise<number> {
  if (typeof process.send !== 'function') {
    process.stderr.write('bind-helper: start me with an IPC channel (vipmesh does this itself)\n');
    return 2;
  }
  let proto: Proto | 'args' = 'args';
  try {
    const args = process.argv.slice(2);
    const wanted = { udp: parsePort(args, '--udp'), tcp: parsePort(args, '--tcp') };
    proto = 'udp';
    const udp = await bindEither(bindUdp, wanted.udp);
    proto = 'tcp';
    const tcp = await bindEither(bindTcp, wanted.tcp).catch((error: unknown) => {
      udp.handle.close();
      throw error;
    });
    // Recent kernels let 127.0.0.0/8 be bound while lo is down (older ones refuse
    // with EADDRNOTAVAIL). libuv lists only interfaces that are up, with addresses.
    const loDown = networkInterfaces()['lo'] === undefined;
    await send({ type: 'bound', proto: 'udp', port: udp.port, fallback: udp.fallback, loDown }, udp.handle);
    await send({ type: 'bound', proto: 'tcp', port: tcp.port, fallback: tcp.fallback, loDown }, tcp.handle);
    return 0;
  } catch (error) {
    const code = error instanceof BindFailure ? error.code : codeOf(error);
    await send({ type: 'error', proto, code, message: (error as Error).message }).catch(() => {});
    return 1;
  }
}

// Exit at once: the parent already holds its own descriptors for both sockets.
process.exit(await main());
