// The lab's stand-in for traefik/whoami, one per task, run inside the task's
// namespace (`ip netns exec NS node whoami.js NAME PORT...`): every HTTP request
// on any of its ports gets one line, its task name, the address the request came
// in on and the client address it saw, e.g. `whoami.2 10.0.1.12 from 10.0.1.250`
// — enough to tell which task a VIP or a published port landed on, and what NAT
// did on the way. It prints `ready` once every port listens.
import { type Server, createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

/** The line a request gets (IPv4-mapped addresses shown as IPv4). */
export function whoamiLine(name: string, local: string | undefined, remote: string | undefined): string {
  const plain = (address: string | undefined): string => (address ?? '?').replace(/^::ffff:/, '');
  return `${name} ${plain(local)} from ${plain(remote)}\n`;
}

function serve(name: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.setHeader('connection', 'close');
    res.end(whoamiLine(name, req.socket.localAddress, req.socket.remoteAddress));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...portTexts] = argv;
  const ports = portTexts.map(Number);
  if (name === undefined || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    process.stderr.write('usage: whoami.js NAME PORT...\n');
    process.exit(2);
  }
  const servers = await Promise.all(ports.map((port) => serve(name, port)));
  process.stdout.write(`ready ${name} ${ports.join(' ')}\n`);
  const stop = (): void => {
    for (const server of servers) server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2));
