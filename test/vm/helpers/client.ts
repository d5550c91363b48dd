// Guest-only client, run inside a namespace:
//   client.js tcp HOST PORT COUNT          COUNT connections, one answer line each
//   client.js udp HOST PORT COUNT [SPORT]  COUNT datagrams (from SPORT if given)
//   client.js hold HOST PORT               one connection kept open: each stdin
//                                          line is sent, "close" resets it
import { createSocket } from 'node:dgram';
import { Socket, connect } from 'node:net';
import { createInterface } from 'node:readline';

const [mode, host = '', portText = '0', countText = '1', sportText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const TIMEOUT_MS = 5000;

function firstLine(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('timeout')), TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const nl = buffer.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(buffer.slice(0, nl));
      }
    };
    socket.on('data', onData);
    socket.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

async function tcp(): Promise<void> {
  for (let i = 0; i < count; i++) {
    const socket = connect({ host, port });
    try {
      process.stdout.write(`${await firstLine(socket)}\n`);
    } catch (error) {
      process.stdout.write(`error ${(error as Error).message}\n`);
    }
    socket.destroy();
  }
}

async function udp(): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(sportText ? Number(sportText) : 0, resolve));
  for (let i = 0; i < count; i++) {
    const answer = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('error timeout'), TIMEOUT_MS);
      socket.once('message', (msg) => { clearTimeout(timer); resolve(msg.toString().trim()); });
      socket.send('hello\n', port, host);
    });
    process.stdout.write(`${answer}\n`);
  }
  socket.close();
}

async function hold(): Promise<void> {
  const socket = connect({ host, port });
  process.stdout.write(`${await firstLine(socket)}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'close') {
      // A reset, not a FIN: IPVS then forgets the connection in seconds instead
      // of holding it in TIME_WAIT for two minutes.
      socket.resetAndDestroy();
      process.stdout.write('closed\n');
      return;
    }
    socket.write(`${line}\n`);
    process.stdout.write(`${await firstLine(socket).catch((e: Error) => `error ${e.message}`)}\n`);
  }
}

await (mode === 'tcp' ? tcp() : mode === 'udp' ? udp() : hold());
