// The plumbing a network driver would provide, built with iproute2 for the lab,
// the kernel lane's scenarios and the kernel tests alike: network namespaces,
// bridges, veths, addresses and routes. Every object is recorded before it is
// made (the journal), so whoever made them can remove them all later, even from
// another process after the maker was killed (`vipmesh lab down`).
//
// Links are created straight inside their namespaces (`ip link add … netns X`):
// nothing is ever made in the namespace this process runs in, so removing the
// namespaces removes every link, and two labs never race for a link name.
import { rm } from 'node:fs/promises';
import { execa } from 'execa';

/** What the plumbing made, as the journal records it. */
export type Made =
  /** A namespace under /run/netns; its links and addresses go with it. */
  | { readonly kind: 'netns'; readonly name: string }
  /** /etc/netns/NAME, which `ip netns exec` bind-mounts files from (resolv.conf). */
  | { readonly kind: 'etc-netns'; readonly name: string };

/** Where the plumbing records what it makes; one that must outlive this process writes to disk. */
export interface Journal {
  /** Called before the object is made, so a crash right after still leaves it on record. */
  add(made: Made): void | Promise<void>;
  /** Called when making it failed: it is not ours, and must never be removed as ours. */
  forget(made: Made): void | Promise<void>;
}

export interface PlumbingOptions {
  readonly journal?: Journal;
}

export class PlumbingError extends Error {
  override name = 'PlumbingError';
}

/** Runs one program; a non-zero exit is a PlumbingError naming the command and its stderr. */
export async function sh(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await execa(file, args, { reject: false, ...(input === undefined ? {} : { input }) });
  if (r.exitCode !== 0) {
    const why = r.failed && r.exitCode === undefined ? (r.shortMessage ?? 'could not start') : `exited ${r.exitCode}`;
    throw new PlumbingError(`\`${r.command}\` ${why}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`);
  }
  return r.stdout;
}

/** Runs a program inside namespace `ns` (`ip netns exec`). */
export const inNs = (ns: string, file: string, args: readonly string[], input?: string): Promise<string> =>
  sh('ip', ['netns', 'exec', ns, file, ...args], input);

/**
 * `ip ARGS` inside namespace `ns`: `ip -n` enters it itself, one program run
 * instead of `ip netns exec`'s two (and no mount namespace to set up), which
 * counts on the kernel lane's emulated CPUs, where the lab runs some hundred of them.
 */
const ipIn = (ns: string, args: readonly string[]): Promise<string> => sh('ip', ['-n', ns, ...args]);

/** The names of the namespaces under /run/netns, as `ip netns list` shows them. */
export async function listNamespaces(): Promise<string[]> {
  const out = await sh('ip', ['-j', 'netns', 'list']).catch(() => '');
  if (out.trim() === '') return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

export class Plumbing {
  private readonly made: Made[] = [];
  private outer = 0;

  constructor(private readonly options: PlumbingOptions = {}) {}

  /** Everything made so far, oldest first. */
  get objects(): readonly Made[] {
    return this.made;
  }

  private async record(made: Made): Promise<void> {
    await this.options.journal?.add(made);
    this.made.push(made);
  }

  private async forget(made: Made): Promise<void> {
    this.made.splice(this.made.indexOf(made), 1);
    await this.options.journal?.forget(made);
  }

  /** A new namespace `name` with lo up. It must not exist: a lab never adopts what it did not make. */
  async ns(name: string): Promise<string> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) throw new PlumbingError(`"${name}" is not a namespace name this plumbing makes`);
    if ((await listNamespaces()).includes(name)) {
      throw new PlumbingError(`network namespace ${name} exists already; it is not this lab's to take over (remove it, or run \`vipmesh lab down\` if an earlier lab left it)`);
    }
    const made: Made = { kind: 'netns', name };
    await this.record(made);
    try {
      await sh('ip', ['netns', 'add', name]);
    } catch (error) {
      await this.forget(made); // most likely made by someone else between the check and here
      throw error;
    }
    await ipIn(name, ['link', 'set', 'lo', 'up']);
    return name;
  }

  /** Bridge `bridge` inside namespace `ns`, up: one L2 segment. */
  async bridge(ns: string, bridge = 'br0'): Promise<void> {
    await ipIn(ns, ['link', 'add', bridge, 'type', 'bridge']);
    await ipIn(ns, ['link', 'set', bridge, 'up']);
  }

  /** A new namespace holding bridge br0. */
  async segment(name: string): Promise<string> {
    await this.ns(name);
    await this.bridge(name);
    return name;
  }

  /**
   * Plugs `ns` into the bridge of `segment` (br0 unless `bridge` says) as interface
   * `ifname` with the given addresses (CIDR). Returns the bridge-side name.
   */
  async plug(ns: string, segment: string, ifname: string, cidrs: string | readonly string[], bridge = 'br0'): Promise<string> {
    const outer = `vp${this.outer++}`;
    await sh('ip', ['link', 'add', outer, 'netns', segment, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    await ipIn(segment, ['link', 'set', outer, 'master', bridge, 'up']);
    await this.address(ns, ifname, cidrs);
    await ipIn(ns, ['link', 'set', ifname, 'up']);
    return outer;
  }

  /** A point-to-point veth between two namespaces, each end with its addresses, both up. */
  async wire(a: string, aIf: string, aCidrs: string | readonly string[], b: string, bIf: string, bCidrs: string | readonly string[]): Promise<void> {
    await sh('ip', ['link', 'add', aIf, 'netns', a, 'type', 'veth', 'peer', 'name', bIf, 'netns', b]);
    for (const [ns, ifname, cidrs] of [[a, aIf, aCidrs], [b, bIf, bCidrs]] as const) {
      await this.address(ns, ifname, cidrs);
      await ipIn(ns, ['link', 'set', ifname, 'up']);
    }
  }

  async address(ns: string, ifname: string, cidrs: string | readonly string[]): Promise<void> {
    for (const cidr of typeof cidrs === 'string' ? [cidrs] : cidrs) {
      await ipIn(ns, ['addr', 'add', cidr, 'dev', ifname]);
    }
  }

  /** `ip route add ARGS` inside `ns`. */
  async route(ns: string, ...args: string[]): Promise<void> {
    await ipIn(ns, ['route', 'add', ...args]);
  }

  /** Writes net.* sysctls inside `ns` ("net.ipv4.ip_forward" → "1"). */
  async sysctl(ns: string, values: Readonly<Record<string, string>>): Promise<void> {
    for (const [key, value] of Object.entries(values)) await inNs(ns, 'sysctl', ['-qw', `${key}=${value}`]);
  }

  /** Records /etc/netns/NAME (made by whoever writes into it) so that remove() takes it too. */
  async etcNetns(name: string): Promise<void> {
    await this.record({ kind: 'etc-netns', name });
  }

  /** Removes everything made, newest first; never fails on what is already gone. */
  async remove(): Promise<void> {
    const all = this.made.splice(0).reverse();
    await removeMade(all);
  }
}

/**
 * Removes what a journal lists, newest first: namespaces (with every link and
 * address in them) and /etc/netns entries. What is gone already is no error.
 * Returns the objects that could not be removed, with why.
 */
export async function removeMade(objects: readonly Made[]): Promise<{ made: Made; error: string }[]> {
  const failed: { made: Made; error: string }[] = [];
  const present = new Set(await listNamespaces());
  for (const made of objects) {
    try {
      if (made.kind === 'netns') {
        if (present.has(made.name)) await sh('ip', ['netns', 'delete', made.name]);
      } else {
        await rm(`/etc/netns/${made.name}`, { recursive: true, force: true });
      }
    } catch (error) {
      failed.push({ made, error: (error as Error).message });
    }
  }
  return failed;
}
