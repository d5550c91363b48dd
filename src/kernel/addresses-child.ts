// The address adapter's own process (see addresses.ts for why it is one): run in
// the namespace to read or change (nsenter), it lists that namespace's interface
// addresses or applies address changes there over rtnetlink (npm `netlink`), and
// answers with one JSON object on stdout.
//   stdin {"list":true}                       → {"addresses":[{index, name, address, prefixLength}…]}
//   stdin {"ops":[{kind:"add"|"delete", index, address, prefixLength}…]} → {"done":N}
// or {"error":"…","done":N} after the first change the kernel refused.
import { isIPv4 } from 'node:net';
import { createRtNetlink, FlagsNew } from 'netlink';

interface Op {
  readonly kind: 'add' | 'delete';
  readonly index: number;
  readonly address: string;
  readonly prefixLength: number;
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function addressText(bytes: Buffer | undefined): string | undefined {
  if (bytes === undefined) return undefined;
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

function addressBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  throw new Error(`only IPv4 addresses are written (v1): ${text}`);
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}

const request = JSON.parse(await readStdin()) as { list?: boolean; ops?: Op[] };
const rt = createRtNetlink();
// Without a listener the package's re-emitted 'error' would throw in native code.
rt.socket.on('error', () => {});
let answer: object;
if (request.list === true) {
  try {
    const links = await rt.getLinks();
    const names = new Map(links.map((l) => [l.data.index, l.attrs.ifname]));
    const addresses = (await rt.getAddresses()).flatMap((m) => {
      const address = addressText(m.attrs.local ?? m.attrs.address);
      const index = m.data.index ?? 0;
      return address === undefined ? [] : [{ index, name: names.get(index) ?? '', address, prefixLength: m.data.prefixlen ?? 0 }];
    });
    answer = { addresses };
  } catch (error) {
    answer = { error: `listing addresses: ${describe(error)}` };
  }
} else {
  let done = 0;
  answer = { done };
  for (const op of request.ops ?? []) {
    const bytes = addressBytes(op.address);
    const data = { family: 2, prefixlen: op.prefixLength, index: op.index };
    try {
      if (op.kind === 'add') {
        await rt.newAddress(data, { local: bytes, address: bytes }, { flags: FlagsNew.CREATE | FlagsNew.EXCL });
      } else {
        await rt.delAddress(data, { local: bytes, address: bytes });
      }
      done++;
      answer = { done };
    } catch (error) {
      answer = { error: `${op.kind === 'add' ? 'adding' : 'deleting'} ${op.address}/${op.prefixLength} on interface ${op.index}: ${describe(error)}`, done };
      break;
    }
  }
}
rt.socket.close();
process.stdout.write(`${JSON.stringify(answer)}\n`);
