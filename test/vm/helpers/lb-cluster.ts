// Guest-only: two nodes in load-balancer mode on one appnet segment. node-1 runs
// web.1 and web.2 and its load balancer (10.0.1.250); node-2 runs web.3 and has
// a load balancer too (10.0.1.251), never reconciled here: two namespaces
// answering ARP for one VIP on one segment is what an overlay's per-node ARP
// proxy avoids, and a flat bridge does not. So node-1's balancer carries the VIP,
// and spreads it over the tasks of both nodes. web.i is at 10.0.1.(10+i).
import { join } from 'node:path';
import { type Lab, inNs, reconcileAndCheck } from './lab.js';

export const LB_VIP = '10.0.1.2';
export const LB_ADDRESS = '10.0.1.250';

export interface LbCluster {
  readonly lb: string;
  /** Namespace names, index i ↔ web.<i+1>; web.1 and web.2 on node-1, web.3 on node-2. */
  readonly tasks: readonly string[];
  readonly runDir: string;
  /** The catalog without the tasks named in `omit`, and these lb fields. */
  readonly catalog: (omit?: readonly number[], lb?: string) => string;
  readonly reconcile: (omit?: readonly number[], lb?: string) => Promise<string>;
}

export async function lbCluster(lab: Lab): Promise<LbCluster> {
  const app = await lab.segment('appnet');
  const host1 = await lab.ns('node1');
  const host2 = await lab.ns('node2');
  const lb = await lab.ns('lb1');
  await lab.plug(lb, app, 'eth0', `${LB_ADDRESS}/24`);
  const lb2 = await lab.ns('lb2');
  await lab.plug(lb2, app, 'eth0', '10.0.1.251/24');
  const tasks: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const ns = await lab.ns(`web${i}`);
    await lab.plug(ns, app, 'eth0', `10.0.1.${10 + i}/24`);
    tasks.push(ns);
  }
  await Promise.all(tasks.map((ns, i) => lab.server(ns, `web.${i + 1}`)));
  const runDir = join(lab.dir, 'run');
  const node = (i: number) => (i < 2 ? 'node-1' : 'node-2');

  const catalog = (omit: readonly number[] = [], lbFields = ''): string => lab.catalog(`version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
  node-1:
    address: 192.0.2.11
    netns: /run/netns/${host1}
    loadBalancers: { appnet: { netns: /run/netns/${lb}, address: ${LB_ADDRESS} } }
  node-2:
    address: 192.0.2.12
    netns: /run/netns/${host2}
    loadBalancers: { appnet: { netns: /run/netns/${lb2}, address: 10.0.1.251 } }
services:
  web:
    vips: { appnet: ${LB_VIP} }
${lbFields ? `    lb: ${lbFields}\n` : ''}tasks:
${tasks.map((ns, i) => (omit.includes(i) ? ''
    : `  web.${i + 1}: { service: web, node: ${node(i)}, netns: /run/netns/${ns}, addresses: { appnet: 10.0.1.${11 + i} } }\n`)).join('')}`);

  return {
    lb, tasks, runDir, catalog,
    reconcile: (omit = [], lbFields = '') => reconcileAndCheck(runDir, catalog(omit, lbFields), 'node-1'),
  };
}

/** The IPv4 addresses on `ifname` in `ns`: "10.0.1.2/32". */
export async function addressesOn(ns: string, ifname: string): Promise<string[]> {
  const shown = JSON.parse(await inNs(ns, 'ip', ['-j', 'addr', 'show', 'dev', ifname])) as
    { addr_info: { family: string; local: string; prefixlen: number }[] }[];
  return shown.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).sort();
}
