// Guest-only: a TCP and UDP server that answers every line or datagram with
// "<name> <client address>", so a scenario sees which backend it reached and
// which source address that backend saw. Prints "ready" once listening.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [name = 'server', portText = '80'] = process.argv.slice(2);
const port = Number(portText);

const tcp = createServer((socket) => {
  socket.setEncoding('utf8');
  const answer = () => socket.write(`${name} ${socket.remoteAddress ?? '?'}\n`);
  answer();
  socket.on('data', (chunk: string) => {
    for (const _line of chunk.split('\n').filter((l) => l !== '')) answer();
  });
  socket.on('error', () => socket.destroy());
});
const udp = createSocket('udp4');
udp.on('message', (_msg, rinfo) => udp.send(`${name} ${rinfo.address}:${rinfo.port}\n`, rinfo.port, rinfo.address));

let listening = 0;
const ready = () => {
  if (++listening === 2) process.stdout.write('ready\n');
};
tcp.listen(port, '0.0.0.0', ready);
udp.bind(port, '0.0.0.0', ready);
process.on('SIGTERM', () => process.exit(0));
