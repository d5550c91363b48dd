// The rtnetlink listener's own process (see rtnetlink.ts for why it is one). It
// joins the link and address groups in the namespace it was started in, and
// writes one JSON line per event on stdout: {"ready":true} once it listens and
// knows the links already there, {"event":{…}} per change, {"error":"…"} for a
// problem it survived. It exits when its stdin closes (the agent is gone).
//
// The netlink package runs its callbacks from native code: an exception that
// escapes one aborts this process, so every handler here catches.
import { createNetlink, createRtNetlink, Protocol, rt } from 'netlink';
import { decodeRtnetlink } from './rtnetlink-decode.js';

// Asked for; the kernel caps it at net.core.rmem_max (208 KiB by default), and
// doubles it for its own bookkeeping.
const RECEIVE_BUFFER = 1 << 20;

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

// stdout is a pipe, written synchronously on Linux: a parent slow to read holds
// this process back, and the kernel queues events meanwhile.
const say = (message: object): void => {
  try {
    process.stdout.write(`${JSON.stringify(message)}\n`);
  } catch {
    process.exit(0); // EPIPE: nobody is listening any more
  }
};

process.stdout.on('error', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

const names = new Map<number, string>();
const peers = new Map<number, number>();

const socket = createNetlink(Protocol.ROUTE, { ref: true, recvBufferSize: RECEIVE_BUFFER, sendBufferSize: 0 });
socket.on('message', (messages) => {
  for (const message of messages) {
    try {
      const event = decodeRtnetlink(message.type, message.data, names, peers);
      if (event !== undefined) say({ event });
    } catch (error) {
      say({ error: `rtnetlink message of type ${message.type}: ${describe(error)}` });
    }
  }
});
// Without a listener the package's re-emitted 'error' would throw in native code.
socket.on('error', (error) => say({ error: `rtnetlink socket: ${describe(error)}` }));
socket.addMembership(rt.MulticastGroups.LINK);
socket.addMembership(rt.MulticastGroups.IPV4_IFADDR);
socket.addMembership(rt.MulticastGroups.IPV6_IFADDR);

// IPv6 addresses carry no name, only an index: learn the names of the links
// already there. A socket of its own, so that the dump's many-part reply never
// interleaves with events. Names from events are newer and win.
const dump = createRtNetlink();
dump.socket.on('error', (error) => say({ error: `listing links: ${describe(error)}` }));
try {
  for (const link of await dump.getLinks()) {
    const { index } = link.data;
    if (index !== undefined && link.attrs.ifname !== undefined && !names.has(index)) names.set(index, link.attrs.ifname);
    // And which of them are veths into another namespace, for their DELLINK.
    if (index !== undefined && link.attrs.linkNetnsid !== undefined && !peers.has(index)) peers.set(index, link.attrs.linkNetnsid);
  }
} catch (error) {
  say({ error: `listing links: ${describe(error)}` });
} finally {
  dump.socket.close();
}
say({ ready: true });
