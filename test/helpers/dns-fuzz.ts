// A UDP fuzzer for the resolver, run inside a task namespace by the kernel tests:
//   node dns-fuzz.js ADDRESS PORT COUNT SEED PROBE_NAME PROBE_ADDRESS
// Sends COUNT packets: random bytes, and well-formed queries mutated (bit flips,
// cuts, forged counts, label lengths past the end, compression loops, odd flag
// bits, garbage appended). After every burst of 100 it sends a probe, an A query
// for PROBE_NAME, and waits (up to 1 s) for its reply, which must hold
// PROBE_ADDRESS: so it checks the resolver keeps answering, and correctly, and
// the bursts never outrun the socket's receive buffer (which would only measure
// the machine's speed). Prints one JSON line:
// { sent, replies, probes, probesAnswered, probesCorrect }.
// Deterministic for a seed; bounded: it stops after COUNT packets or 90 s.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

const [address = '127.0.0.11', portText = '53', countText = '100000', seedText = '1', probeName = 'web', probeAddress = ''] =
  process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
let state = Number(seedText) >>> 0 || 1;

function random(): number {
  // xorshift32: reproducible from the printed seed.
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 0x1_0000_0000;
}
const int = (n: number) => Math.floor(random() * n);

const NAMES = ['web', 'tasks.web', 'peers', 'tasks.big', 'web.1.aaaa', 'secret', 'outside.test', 'x.y.z', 'WeB'];
const TYPES = ['A', 'AAAA', 'PTR', 'MX', 'TXT', 'SRV', 'CAA'] as const;

function validQuery(id: number): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: TYPES[int(TYPES.length)]!, name: NAMES[int(NAMES.length)]! }],
    ...(random() < 0.3 ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: int(0x10000) } as dnsPacket.Answer] } : {}),
  });
}

function mutate(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  switch (int(8)) {
    case 0: // bit flips
      for (let i = 0, n = 1 + int(8); i < n; i++) out[int(out.length)]! ^= 1 << int(8);
      return out;
    case 1: // cut short
      return out.subarray(0, int(out.length));
    case 2: // forged section counts
      out.writeUInt16BE(int(0x10000), 4 + 2 * int(4));
      return out;
    case 3: // a label length running past the end
      if (out.length > 12) out[12] = 63;
      return out;
    case 4: { // a compression pointer to itself
      const loop = Buffer.from(out.subarray(0, 12));
      return Buffer.concat([loop, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    }
    case 5: // garbage appended
      return Buffer.concat([out, randomBytes(int(200))]);
    case 6: // QR set, odd opcode or rcode bits
      out[2] = int(256);
      out[3] = int(256);
      return out;
    default: // a random byte somewhere
      out[int(out.length)] = int(256);
      return out;
  }
}

function randomBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = int(256);
  return out;
}

const socket = dgram.createSocket('udp4');
const BURST = 100;
let replies = 0;
let probes = 0;
let probesAnswered = 0;
let probesCorrect = 0;
let waiting: { id: number; done: () => void } | null = null;
socket.on('message', (message) => {
  replies++;
  if (waiting === null || message.length < 2 || message.readUInt16BE(0) !== waiting.id) return;
  probesAnswered++;
  try {
    const decoded = dnsPacket.decode(message);
    if ((decoded.answers ?? []).some((a) => a.type === 'A' && a.data === probeAddress)) probesCorrect++;
  } catch {
    // counted as answered, not correct
  }
  waiting.done();
});
socket.on('error', () => {}); // ICMP errors after a drop are not the fuzzer's business

function probe(): Promise<void> {
  const id = 0x8000 | (probes++ & 0x7fff);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(), 1000);
    const finish = () => {
      clearTimeout(timer);
      waiting = null;
      resolve();
    };
    waiting = { id, done: finish };
    socket.send(
      dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: probeName }] }),
      port,
      address,
    );
  });
}

const deadline = Date.now() + 90_000;
let sent = 0;
await new Promise<void>((resolve) => socket.bind(0, resolve));
while (sent < count && Date.now() < deadline) {
  for (let i = 0; i < BURST && sent < count; i++, sent++) {
    // Fuzzed queries keep IDs below 0x8000, so they are never taken for a probe's reply.
    const packet = random() < 0.4 ? randomBytes(int(600)) : mutate(validQuery(int(0x8000)));
    if (packet.length >= 2) packet.writeUInt16BE(packet.readUInt16BE(0) & 0x7fff, 0);
    socket.send(packet, port, address);
  }
  await probe();
}
socket.close();
process.stdout.write(`${JSON.stringify({ sent, replies, probes, probesAnswered, probesCorrect })}\n`);
