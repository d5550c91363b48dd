// Sockets for a task that is only a namespace: started inside it with
// `nsenter --net=…` and an IPC channel (socketInNamespace in agent.ts), it binds
// there, hands the socket to its parent and exits, as the resolver's bind helper
// does for 127.0.0.11. The parent then uses the sockets of every namespace from
// one process without a fork per use: `tcp PORT` listens on 0.0.0.0:PORT (a
// server for health probes to reach), `udp` binds 0.0.0.0 on any port (a DNS
// client to ask 127.0.0.11 from inside). Benchmarks only.
import dgram from 'node:dgram';
import net from 'node:net';

function fail(error: Error): never {
  process.stderr.write(`listen-helper: ${error.message}\n`);
  process.exit(1);
}

const [kind, port] = [process.argv[2], Number(process.argv[3] ?? 0)];
if (kind === 'tcp') {
  const server = net.createServer();
  server.once('error', fail);
  server.listen({ port, host: '0.0.0.0', backlog: 511 }, () => process.send!({ kind }, server, {}, () => process.exit(0)));
} else if (kind === 'udp') {
  const socket = dgram.createSocket('udp4');
  socket.once('error', fail);
  socket.bind(port, '0.0.0.0', () => process.send!({ kind }, socket, {}, () => process.exit(0)));
} else {
  fail(new Error('usage: listen-helper.js tcp PORT | udp [PORT]'));
}
