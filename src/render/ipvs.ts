// Virtual services and IPVS changes → `ipvsadm-save -n` syntax, which `ipvsadm -R`
// reads back. Each line renderer takes the plain fields it prints, so the plan's
// virtual services and the kernel adapter's typed operations share them.
import type { VirtualService } from '../plan/types.js';

interface ServiceFields {
  readonly fwmark: number;
  readonly scheduler: string;
  /** Seconds; 0 = not persistent. */
  readonly persistence: number;
}

interface RealServerFields {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
}

/** `-A` adds the service, `-E` edits it in place (real servers stay). */
export function serviceLine(vs: ServiceFields, verb: '-A' | '-E' = '-A'): string {
  return `${verb} -f ${vs.fwmark} -s ${vs.scheduler}${vs.persistence > 0 ? ` -p ${vs.persistence}` : ''}`;
}

/** `-a` adds a masquerading real server, `-e` edits one (its weight). */
export function realServerLine(fwmark: number, rs: RealServerFields, verb: '-a' | '-e' = '-a'): string {
  // Only IPv4 real servers exist in v1 (IPv6 VIPs and ingress are rejected by validation).
  return `${verb} -f ${fwmark} -r ${rs.address}:${rs.port} -m -w ${rs.weight}`;
}

export function deleteServiceLine(fwmark: number): string {
  return `-D -f ${fwmark}`;
}

export function deleteRealServerLine(fwmark: number, rs: { readonly address: string; readonly port: number }): string {
  return `-d -f ${fwmark} -r ${rs.address}:${rs.port}`;
}

export function renderIpvs(services: readonly VirtualService[]): string {
  const lines: string[] = [];
  for (const vs of services) {
    lines.push(serviceLine(vs));
    for (const rs of vs.realServers) lines.push(realServerLine(vs.fwmark, rs));
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
