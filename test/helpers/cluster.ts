// A one-node cluster in throwaway namespaces: the node's host, its ingress
// sandbox and three tasks, plus a catalog file naming them. Nothing touches the
// machine's own namespace.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { inNetns, netns } from './netns.js';

export interface Cluster {
  readonly ns: { host: string; sbox: string; web: string; api: string; client: string };
  readonly path: (name: string) => string;
  readonly catalog: string;
  readonly runDir: string;
  /** Rewrites the catalog; `edit` gets the YAML and returns the new one. */
  readonly write: (edit?: (yaml: string) => string) => void;
}

export async function cluster(t: TestContext): Promise<Cluster> {
  const ns = {
    host: await netns(t, 'vmh'), sbox: await netns(t, 'vms'),
    web: await netns(t, 'vmw'), api: await netns(t, 'vma'), client: await netns(t, 'vmc'),
  };
  const path = (name: string) => `/run/netns/${name}`;
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-cluster-'));
  const catalog = join(dir, 'catalog.yaml');
  const runDir = join(dir, 'run');
  const yaml = `version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1:
    address: 192.0.2.11
    netns: ${path(ns.host)}
    ingressSandbox: { netns: ${path(ns.sbox)}, address: 10.255.0.2 }
services:
  web:
    vips: { appnet: 10.0.1.2 }
    ports: [{ target: 80, published: 8080 }]
  api:
    vips: { appnet: 10.0.1.3 }
tasks:
  web.1.aaaa: { service: web, node: node-1, netns: ${path(ns.web)}, addresses: { appnet: 10.0.1.11, ingress: 10.255.0.11 } }
  api.1.bbbb: { service: api, node: node-1, netns: ${path(ns.api)}, addresses: { appnet: 10.0.1.21 } }
  client: { node: node-1, netns: ${path(ns.client)}, addresses: { appnet: 10.0.1.31 } }
`;
  const write = (edit: (y: string) => string = (y) => y) => writeFileSync(catalog, edit(yaml));
  write();
  return { ns, path, catalog, runDir, write };
}

/** Pretends an agent (this test process) holds resolver ports in the given namespaces. */
export function fakeAgentPorts(runDir: string, paths: readonly string[]): void {
  const namespaces = Object.fromEntries(paths.map((p, i) => [p, { udp: 41000 + i, tcp: 42000 + i }]));
  writeFileSync(join(runDir, 'resolver.json'), JSON.stringify({ pid: process.pid, namespaces }));
}

/** Foreign state an operator or another tool left: a chain, rules in built-ins. */
export async function addForeignRules(name: string): Promise<void> {
  const ipt = (...args: string[]) => inNetns(name, 'iptables', args);
  await ipt('-t', 'nat', '-N', 'FOREIGN');
  await ipt('-t', 'nat', '-A', 'FOREIGN', '-p', 'tcp', '--dport', '9999', '-j', 'RETURN');
  await ipt('-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '9999', '-j', 'FOREIGN');
  await ipt('-t', 'nat', '-A', 'POSTROUTING', '-s', '10.9.9.0/24', '-j', 'MASQUERADE');
  await ipt('-t', 'mangle', '-A', 'OUTPUT', '-d', '198.51.100.7/32', '-j', 'MARK', '--set-mark', '7');
  await ipt('-t', 'filter', '-A', 'FORWARD', '-s', '10.9.9.0/24', '-j', 'DROP');
}

export async function save(name: string): Promise<string[]> {
  return (await inNetns(name, 'iptables-save', [])).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

export const ours = (lines: readonly string[]): string[] => lines.filter((l) => l.includes('VIPMESH-'));
export const foreign = (lines: readonly string[]): string[] => lines.filter((l) => !l.includes('VIPMESH-'));
