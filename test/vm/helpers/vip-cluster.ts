// Guest-only: one node whose tasks share the appnet segment, plus a client task.
// Task i is web.<i> at 10.0.1.(10+i); the client is 10.0.1.100; the VIP 10.0.1.2.
import { join } from 'node:path';
import { type Lab, inNs, reconcileAndCheck } from './lab.js';

export const VIP = '10.0.1.2';
export const CLIENT_ADDRESS = '10.0.1.100';

export interface TaskSpec {
  readonly extra?: string; // more YAML fields for the task, e.g. "health: unhealthy"
  readonly omit?: boolean; // leave out of the catalog (the task still runs)
}

export interface VipCluster {
  readonly client: string;
  readonly tasks: readonly string[]; // namespace names, index i ↔ web.<i+1>
  readonly runDir: string;
  /** Writes the catalog for these task specs and service fields (renamed over the old); returns its path. */
  readonly write: (specs: readonly TaskSpec[], lb?: string, more?: string) => string;
  /** Writes the catalog for these task specs and service fields, then reconciles. */
  readonly reconcile: (specs: readonly TaskSpec[], lb?: string, more?: string) => Promise<string>;
  readonly ipvs: () => Promise<string>;
}

export async function vipCluster(lab: Lab, replicas: number): Promise<VipCluster> {
  const host = await lab.ns('node1');
  const app = await lab.segment('appnet');
  await lab.plug(host, app, 'app0', '10.0.1.254/24');
  const client = await lab.ns('client');
  await lab.plug(client, app, 'eth0', `${CLIENT_ADDRESS}/24`);
  const tasks: string[] = [];
  for (let i = 1; i <= replicas; i++) {
    const ns = await lab.ns(`web${i}`);
    await lab.plug(ns, app, 'eth0', `10.0.1.${10 + i}/24`);
    tasks.push(ns);
  }
  await Promise.all(tasks.map((ns, i) => lab.server(ns, `web.${i + 1}`)));
  const runDir = join(lab.dir, 'run');

  const write = (specs: readonly TaskSpec[], lb = '', more = ''): string => {
    const lines = specs.map((spec, i) => spec.omit ? '' :
      `  web.${i + 1}: { service: web, node: node-1, netns: /run/netns/${tasks[i]}, addresses: { appnet: 10.0.1.${11 + i} }${spec.extra ? `, ${spec.extra}` : ''} }\n`);
    const catalog = lab.catalog(`version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
  node-1: { address: 192.0.2.11, netns: /run/netns/${host} }
services:
  web:
    vips: { appnet: ${VIP} }
${lb ? `    lb: ${lb}\n` : ''}${more}tasks:
  client: { node: node-1, netns: /run/netns/${client}, addresses: { appnet: ${CLIENT_ADDRESS} } }
${lines.join('')}`);
    return catalog;
  };
  const reconcile = (specs: readonly TaskSpec[], lb = '', more = ''): Promise<string> => reconcileAndCheck(runDir, write(specs, lb, more), 'node-1');
  return { client, tasks, runDir, write, reconcile, ipvs: () => inNs(client, 'ipvsadm', ['-Ln']) };
}
