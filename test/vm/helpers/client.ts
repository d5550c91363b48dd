// Guest-only client, run inside a namespace:
//   client.js tcp HOST PORT COUNT          COUNT connections, one answer line each
//   client.js udp HOST PORT COUNT [SPORT]  COUNT datagrams (from SPORT if given)
//   client.js hold HOST PORT               one connection kept open: each stdin
//                                          line is sent, "close" resets it
//   client.js stream HOST PORT PERIOD_MS   a new connection every PERIOD_MS, each
//                                          on its own, until stdin says "stop"; a
//                                          JSON line per connection (StreamRecord),
//                                          then "done" once none is in flight
import { createSocket } from 'node:dgram';
import { Socket, connect } from 'node:net';
import { createInterface } from 'node:readline';

const [mode, host = '', portText = '0', countText = '1', sportText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const TIMEOUT_MS = 5000;
// A stream's connections may meet a slow emulated guest and a SYN retransmitted
// after a second or three: only a connection that never answers is a failure.
const STREAM_TIMEOUT_MS = 20_000;

/** One connection of a stream: when it was opened (Date.now()), and the answer or the error. */
export type StreamRecord =
  | { readonly start: number; readonly end: number; readonly answer: string }
  | { readonly start: number; readonly end: number; readonly error: string };

function firstLine(socket: Socket, timeoutMs = TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
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

async function stream(): Promise<void> {
  const period = count; // the fourth argument: milliseconds between connections
  const inFlight = new Set<Promise<void>>();
  const open = (): void => {
    const start = Date.now();
    const socket = connect({ host, port });
    const done: Promise<void> = firstLine(socket, STREAM_TIMEOUT_MS)
      .then((answer): StreamRecord => ({ start, end: Date.now(), answer }))
      .catch((error: Error): StreamRecord => ({ start, end: Date.now(), error: error.message }))
      .then((record) => {
        socket.destroy();
        process.stdout.write(`${JSON.stringify(record)}\n`);
        inFlight.delete(done);
      });
    inFlight.add(done);
  };
  // Each tick opens its connection whether or not earlier ones have answered:
  // the rate does not fall when a backend is slow.
  const timer = setInterval(open, period);
  open();
  for await (const line of createInterface({ input: process.stdin })) if (line === 'stop') break;
  clearInterval(timer);
  await Promise.all(inFlight);
  process.stdout.write('done\n');
  process.exit(0); // stdin stays open: nothing else would end the process
}

await (mode === 'tcp' ? tcp() : mode === 'udp' ? udp() : mode === 'stream' ? stream() : hold());
