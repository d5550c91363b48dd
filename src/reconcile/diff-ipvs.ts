// Desired virtual services vs observed ones (vipmesh's fwmark block only) →
// minimal ipvsadm commands, with graceful draining of leaving real servers.
import type { ObservedIpvs, ObservedRealServer, ObservedService } from '../kernel/types.js';
import { isVipmeshMark } from '../plan/marks.js';
import type { RealServer, VirtualService } from '../plan/types.js';
import { realServerLine, serviceLine } from '../render/ipvs.js';
import type { Change, DiffOptions } from './types.js';

export function drainKey(fwmark: number, address: string, port: number): string {
  return `${fwmark} ${address}:${port}`;
}

const rsName = (rs: { address: string; port: number }) => `${rs.address}:${rs.port}`;

function sameService(want: VirtualService, have: ObservedService): boolean {
  return want.scheduler === have.scheduler && want.persistence === have.persistence;
}

/**
 * A port service of the ingress sandbox carries one protocol; a UDP one has no
 * connection end to wait for, so its leaving real servers go at once.
 */
function isUdpPortService(vs: VirtualService): boolean {
  return / \d+\/udp$/.test(vs.label);
}

export function diffIpvs(
  desired: readonly VirtualService[],
  observed: ObservedIpvs,
  options: DiffOptions,
): { commands: string[]; changes: Change[]; draining: Map<string, number> } {
  const commands: string[] = [];
  const changes: Change[] = [];
  const draining = new Map<string, number>();
  if (!observed.available) return { commands, changes, draining };

  const have = new Map(observed.services.filter((s) => isVipmeshMark(s.fwmark)).map((s) => [s.fwmark, s]));
  for (const want of desired) {
    const current = have.get(want.fwmark);
    have.delete(want.fwmark);
    if (current === undefined) {
      commands.push(serviceLine(want));
      changes.push({ text: `+ ipvs ${serviceText(want)}`, drift: true });
    } else if (!sameService(want, current)) {
      commands.push(serviceLine(want).replace(/^-A /, '-E '));
      changes.push({ text: `~ ipvs ${serviceText(want)} (was ${current.scheduler}${current.persistence ? ` -p ${current.persistence}` : ''})`, drift: true });
    }
    diffRealServers(want, current?.realServers ?? [], options, commands, changes, draining);
  }
  for (const stale of have.values()) {
    commands.push(`-D -f ${stale.fwmark}`);
    changes.push({ text: `- ipvs fwmark ${stale.fwmark}`, drift: true });
  }
  return { commands, changes, draining };
}

function serviceText(vs: VirtualService): string {
  return `fwmark ${vs.fwmark} ${vs.scheduler}${vs.persistence ? ` -p ${vs.persistence}` : ''} (${vs.label})`;
}

function diffRealServers(
  want: VirtualService,
  have: readonly ObservedRealServer[],
  options: DiffOptions,
  commands: string[],
  changes: Change[],
  draining: Map<string, number>,
): void {
  const current = new Map(have.map((rs) => [rsName(rs), rs]));
  for (const rs of want.realServers) {
    const seen = current.get(rsName(rs));
    current.delete(rsName(rs));
    if (seen === undefined) {
      commands.push(realServerLine(want.fwmark, rs));
      changes.push({ text: `+ ipvs fwmark ${want.fwmark} real server ${rsName(rs)} weight ${rs.weight} (${rs.task})`, drift: true });
    } else if (seen.weight !== rs.weight || seen.forward !== 'Masq') {
      commands.push(realServerLine(want.fwmark, rs).replace(/^-a /, '-e '));
      changes.push({ text: `~ ipvs fwmark ${want.fwmark} real server ${rsName(rs)} weight ${seen.weight} -> ${rs.weight}`, drift: true });
    }
  }
  for (const leaving of current.values()) {
    const key = drainKey(want.fwmark, leaving.address, leaving.port);
    const name = `ipvs fwmark ${want.fwmark} real server ${rsName(leaving)}`;
    const connections = leaving.activeConnections + leaving.inactiveConnections;
    const stopped = options.taskRunning(leaving.address) === false;
    if (stopped || isUdpPortService(want) || connections === 0) {
      commands.push(`-d -f ${want.fwmark} -r ${rsName(leaving)}`);
      const why = stopped ? 'its task stopped' : connections === 0 ? 'no connections left' : 'UDP';
      // Finishing a drain that was already under way is not drift.
      changes.push({ text: `- ${name} (${why})`, drift: leaving.weight !== 0 });
      continue;
    }
    const started = options.drainStarted.get(key) ?? options.now;
    if (leaving.weight !== 0) {
      const stub: RealServer = { address: leaving.address, port: leaving.port, weight: 0, task: '' };
      commands.push(realServerLine(want.fwmark, stub).replace(/^-a /, '-e '));
      changes.push({ text: `~ ${name} weight ${leaving.weight} -> 0 (draining ${connections} connections)`, drift: true });
      draining.set(key, options.now);
    } else if (options.now - started >= want.drainTimeout * 1000) {
      commands.push(`-d -f ${want.fwmark} -r ${rsName(leaving)}`);
      changes.push({ text: `- ${name} (drain timeout ${want.drainTimeout}s, ${connections} connections cut)`, drift: false });
    } else {
      draining.set(key, started);
      changes.push({ text: `  ${name} draining (${connections} connections)`, drift: false });
    }
  }
}
