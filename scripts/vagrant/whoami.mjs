// The Vagrant lab's task server, like traefik/whoami in seed article 003: every
// request is answered with the task's name, the address it was reached on and
// the client address it saw, so a check can tell which task a VIP or a published
// port landed on and what the routing mesh did to the source.
//
//   ip netns exec NETNS node whoami.mjs TASK_NAME [PORT]     (PORT: 80)
import { createServer } from 'node:http';

const [name, port = '80', ...extra] = process.argv.slice(2);
if (name === undefined || extra.length > 0 || !/^\d+$/.test(port)) {
  process.stderr.write('usage: whoami.mjs TASK_NAME [PORT]\n');
  process.exit(2);
}

const server = createServer((request, response) => {
  const socket = request.socket;
  response.setHeader('content-type', 'text/plain; charset=utf-8');
  response.end([
    `Hostname: ${name}`,
    `IP: ${socket.localAddress}`,
    `RemoteAddr: ${socket.remoteAddress}:${socket.remotePort}`,
    `${request.method} ${request.url} HTTP/${request.httpVersion}`,
    `Host: ${request.headers.host ?? ''}`,
    '',
  ].join('\n'));
});
// IPv4 only, so the addresses print as 10.0.1.11 rather than ::ffff:10.0.1.11.
// Port 0 takes any free one (for tests): the line says which.
server.listen(Number(port), '0.0.0.0', () => process.stderr.write(`whoami ${name} on port ${server.address().port}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
