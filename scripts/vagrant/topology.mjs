// What the Vagrant lab's provisioning reads from its catalog, through vipmesh's
// own loader (so the plumbing is built only from a catalog vipmesh accepts).
// Plain lines for a shell's `read`:
//
//   node topology.mjs plumbing VIPMESH_DIR CATALOG NODE
//     node ADDRESS                      this machine's address (the VXLAN's local end)
//     peer ADDRESS                      every other machine's (one line each)
//     network NAME VNI                  a bridge br-NAME joined to the peers by vxlan vx-NAME
//     sandbox NETNS NETWORK ADDR/LEN    the ingress sandbox, on the ingress network's bridge
//     lb NETWORK NETNS ADDR/LEN         a load-balancer namespace on that network's bridge
//     vip NETWORK ADDRESS               a VIP held by this machine's load balancer on NETWORK
//     task NAME NETNS NET ADDR/LEN...   a local task: one interface per network, in name order
//
//   node topology.mjs service VIPMESH_DIR CATALOG SERVICE
//     MODE VIP ADDRESSES NAMES          vip|dnsrr, the VIP (- in dnsrr mode), the serving
//                                       tasks' addresses on the service's first overlay
//                                       network and their names (both sorted, comma-joined)
//
// VIPMESH_DIR is the vipmesh package (the checkout, or where npm installed it).
// Exit 2 with a message on stderr when the catalog is invalid or does not fit the lab.
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const VNI_BASE = 4096;
// br-NAME and vx-NAME must fit a 15-character interface name.
const MAX_NETWORK_NAME = 12;

function fail(message) {
  process.stderr.write(`topology: ${message}\n`);
  process.exit(2);
}

const byName = (names) => Object.keys(names).sort();

/** /run/netns/NAME → NAME: the lab makes named namespaces only. */
function namespaceName(path, what) {
  if (dirname(path) !== '/run/netns') fail(`${what}: ${path} is not a named namespace (/run/netns/NAME), which the lab would create`);
  return basename(path);
}

function prefixLength(catalog, network) {
  return catalog.networks[network].subnet.split('/')[1];
}

function plumbing(catalog, nodeName) {
  const node = catalog.nodes[nodeName];
  if (node === undefined) fail(`no node ${nodeName} in the catalog (nodes: ${byName(catalog.nodes).join(', ')})`);
  if (node.netns !== undefined) fail(`nodes.${nodeName}.netns: in the Vagrant lab each node is a machine, not a namespace`);
  const lines = [`node ${node.address}`];
  for (const peer of byName(catalog.nodes)) {
    if (peer !== nodeName) lines.push(`peer ${catalog.nodes[peer].address}`);
  }
  const networks = byName(catalog.networks);
  networks.forEach((name, index) => {
    if (name.length > MAX_NETWORK_NAME) fail(`networks.${name}: the lab names its bridge br-${name}, longer than 15 characters; use a name of at most ${MAX_NETWORK_NAME}`);
    lines.push(`network ${name} ${VNI_BASE + index}`);
  });
  const ingress = networks.find((name) => catalog.networks[name].ingress);
  if (node.ingressSandbox !== undefined) {
    if (ingress === undefined) fail(`nodes.${nodeName}.ingressSandbox: the catalog has no ingress network to put it on`);
    const sandbox = namespaceName(node.ingressSandbox.netns, `nodes.${nodeName}.ingressSandbox`);
    lines.push(`sandbox ${sandbox} ${ingress} ${node.ingressSandbox.address}/${prefixLength(catalog, ingress)}`);
  }
  const balanced = byName(node.loadBalancers ?? {});
  for (const network of balanced) {
    const lb = node.loadBalancers[network];
    lines.push(`lb ${network} ${namespaceName(lb.netns, `nodes.${nodeName}.loadBalancers.${network}`)} ${lb.address}/${prefixLength(catalog, network)}`);
  }
  for (const name of byName(catalog.services)) {
    const service = catalog.services[name];
    for (const network of balanced) {
      const vip = service.vips[network];
      if (vip !== undefined) lines.push(`vip ${network} ${vip}`);
    }
  }
  for (const name of byName(catalog.tasks)) {
    const task = catalog.tasks[name];
    if (task.node !== nodeName) continue;
    const links = byName(task.addresses).map((network) => `${network} ${task.addresses[network]}/${prefixLength(catalog, network)}`);
    lines.push(`task ${name} ${namespaceName(task.netns, `tasks.${name}`)} ${links.join(' ')}`);
  }
  return lines;
}

function service(catalog, name) {
  const found = catalog.services[name];
  if (found === undefined) fail(`no service ${name} in the catalog`);
  const network = found.networks.find((n) => !catalog.networks[n].ingress);
  if (network === undefined) fail(`services.${name}: on no overlay network`);
  const serving = Object.values(catalog.tasks)
    .filter((t) => t.service === name && t.state === 'running' && t.health !== 'unhealthy' && t.addresses[network] !== undefined);
  if (serving.length === 0) fail(`services.${name}: no serving task`);
  const addresses = serving.map((t) => t.addresses[network]).sort();
  const names = serving.map((t) => t.name).sort();
  return [[found.endpointMode, found.vips[network] ?? '-', addresses.join(','), names.join(',')].join(' ')];
}

const [command, vipmeshDir, catalogFile, name, ...extra] = process.argv.slice(2);
if (!['plumbing', 'service'].includes(command) || name === undefined || extra.length > 0) {
  fail('usage: topology.mjs plumbing|service VIPMESH_DIR CATALOG NODE|SERVICE');
}
const { loadCatalog, formatProblems } = await import(pathToFileURL(join(vipmeshDir, 'dist', 'src', 'index.js')).href);
const loaded = await loadCatalog(catalogFile);
if (!loaded.ok) fail(`${catalogFile} is not a valid catalog:\n${formatProblems(loaded.problems)}`);
const lines = command === 'plumbing' ? plumbing(loaded.catalog, name) : service(loaded.catalog, name);
process.stdout.write(`${lines.join('\n')}\n`);
