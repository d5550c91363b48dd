// The desired kernel state of one node, namespace by namespace. Pure data: the
// renderers turn it into text, the reconciler compares it with what it observes.
import type { Family, Protocol, Scheduler } from '../catalog/types.js';

export type Table = 'mangle' | 'nat' | 'filter';
export const TABLES: readonly Table[] = ['mangle', 'nat', 'filter'];

export type BuiltinChain = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';
export const BUILTIN_CHAINS: readonly BuiltinChain[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

/** Every chain vipmesh creates starts with this. */
export const CHAIN_PREFIX = 'VIPMESH-';

/** The one rule in a built-in chain that sends traffic into a vipmesh chain. */
export interface Jump {
  readonly from: BuiltinChain;
  /** Match part of the rule as iptables-save prints it ('' for unconditional). */
  readonly match: string;
}

/**
 * dns: the 127.0.0.11 redirect, managed only while an agent holds resolver ports;
 * datapath: everything else.
 */
export type ChainGroup = 'dns' | 'datapath';

export interface Chain {
  readonly family: Family;
  readonly table: Table;
  readonly name: string;
  readonly group: ChainGroup;
  readonly jumps: readonly Jump[];
  /** Rule specs exactly as iptables-save prints them, without the leading `-A <name> `. */
  readonly rules: readonly string[];
}

export interface RealServer {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** The task behind it (not part of the kernel state; for people and for draining). */
  readonly task: string;
}

/**
 * What a virtual service balances, for the code: a service's VIP on one network
 * (in a task namespace, or the ingress VIP in the sandbox), or one published
 * ingress port (sandbox). Nothing reads this back out of the label.
 */
export type Balanced =
  | { readonly kind: 'vip'; readonly service: string; readonly network: string }
  | { readonly kind: 'port'; readonly service: string; readonly protocol: Protocol; readonly port: number };

/** The identity of a VIP in stored state and in fwmark assignment: "service/network". */
export function vipKey(vip: { readonly service: string; readonly network: string }): string {
  return `${vip.service}/${vip.network}`;
}

export interface VirtualService {
  /** What it balances: the typed identity the reconciler keys on. */
  readonly balances: Balanced;
  /** What it balances, for people only: "whoami/appnet" or "whoami 8080/tcp". */
  readonly label: string;
  readonly fwmark: number;
  readonly scheduler: Scheduler;
  /** Persistence timeout in seconds; 0 = not persistent. */
  readonly persistence: number;
  readonly drainTimeout: number;
  readonly realServers: readonly RealServer[];
}

export interface Sysctl {
  readonly name: string;
  readonly value: string;
}

/** load-balancer: a network's load-balancer namespace on the node (SPEC §2, load-balancer mode). */
export type NamespaceRole = 'host' | 'ingress-sandbox' | 'load-balancer' | 'task';

/**
 * An address vipmesh puts on an interface: a VIP as a host address (/32) on the
 * load balancer's interface on the VIP's network, so the tasks there reach it by
 * ARP. The interface is the one holding `anchor`, the load balancer's own address.
 */
export interface VipAddress {
  readonly address: string;
  readonly prefixLength: number;
  readonly anchor: string;
  /** The VIP it is (for people, and the key of what is owned). */
  readonly service: string;
  readonly network: string;
}

export interface ResolverPorts {
  readonly udp: number;
  readonly tcp: number;
}

export interface NamespacePlan {
  /** `host` for the agent's own namespace, otherwise the namespace path. */
  readonly key: string;
  /** Path to enter with nsenter; null for the agent's own namespace. */
  readonly netns: string | null;
  readonly role: NamespaceRole;
  /** The task whose namespace this is (role task only). */
  readonly task?: string;
  readonly chains: readonly Chain[];
  readonly ipvs: readonly VirtualService[];
  readonly sysctls: readonly Sysctl[];
  /** Role task only: the resolver's ports in this namespace, null while no agent holds them. */
  readonly resolverPorts?: ResolverPorts | null;
  /** Role load-balancer only: the network it balances. */
  readonly network?: string;
  /** Role load-balancer only: the VIP addresses on its interface on that network, by address. */
  readonly addresses?: readonly VipAddress[];
}

export interface NodePlan {
  readonly node: string;
  readonly namespaces: readonly NamespacePlan[];
}

/** What the planner needs to know about the node beyond the catalog. */
export interface NodeFacts {
  /** `uname -r`; decides kernel-version-dependent sysctls. */
  readonly kernelRelease: string;
  /** Namespace path → ports the running agent's resolver holds there. */
  readonly resolverPorts: ReadonlyMap<string, ResolverPorts>;
  /** Namespace key → (vipKey() → fwmark already programmed there). */
  readonly marks: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Local task name → the agent's latest probe verdict (true = passing). */
  readonly probes: ReadonlyMap<string, boolean>;
}

export const HOST_KEY = 'host';
