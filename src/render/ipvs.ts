// Virtual services → `ipvsadm-save -n` syntax, which `ipvsadm -R` reads back.
import type { RealServer, VirtualService } from '../plan/types.js';

export function serviceLine(vs: VirtualService): string {
  return `-A -f ${vs.fwmark} -s ${vs.scheduler}${vs.persistence > 0 ? ` -p ${vs.persistence}` : ''}`;
}

export function realServerLine(fwmark: number, rs: RealServer): string {
  // Only IPv4 real servers exist in v1 (IPv6 VIPs and ingress are rejected by validation).
  return `-a -f ${fwmark} -r ${rs.address}:${rs.port} -m -w ${rs.weight}`;
}

export function renderIpvs(services: readonly VirtualService[]): string {
  const lines: string[] = [];
  for (const vs of services) {
    lines.push(serviceLine(vs));
    for (const rs of vs.realServers) lines.push(realServerLine(vs.fwmark, rs));
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
