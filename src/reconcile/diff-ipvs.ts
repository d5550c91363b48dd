// Desired virtual services vs observed ones (vipmesh's fwmark block only) →
// minimal IPVS operations, with graceful draining of leaving real servers.
import type { IpvsOp, ObservedIpvs, ObservedRealServer, ObservedService } from '../kernel/types.js';
import { isVipmeshMark } from '../plan/marks.js';
import { type RealServer, type VirtualService } from '../plan/types.js';
import type { Change, DiffOptions } from './types.js';

export function drainKey(fwmark: number, address: string, port: number): string {
  return `${fwmark} ${address}:${port}`;
}

const rsName = (rs: { address: string; port: number }) => `${rs.address}:${rs.port}`;

/**
 * A real server to add, its line spelled only when someone reads it (the summary
 * printed, an error message): a pass from empty at K = 200 makes some 200 000 of
 * these and usually prints none of them, the agent never does.
 */
class RealServerAdded implements Change {
  readonly drift = true;
  constructor(private readonly fwmark: number, private readonly rs: RealServer) {}
  get text(): string {
    const rs = this.rs;
    return `+ ipvs fwmark ${this.fwmark} real server ${rsName(rs)} weight ${rs.weight} (${rs.task})`;
  }
}

function sameService(want: VirtualService, have: ObservedService): boolean {
  return want.scheduler === have.scheduler && want.persistence === have.persistence;
}

/**
 * A port service of the ingress sandbox carries one protocol; a UDP one has no
 * connection end to wait for, so its leaving real servers go at once.
 */
function isUdpPortService(vs: VirtualService): boolean {
  const balances = vs.balances;
  return balances.kind === 'port' && balances.protocol === 'udp';
}

function serviceOp(kind: 'add-service' | 'edit-service', vs: VirtualService): IpvsOp {
  return { kind, fwmark: vs.fwmark, scheduler: vs.scheduler, persistence: vs.persistence };
}

export function diffIpvs(
  desired: readonly VirtualService[],
  observed: ObservedIpvs,
  options: DiffOptions,
): { ops: IpvsOp[]; changes: Change[]; draining: Map<string, number> } {
  const ops: IpvsOp[] = [];
  const changes: Change[] = [];
  const draining = new Map<string, number>();
  if (!observed.available) return { ops, changes, draining };

  const have = new Map(observed.services.filter((s) => isVipmeshMark(s.fwmark)).map((s) => [s.fwmark, s]));
  for (const want of desired) {
    const current = have.get(want.fwmark);
    have.delete(want.fwmark);
    if (current === undefined) {
      ops.push(serviceOp('add-service', want));
      changes.push({ text: `+ ipvs ${serviceText(want)}`, drift: true });
    } else if (!sameService(want, current)) {
      ops.push(serviceOp('edit-service', want));
      changes.push({ text: `~ ipvs ${serviceText(want)} (was ${current.scheduler}${current.persistence ? ` -p ${current.persistence}` : ''})`, drift: true });
    }
    diffRealServers(want, current?.realServers ?? [], options, ops, changes, draining);
  }
  for (const stale of have.values()) {
    ops.push({ kind: 'delete-service', fwmark: stale.fwmark });
    changes.push({ text: `- ipvs fwmark ${stale.fwmark}`, drift: true });
  }
  return { ops, changes, draining };
}

function serviceText(vs: VirtualService): string {
  return `fwmark ${vs.fwmark} ${vs.scheduler}${vs.persistence ? ` -p ${vs.persistence}` : ''} (${vs.label})`;
}

/**
 * Already as wanted, in the same order: the usual answer on a converged node and
 * to the read-back after a write, found without naming every real server.
 */
function inStep(want: readonly RealServer[], have: readonly ObservedRealServer[]): boolean {
  if (want.length !== have.length) return false;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const h = have[i]!;
    if (w.address !== h.address || w.port !== h.port || w.weight !== h.weight || h.forward !== 'Masq') return false;
  }
  return true;
}

function addRealServer(fwmark: number, rs: RealServer, ops: IpvsOp[], changes: Change[]): void {
  ops.push({ kind: 'add-real-server', fwmark, address: rs.address, port: rs.port, weight: rs.weight });
  changes.push(new RealServerAdded(fwmark, rs));
}

function diffRealServers(
  want: VirtualService,
  have: readonly ObservedRealServer[],
  options: DiffOptions,
  ops: IpvsOp[],
  changes: Change[],
  draining: Map<string, number>,
): void {
  const fwmark = want.fwmark;
  if (have.length === 0) {
    // From empty (every real server of a new namespace): nothing to look up.
    for (const rs of want.realServers) addRealServer(fwmark, rs, ops, changes);
    return;
  }
  if (inStep(want.realServers, have)) return;
  const current = new Map(have.map((rs) => [rsName(rs), rs]));
  for (const rs of want.realServers) {
    // Once per real server: a pass from empty at K = 200 diffs some 200 000 of them.
    const name = rsName(rs);
    const seen = current.get(name);
    if (seen === undefined) {
      addRealServer(fwmark, rs, ops, changes);
      continue;
    }
    current.delete(name);
    if (seen.weight !== rs.weight || seen.forward !== 'Masq') {
      ops.push({ kind: 'edit-real-server', fwmark, address: rs.address, port: rs.port, weight: rs.weight });
      changes.push({ text: `~ ipvs fwmark ${fwmark} real server ${name} weight ${seen.weight} -> ${rs.weight}`, drift: true });
    }
  }
  for (const leaving of current.values()) {
    const key = drainKey(fwmark, leaving.address, leaving.port);
    const name = `ipvs fwmark ${fwmark} real server ${rsName(leaving)}`;
    const connections = leaving.activeConnections + leaving.inactiveConnections;
    const stopped = options.taskRunning(leaving.address) === false;
    const remove: IpvsOp = { kind: 'delete-real-server', fwmark, address: leaving.address, port: leaving.port };
    if (stopped || isUdpPortService(want) || connections === 0) {
      ops.push(remove);
      const why = stopped ? 'its task stopped' : connections === 0 ? 'no connections left' : 'UDP';
      // Finishing a drain that was already under way is not drift.
      changes.push({ text: `- ${name} (${why})`, drift: leaving.weight !== 0 });
      continue;
    }
    const started = options.drainStarted.get(key) ?? options.now;
    if (leaving.weight !== 0) {
      ops.push({ kind: 'edit-real-server', fwmark, address: leaving.address, port: leaving.port, weight: 0 });
      changes.push({ text: `~ ${name} weight ${leaving.weight} -> 0 (draining ${connections} connections)`, drift: true });
      draining.set(key, options.now);
    } else if (options.now - started >= want.drainTimeout * 1000) {
      ops.push(remove);
      changes.push({ text: `- ${name} (drain timeout ${want.drainTimeout}s, ${connections} connections cut)`, drift: false });
    } else {
      draining.set(key, started);
      changes.push({ text: `  ${name} draining (${connections} connections)`, drift: false });
    }
  }
}
