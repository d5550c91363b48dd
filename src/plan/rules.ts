// Rule specs spelled exactly as `iptables-save` prints them back (`/32`, `-m udp`,
// `--set-xmark M/0xffffffff`, quoted comments), so a planned rule and an
// observed one compare as strings.
import type { Family, Protocol } from '../catalog/types.js';

export const RESOLVER_ADDRESS = '127.0.0.11';
export const UDP_PORT_TOKEN = 'UDP_PORT';
export const TCP_PORT_TOKEN = 'TCP_PORT';

export function hex(mark: number): string {
  return `0x${mark.toString(16)}`;
}

export function host(address: string, family: Family): string {
  return `${address}/${family === 4 ? 32 : 128}`;
}

/** `--to-destination` operand: IPv6 addresses need brackets when a port follows. */
export function endpoint(address: string, port: number | string, family: Family): string {
  return family === 4 ? `${address}:${port}` : `[${address}]:${port}`;
}

export function comment(text: string): string {
  return `-m comment --comment "${text}"`;
}

export function protoPort(protocol: Protocol, direction: 'dport' | 'sport', port: number | string): string {
  return `-p ${protocol} -m ${protocol} --${direction} ${port}`;
}

export function setMark(mark: number): string {
  return `-j MARK --set-xmark ${hex(mark)}/0xffffffff`;
}

export function matchMark(mark: number): string {
  return `-m mark --mark ${hex(mark)}`;
}

/** Matches both directions of a connection DNAT-ed from the given published port. */
export function dnatFromPort(protocol: Protocol, published: number): string {
  return `-p ${protocol} -m conntrack --ctstate DNAT --ctorigdstport ${published}`;
}
