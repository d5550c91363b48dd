// What an rtnetlink link or address message says, in the agent's terms. The
// netlink package's parsed 'message' event does not tell new from deleted; the
// message type does (16 NEWLINK, 17 DELLINK, 20 NEWADDR, 21 DELADDR).
import { Address6 } from 'ip-address';
import { rt } from 'netlink';

export type RtnetlinkOp = 'new' | 'del';

export type RtnetlinkEvent =
  | {
      readonly kind: 'link';
      /** 'new' is also sent for a link that changed (up, down, carrier, renamed). */
      readonly op: RtnetlinkOp;
      readonly ifindex: number;
      readonly ifname?: string;
      /**
       * Set when the link's other end lives in another namespace (IFLA_LINK_NETNSID):
       * a veth into a task, a sandbox or a load balancer, the links the agent cares about.
       */
      readonly peerNetnsid?: number;
    }
  | {
      readonly kind: 'address';
      readonly op: RtnetlinkOp;
      readonly ifindex: number;
      /** The link's name, when known: IPv4 labels it, IPv6 is looked up by index. */
      readonly ifname?: string;
      /** The address itself, without its prefix length: 192.0.2.1, 2001:db8::1. */
      readonly address?: string;
    };

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;

function formatAddress(bytes: Buffer | undefined): string | undefined {
  if (bytes?.length === 4) return [...bytes].join('.');
  if (bytes?.length === 16) return Address6.fromUnsignedByteArray([...bytes]).correctForm();
  return undefined;
}

/**
 * The event one rtnetlink message describes, or undefined for messages of other
 * types. `names` maps link indexes to names and `peers` to their peer's netnsid;
 * link messages keep both current.
 */
export function decodeRtnetlink(
  type: number, data: Buffer, names: Map<number, string>, peers: Map<number, number> = new Map(),
): RtnetlinkEvent | undefined {
  if (type === RTM_NEWLINK || type === RTM_DELLINK) {
    const message = rt.parseLinkMessage(data);
    const ifindex = message.data.index ?? 0;
    const ifname = message.attrs.ifname ?? names.get(ifindex);
    const op: RtnetlinkOp = type === RTM_NEWLINK ? 'new' : 'del';
    // A veth's DELLINK no longer names its peer's namespace (the peer is gone
    // with it): remember it from the link's NEWLINK.
    const peerNetnsid = message.attrs.linkNetnsid ?? peers.get(ifindex);
    if (op === 'del') {
      names.delete(ifindex);
      peers.delete(ifindex);
    } else {
      if (ifname !== undefined) names.set(ifindex, ifname);
      if (peerNetnsid !== undefined) peers.set(ifindex, peerNetnsid);
    }
    return {
      kind: 'link', op, ifindex,
      ...(ifname === undefined ? {} : { ifname }),
      ...(peerNetnsid === undefined ? {} : { peerNetnsid }),
    };
  }
  if (type === RTM_NEWADDR || type === RTM_DELADDR) {
    const message = rt.parseAddressMessage(data);
    const ifindex = message.data.index ?? 0;
    // An IPv4 label is the link's name or an alias of it (eth0:1); link names
    // cannot hold a colon.
    const ifname = names.get(ifindex) ?? message.attrs.label?.split(':')[0];
    // IFA_LOCAL is the address of this end; IFA_ADDRESS is the peer's on a
    // point-to-point link, and the only one IPv6 sends otherwise.
    const address = formatAddress(message.attrs.local ?? message.attrs.address);
    return {
      kind: 'address',
      op: type === RTM_NEWADDR ? 'new' : 'del',
      ifindex,
      ...(ifname === undefined ? {} : { ifname }),
      ...(address === undefined ? {} : { address }),
    };
  }
  return undefined;
}

/** An event as it comes back over the child's pipe, checked rather than trusted. */
export function isRtnetlinkEvent(value: unknown): value is RtnetlinkEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  return (
    (event['kind'] === 'link' || event['kind'] === 'address') &&
    (event['op'] === 'new' || event['op'] === 'del') &&
    typeof event['ifindex'] === 'number' &&
    (event['ifname'] === undefined || typeof event['ifname'] === 'string') &&
    (event['address'] === undefined || (event['kind'] === 'address' && typeof event['address'] === 'string')) &&
    (event['peerNetnsid'] === undefined || (event['kind'] === 'link' && typeof event['peerNetnsid'] === 'number'))
  );
}
