// The resolver worker with binding faked, for the host's tests without root:
// "namespaces" are loopback sockets, and the files of <runDir>/fake/ stand for
// the kernel, so a test on the other thread can change it:
//   ns/<encoded path>   the path names a namespace, whose id is the file's text
//   crash-on, hang-on   a request type: the worker throws / spins when it gets one
//   bind-delay-ms       each bind waits this long
// Everything else is the real worker (runResolverWorker).
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { BindError, type NamespaceSockets } from '../../../src/kernel/netns-sockets.js';
import type { WorkerConfig } from '../../../src/resolver/protocol.js';
import type { BindFn, IdentifyFn } from '../../../src/resolver/service.js';
import { type WorkerPort, runResolverWorker } from '../../../src/resolver/worker.js';

const config = workerData as WorkerConfig;
const fake = join(config.runDir, 'fake');
const read = (name: string): string | undefined => (existsSync(join(fake, name)) ? readFileSync(join(fake, name), 'utf8').trim() : undefined);

export const nsFile = (netns: string): string => join('ns', encodeURIComponent(netns));

const identify: IdentifyFn = async (netns) => read(nsFile(netns));

const bind: BindFn = async (netns, options) => {
  const id = await identify(netns);
  if (id === undefined) throw new BindError(netns, 'no-namespace', 'the namespace does not exist');
  const delay = Number(read('bind-delay-ms') ?? 0);
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(options.wanted?.udp ?? 0, '127.0.0.1', resolve));
  const tcp = net.createServer();
  await new Promise<void>((resolve) => tcp.listen(options.wanted?.tcp ?? 0, '127.0.0.1', resolve));
  const ports = { udp: udp.address().port, tcp: (tcp.address() as net.AddressInfo).port };
  const sockets: NamespaceSockets = { netns, id, udp, tcp, ports, changed: false, durationMs: 1, warnings: [] };
  return sockets;
};

if (parentPort === null) throw new Error('fake-worker.js runs as a worker thread');
const parent = parentPort;
// Requests reach the worker through here, so a crash or a hang comes before any answer.
const relay = new EventEmitter();
parent.on('message', (message: { type?: string; catalog?: { kind?: string } | null }) => {
  if (message.type === 'update') {
    const what = message.catalog === null || message.catalog === undefined ? 'without a catalog' : message.catalog.kind === 'patch' ? 'with a catalog patch' : 'with a catalog';
    parent.postMessage({ type: 'log', level: 'info', message: `fake: an update ${what}` });
  }
  if (message.type === read('crash-on')) throw new Error(`fake: crashing on ${message.type}, as asked`);
  if (message.type === read('hang-on')) for (;;);
  relay.emit('message', message);
});
const port: WorkerPort = {
  postMessage: (message) => parent.postMessage(message),
  on: (event, listener) => relay.on(event, listener),
  close: () => parent.close(),
};
await runResolverWorker(port, config, { bind, identify });
