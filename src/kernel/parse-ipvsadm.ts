// `ipvsadm -Ln` text → IPVS fwmark services with their real servers and counters.
// Pure. The layout follows ipvsadm.c (list_all / print_title / print_service_entry):
//
//   IP Virtual Server version 1.2.1 (size=4096)
//   Prot LocalAddress:Port Scheduler Flags
//     -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
//   FWM  1442840577 rr persistent 30
//     -> 10.0.1.3:0                   Masq    1      0          0
//   TCP  10.0.0.1:80 wlc
//     -> [fd00::1]:80                 Masq    1      0          0
import type { ObservedRealServer, ObservedService } from './types.js';

const SERVICE = /^(FWM|TCP|UDP|SCTP)\s+(\S+)(.*)$/;
const REAL_SERVER = /^\s+->\s+(\S+)\s+(\S+)\s+(-?\d+)\s+(\d+)\s+(\d+)\s*$/;
const ADDRESS_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d+)$/;

interface ServiceBuilder {
  readonly fwmark: number;
  readonly scheduler: string;
  readonly persistence: number;
  readonly realServers: ObservedRealServer[];
}

function parseService(kind: string, id: string, rest: string, where: string): ServiceBuilder | undefined {
  // vipmesh programs only IPv4 fwmark services; TCP/UDP/SCTP services and IPv6
  // fwmark services (`FWM  5 IPv6 rr`) are someone else's and share no identity with ours.
  if (kind !== 'FWM') return undefined;
  const words = rest.trim().split(/\s+/).filter((w) => w !== '');
  if (words[0] === 'IPv6') return undefined;
  const scheduler = words[0];
  if (!/^-?\d+$/.test(id) || scheduler === undefined) throw new Error(`${where}: not an fwmark service line`);
  // ipvsadm prints the u32 mark with %d, so marks from 2^31 up come out negative.
  const printed = Number(id);
  const fwmark = printed < 0 ? printed + 2 ** 32 : printed;
  const at = words.indexOf('persistent');
  let persistence = 0;
  if (at >= 0) {
    const seconds = words[at + 1];
    if (seconds === undefined || !/^\d+$/.test(seconds)) throw new Error(`${where}: persistent without a timeout`);
    persistence = Number(seconds);
  }
  return { fwmark, scheduler, persistence, realServers: [] };
}

function parseRealServer(match: RegExpExecArray, where: string): ObservedRealServer {
  const [, target, forward, weight, active, inactive] = match;
  const address = ADDRESS_PORT.exec(target!);
  if (!address) throw new Error(`${where}: real server ${target} is not address:port`);
  return {
    address: address[1] ?? address[2]!,
    port: Number(address[3]),
    weight: Number(weight),
    forward: forward!,
    activeConnections: Number(active),
    inactiveConnections: Number(inactive),
  };
}

/** Throws on a line it does not recognise, rather than silently losing a service. */
export function parseIpvsadmList(text: string): ObservedService[] {
  const services: ServiceBuilder[] = [];
  // null: inside a service vipmesh ignores; undefined: before any service.
  let current: ServiceBuilder | null | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const where = `ipvsadm -Ln line ${index + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('IP Virtual Server version') || line.startsWith('Prot LocalAddress:Port')) return;
    if (/^\s+->\s+RemoteAddress:Port/.test(line)) return;
    const service = SERVICE.exec(line);
    if (service) {
      current = parseService(service[1]!, service[2]!, service[3]!, where) ?? null;
      if (current) services.push(current);
      return;
    }
    const realServer = REAL_SERVER.exec(line);
    if (!realServer) throw new Error(`${where}: unrecognised: ${line}`);
    if (current === undefined) throw new Error(`${where}: real server before any service`);
    if (current !== null) current.realServers.push(parseRealServer(realServer, where));
  });
  return services;
}

/**
 * Why IPVS cannot be used, when ipvsadm's stderr says the kernel has no IPVS:
 * `Can't initialize ipvs: Protocol not available` + `Are you sure that IP Virtual
 * Server is built in the kernel or as module?`. A permission error is not that.
 */
export function ipvsUnavailableReason(stderr: string): string | undefined {
  const init = /Can't initialize ipvs: ([^\n]*)/.exec(stderr);
  const cause = init?.[1]?.trim();
  if (cause !== undefined && /Permission denied|Operation not permitted/.test(cause)) return undefined;
  if (cause === undefined && !stderr.includes('IP Virtual Server is built in the kernel')) return undefined;
  return `the kernel lacks IPVS (ip_vs is not available${cause ? `: ${cause}` : ''})`;
}
