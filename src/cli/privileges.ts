// `reconcile`, `cleanup` and `diff` enter other network namespaces and talk to
// netfilter and IPVS: without the privileges for that, each namespace would fail on
// its own (five identical nsenter errors), or the lock file a raw EACCES. They are
// checked once, before anything is read or written. `plan` needs none.
import { readFileSync } from 'node:fs';

/** Capability bits (linux/capability.h). */
const CAP = { CAP_DAC_OVERRIDE: 1, CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21 } as const;
type Capability = keyof typeof CAP;

export interface Credentials {
  readonly euid: number;
  /** `CapEff` of /proc/self/status; undefined where it cannot be read. */
  readonly effective: bigint | undefined;
}

export function parseCapEff(status: string): bigint | undefined {
  const match = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return match === null ? undefined : BigInt(`0x${match[1]!}`);
}

function listed(names: readonly string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
}

/**
 * CAP_NET_ADMIN programs iptables, IPVS and conntrack; CAP_SYS_ADMIN is setns() for
 * nsenter. A non-root process also needs CAP_DAC_OVERRIDE to write root's files
 * (/run/vipmesh, /proc/sys) — except for `diff`, which writes nothing. CAP_SYS_PTRACE
 * matters only for tasks given by `pid:`; without it just those namespaces fail,
 * each named with its reason, so it is not demanded of every run. (CAP_NET_RAW would
 * be the legacy iptables backend's; root has it, and the nft backend needs none.)
 * Without /proc, uid 0 is taken at its word.
 */
export function privilegeProblem(verb: string, who: Credentials): string | undefined {
  const base: Capability[] = ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'];
  const needed: Capability[] = who.euid !== 0 && verb !== 'diff' ? [...base, 'CAP_DAC_OVERRIDE'] : base;
  const effective = who.effective;
  if (effective === undefined) {
    return who.euid === 0 ? undefined : `${verb} must run as root (it needs ${listed(needed)}); nothing was done`;
  }
  const missing = needed.filter((name) => (effective & (1n << BigInt(CAP[name]))) === 0n);
  if (missing.length === 0) return undefined;
  const why = `it needs ${listed(base)} to program iptables and IPVS inside network namespaces`;
  if (who.euid !== 0) return `${verb} must run as root (${why}; this process, uid ${who.euid}, lacks ${listed(missing)}); nothing was done`;
  return `${verb} lacks ${listed(missing)}, though it runs as root (${why}; is its capability set reduced?); nothing was done`;
}

export function currentCredentials(): Credentials {
  let effective: bigint | undefined;
  try {
    effective = parseCapEff(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    effective = undefined;
  }
  return { euid: process.geteuid?.() ?? 0, effective };
}
