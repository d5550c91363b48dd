// The catalog after validation: every default filled in, every reference checked.
// Records are keyed by name; iteration order is not relied upon anywhere (the
// planner sorts), so a catalog read from YAML and one read from JSON plan alike.

export type Family = 4 | 6;

declare const OWN_NAMES_ONLY: unique symbol;

/**
 * Entries by name, with no inherited names: a lookup of `constructor`,
 * `toString` or `__proto__` finds an entry of that name or nothing. Only
 * names.ts makes them (the brand keeps a plain object literal out).
 */
export type Names<T> = Readonly<Record<string, T>> & { readonly [OWN_NAMES_ONLY]: true };

export interface Network {
  readonly name: string;
  readonly subnet: string; // canonical CIDR, e.g. "10.0.1.0/24"
  readonly family: Family;
  readonly ingress: boolean;
}

export interface IngressSandbox {
  /** Normalized as netns.ts does, like every namespace path here. */
  readonly netns: string;
  readonly address: string;
}

/**
 * A network's load-balancer namespace on one node (SPEC §2, load-balancer mode):
 * plumbed like the ingress sandbox, an interface on that network holding `address`.
 */
export interface LoadBalancer {
  /** Normalized as netns.ts does. */
  readonly netns: string;
  readonly address: string;
}

export interface Node {
  readonly name: string;
  readonly address: string;
  /** The namespace that plays this node's host; undefined means the agent's own. */
  readonly netns?: string;
  readonly ingressSandbox?: IngressSandbox;
  /** Non-ingress network name → its load balancer on this node. */
  readonly loadBalancers?: Names<LoadBalancer>;
}

export const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const PUBLISH_MODES = ['ingress', 'host'] as const;
export type PublishMode = (typeof PUBLISH_MODES)[number];

export interface Port {
  readonly target: number;
  readonly published: number;
  readonly protocol: Protocol;
  readonly mode: PublishMode;
  /** Host mode only: the task network traffic is sent to (validated to be non-ingress). */
  readonly network?: string;
}

export const SCHEDULERS = [
  'rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos',
] as const;
export type Scheduler = (typeof SCHEDULERS)[number];

export interface LoadBalancing {
  readonly scheduler: Scheduler;
  /** Sticky seconds; 0 means not persistent. */
  readonly persistence: number;
  /** Seconds a leaving real server may drain before it is deleted. */
  readonly drainTimeout: number;
}

export type HealthProbe =
  | { readonly kind: 'tcp'; readonly port: number }
  | { readonly kind: 'http'; readonly port: number; readonly path: string }
  | { readonly kind: 'exec'; readonly argv: readonly string[] };

export interface Healthcheck {
  readonly probe: HealthProbe;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
}

export const ENDPOINT_MODES = ['vip', 'dnsrr'] as const;
export type EndpointMode = (typeof ENDPOINT_MODES)[number];

export interface Service {
  readonly name: string;
  readonly endpointMode: EndpointMode;
  /** Network name → VIP (vip mode only; may include the ingress network). */
  readonly vips: Names<string>;
  /** Every network the service is attached to, sorted (vip mode: the VIP networks). */
  readonly networks: readonly string[];
  readonly aliases: readonly string[];
  readonly ports: readonly Port[];
  readonly lb: LoadBalancing;
  readonly healthcheck?: Healthcheck;
}

export const TASK_HEALTHS = ['healthy', 'unhealthy', 'unknown'] as const;
export type TaskHealth = (typeof TASK_HEALTHS)[number];

export interface Task {
  readonly name: string;
  readonly service?: string;
  readonly node: string;
  /** Namespace path, normalized (netns.ts); a catalog `pid: N` becomes /proc/N/ns/net. */
  readonly netns: string;
  /** Network name → address. */
  readonly addresses: Names<string>;
  readonly state: string;
  readonly health: TaskHealth;
  readonly weight: number;
}

export interface Catalog {
  readonly version: 1;
  readonly networks: Names<Network>;
  readonly nodes: Names<Node>;
  readonly services: Names<Service>;
  readonly tasks: Names<Task>;
}

/** One validation problem: where (dotted path into the catalog) and what, as a sentence. */
export interface CatalogProblem {
  readonly path: string;
  readonly message: string;
}

export const DEFAULT_DRAIN_TIMEOUT_S = 60;
