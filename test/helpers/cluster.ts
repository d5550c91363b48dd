// A one-node cluster in throwaway namespaces: the node's host, its ingress
// sandbox and three tasks, plus a catalog file naming them. Nothing touches the
// machine's own namespace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Plumbing } from '../../src/lab/plumbing.js';
import { inNetns, netns, plumbing } from './netns.js';

export interface Cluster {
  readonly ns: { host: string; sbox: string; web: string; api: string; client: string };
  /** The test's plumbing, which made the namespaces: links and addresses a test adds go through it too. */
  readonly plumbing: Plumbing;
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
  // Hosts and tasks have lo up (the plumbing's namespaces do). IPVS needs it too: it refuses a real
  // server whose address the namespace does not type as unicast, and with no local address every one is broadcast.
  const path = (name: string) => `/run/netns/${name}`;
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-cluster-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
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
  return { ns, plumbing: plumbing(t), path, catalog, runDir, write };
}

/** Pretends an agent (this test process) holds resolver ports in the given namespaces. */
export function fakeAgentPorts(runDir: string, paths: readonly string[]): void {
  const namespaces = Object.fromEntries(paths.map((p, i) => [p, { udp: 41000 + i, tcp: 42000 + i }]));
  writeFileSync(join(runDir, 'resolver.json'), JSON.stringify({ pid: process.pid, namespaces }));
}

/** Foreign state an operator or another tool left: a chain, rules in built-ins, and where asked IPVS services. */
export async function addForeignRules(name: string, withIpvs = false): Promise<void> {
  const ipt = (...args: string[]) => inNetns(name, 'iptables', args);
  await ipt('-t', 'nat', '-N', 'FOREIGN');
  await ipt('-t', 'nat', '-A', 'FOREIGN', '-p', 'tcp', '--dport', '9999', '-j', 'RETURN');
  await ipt('-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '9999', '-j', 'FOREIGN');
  await ipt('-t', 'nat', '-A', 'POSTROUTING', '-s', '10.9.9.0/24', '-j', 'MASQUERADE');
  await ipt('-t', 'mangle', '-A', 'OUTPUT', '-d', '198.51.100.7/32', '-j', 'MARK', '--set-mark', '7');
  await ipt('-t', 'filter', '-A', 'FORWARD', '-s', '10.9.9.0/24', '-j', 'DROP');
  if (!withIpvs) return;
  // A TCP service, and fwmark services just below and just above vipmesh's block.
  const ipvsadm = (...args: string[]) => inNetns(name, 'ipvsadm', args);
  await ipvsadm('-A', '-t', '10.9.9.9:80', '-s', 'wlc');
  await ipvsadm('-a', '-t', '10.9.9.9:80', '-r', '10.9.9.10:80', '-m', '-w', '2');
  await ipvsadm('-A', '-f', String(0x55ffffff), '-s', 'rr');
  await ipvsadm('-A', '-f', String(0x57000000), '-s', 'rr');
  await ipvsadm('-a', '-f', String(0x57000000), '-r', '10.9.9.11:0', '-m', '-w', '1');
}

export async function save(name: string): Promise<string[]> {
  return (await inNetns(name, 'iptables-save', [])).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

export const ours = (lines: readonly string[]): string[] => lines.filter((l) => l.includes('VIPMESH-'));
export const foreign = (lines: readonly string[]): string[] => lines.filter((l) => !l.includes('VIPMESH-'));

/** vipmesh's fwmark block (README: "fwmarks"). */
const isOurMark = (mark: number) => mark >= 0x56000000 && mark <= 0x56ffffff;

async function ipvsLines(name: string): Promise<string[]> {
  return (await inNetns(name, 'ipvsadm', ['-Sn'])).split('\n').map((l) => l.trim()).filter((l) => l !== '').sort();
}

const inOurBlock = (line: string): boolean => {
  const mark = / -f (\d+)/.exec(line)?.[1];
  return mark !== undefined && isOurMark(Number(mark));
};

/** The namespace's IPVS services in vipmesh's block, as `ipvsadm -Sn` prints them (plan's syntax), sorted. */
export async function ipvsSave(name: string): Promise<string[]> {
  return (await ipvsLines(name)).filter(inOurBlock);
}

/** Every other IPVS service and real server in the namespace, sorted. */
export async function foreignIpvs(name: string): Promise<string[]> {
  return (await ipvsLines(name)).filter((l) => !inOurBlock(l));
}
