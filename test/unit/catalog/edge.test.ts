import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { formatProblems } from '../../../src/catalog/problems.js';

/** The formatted problems of an invalid catalog, one line each. */
function problemsOf(text: string): string[] {
  const result = parseCatalog(text);
  if (result.ok) assert.fail('expected the catalog to be rejected');
  return formatProblems(result.problems).split('\n');
}

const NET = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
  node-1: { address: 192.0.2.11 }
`;

test('network and broadcast addresses of a v4 subnet up to /30 are refused', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  tiny: { subnet: 10.0.9.0/30 }
nodes:
  node-1: { address: 192.0.2.11 }
tasks:
  a: { node: node-1, netns: /run/netns/a, addresses: { appnet: 10.0.1.0, tiny: 10.0.9.3 } }
  b: { node: node-1, netns: /run/netns/b, addresses: { appnet: 10.0.1.255, tiny: 10.0.9.1 } }
`), [
    'tasks.a.addresses.appnet: 10.0.1.0 is the network address of appnet\'s subnet 10.0.1.0/24',
    'tasks.a.addresses.tiny: 10.0.9.3 is the broadcast address of tiny\'s subnet 10.0.9.0/30',
    'tasks.b.addresses.appnet: 10.0.1.255 is the broadcast address of appnet\'s subnet 10.0.1.0/24',
  ]);
});

test('aliases collide with service names and other aliases, case-insensitively', () => {
  assert.deepEqual(problemsOf(`${NET}
services:
  api: { vips: { appnet: 10.0.1.2 }, aliases: [API, web, Www] }
  web: { vips: { appnet: 10.0.1.3 }, aliases: [www, www] }
  Web: { vips: { appnet: 10.0.1.4 } }
`), [
    'services.api.aliases[0]: "API" is already the service\'s own name (names are case-insensitive)',
    'services.api.aliases[1]: "web" is already the name of service Web (names are case-insensitive)',
    'services.web: "web" is the same name as service Web (names are case-insensitive)',
    'services.web.aliases[0]: "www" is already an alias of service api (names are case-insensitive)',
    'services.web.aliases[1]: "www" is already an alias of service api (names are case-insensitive)',
  ]);
});

test('"tasks" is reserved for tasks.<service> lookups', () => {
  assert.deepEqual(problemsOf(`${NET}
services:
  Tasks: { vips: { appnet: 10.0.1.2 } }
  web: { vips: { appnet: 10.0.1.3 }, aliases: [tasks, www] }
tasks:
  tasks.web.1: { node: node-1, netns: /run/netns/a }
  web: { node: node-1, netns: /run/netns/b }
  WWW: { node: node-1, netns: /run/netns/c }
`), [
    'services.Tasks: a service can\'t be named "tasks": it would shadow the tasks.<service> lookups',
    'services.web.aliases[0]: an alias can\'t be "tasks": it would shadow the tasks.<service> lookups',
    'tasks.WWW: "WWW" is already an alias of service web; DNS could not tell them apart',
    'tasks.tasks.web.1: a task name can\'t start with "tasks.": it would shadow the tasks.<service> lookups',
    'tasks.web: "web" is already the name of service web; DNS could not tell them apart',
  ]);
});

test('task names: dot-separated labels, 253 characters at most', () => {
  const label = 'a'.repeat(63);
  const at253 = [label, label, label, 'b'.repeat(61)].join('.');
  assert.equal(at253.length, 253);
  let n = 0;
  const task = (name: string): string => `  ${name}: { node: node-1, netns: /run/netns/t${n++} }\n`;
  const ok = parseCatalog(`${NET}tasks:\n${task(at253)}`);
  assert.equal(ok.ok, true);
  assert.deepEqual(problemsOf(`${NET}tasks:\n${task(`${at253}c`)}${task(`${'x'.repeat(64)}.1`)}${task('web-.1')}`), [
    // A name longer than any valid one is quoted cut (problems.ts shown()), with its real size.
    `tasks.${at253}…(254 bytes): the task name is 254 characters long; at most 253 are allowed`,
    'tasks.web-.1: "web-.1" is not a valid task name: use dot-separated labels of 1 to 63 letters, digits and hyphens, '
      + 'not starting or ending with a hyphen',
    `tasks.${'x'.repeat(64)}.1: "${'x'.repeat(64)}.1" is not a valid task name: use dot-separated labels of 1 to 63 `
      + 'letters, digits and hyphens, not starting or ending with a hyphen',
  ].sort());
});

test('names collide case-insensitively within networks, nodes and tasks', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  AppNet: { subnet: 10.0.2.0/24 }
nodes:
  node-1: { address: 192.0.2.11 }
  Node-1: { address: 192.0.2.12 }
tasks:
  t.1: { node: node-1, netns: /run/netns/a }
  T.1: { node: node-1, netns: /run/netns/b }
`), [
    'networks.appnet: "appnet" is the same name as network AppNet (names are case-insensitive)',
    'nodes.node-1: "node-1" is the same name as node Node-1 (names are case-insensitive)',
    'tasks.t.1: "t.1" is the same name as task T.1 (names are case-insensitive)',
  ]);
});

test('YAML syntax errors are reported with their position, not thrown', () => {
  assert.deepEqual(problemsOf('version: 1\nnetworks: { appnet: [1, 2\n'), [
    'YAML syntax error: Flow map in block collection must be sufficiently indented and end with a } (line 3, column 1)',
    'YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ] (line 3, column 1)',
  ]);
  assert.match(problemsOf('{"version": 1,, }').join('\n'), /^YAML syntax error: .* \(line 1, column \d+\)$/);
});

test('duplicate keys are found by path, in YAML and in JSON', () => {
  assert.deepEqual(problemsOf('version: 1\nservices:\n  web:\n    vips: {}\n    ports: [{ target: 1, target: 2 }]\n'),
    ['services.web.ports[0].target: duplicate key "target" (line 5, column 26)']);
  assert.deepEqual(problemsOf('{\n  "version": 1,\n  "version": 1\n}'), ['version: duplicate key "version" (line 3, column 3)']);
});

test('an empty file, a top level that is not a map, and another version are one clear problem each', () => {
  assert.deepEqual(problemsOf(''), ['the catalog is empty: it needs at least "version: 1"']);
  assert.deepEqual(problemsOf('# nothing yet\n'), ['the catalog is empty: it needs at least "version: 1"']);
  const notMap = 'the catalog must be a map at the top level (version, networks, nodes, services, tasks)';
  assert.deepEqual(problemsOf('- version: 1\n'), [notMap]);
  assert.deepEqual(problemsOf('"version 1"'), [notMap]);
  assert.deepEqual(problemsOf('version: 2\nnetworks: 7\n'), ['version: this vipmesh reads catalog version 1 only, not version 2']);
  assert.deepEqual(problemsOf('networks: {}\n'), ['version: is required']);
  assert.deepEqual(problemsOf('version: "1"\n'), ['version: must be 1']);
});

test('a section that is not a map is reported, and references into it are not', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks: [appnet]
nodes: node-1
services:
  web: { vips: { appnet: 10.0.1.2 } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/a, addresses: { appnet: 10.0.1.3 } }
`), ['networks: must be a map of network names to networks', 'nodes: must be a map of node names to nodes']);
});

test('at most one ingress network, and it is IPv4', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  ingress: { subnet: 10.255.0.0/16, ingress: true }
  mesh6: { subnet: "fd00:ff::/64", ingress: true }
`), [
    'networks.mesh6.ingress: ingress is already the ingress network; there can be only one',
    'networks.mesh6.ingress: the ingress network must be IPv4 for now',
  ]);
});

test('overlapping subnets are refused', () => {
  assert.deepEqual(problemsOf('version: 1\nnetworks:\n  a: { subnet: 10.0.0.0/16 }\n  b: { subnet: 10.0.1.0/24 }\n'),
    ['networks.b.subnet: 10.0.1.0/24 overlaps a\'s subnet 10.0.0.0/16']);
});

test('vip mode needs VIPs, one per listed network; dnsrr mode needs networks and no VIPs', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  backnet: { subnet: 10.0.2.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
services:
  a: {}
  b: { vips: {} }
  c: { vips: { appnet: 10.0.1.2 }, networks: [appnet, backnet, appnet] }
  d: { endpointMode: dnsrr, vips: { appnet: 10.0.1.3 } }
  e: { endpointMode: dnsrr, networks: [] }
  f: { endpointMode: dnsrr, networks: [appnet, appnet, ingress] }
`), [
    'services.a.vips: is required in vip mode: one VIP per network the service is on',
    'services.b.vips: needs at least one VIP in vip mode',
    'services.c.networks[1]: backnet has no VIP in vips; in vip mode every network of the service needs one',
    'services.c.networks[2]: appnet is listed twice',
    'services.d.networks: is required in dnsrr mode: the networks the service is on',
    'services.d.vips: a dnsrr service has no VIPs: remove vips, or use endpointMode: vip',
    'services.e.networks: needs at least one network in dnsrr mode',
    'services.f.networks[1]: appnet is listed twice',
    'services.f.networks[2]: a dnsrr service can\'t be on the ingress network',
  ]);
});

test('ports: network only in host mode, one of the service\'s non-ingress networks; a mesh needs an ingress network', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  backnet: { subnet: 10.0.2.0/24 }
services:
  web:
    vips: { appnet: 10.0.1.2 }
    ports:
      - { target: 80, published: 80, network: appnet }
      - { target: 81, published: 81, mode: host, network: backnet }
      - { target: 82, published: 82, mode: host, network: nowhere }
`), [
    'services.web.ports[0].mode: an ingress-mode port needs an ingress network (a network with ingress: true)',
    'services.web.ports[0].network: only a host-mode port can name a network',
    'services.web.ports[1].network: backnet is not one of the service\'s networks (appnet)',
    'services.web.ports[2].network: unknown network "nowhere"',
  ]);
  assert.deepEqual(problemsOf(`
version: 1
networks:
  ingress: { subnet: 10.255.0.0/16, ingress: true }
services:
  web:
    vips: { ingress: 10.255.0.5 }
    ports:
      - { target: 80, published: 80, mode: host }
      - { target: 81, published: 81, mode: host, network: ingress }
`), [
    'services.web.ports[0].mode: a host-mode port needs a network of the service besides ingress to send traffic to',
    'services.web.ports[1].network: host-mode traffic can\'t go to the ingress network; name another of the service\'s networks',
  ]);
});

test('a task is on its service\'s networks (plus ingress) and on all of them', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  backnet: { subnet: 10.0.2.0/24 }
  sidenet: { subnet: 10.0.3.0/24 }
nodes:
  node-1: { address: 192.0.2.11 }
services:
  web: { vips: { appnet: 10.0.1.2, backnet: 10.0.2.2 } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/a, addresses: { appnet: 10.0.1.3, sidenet: 10.0.3.3 } }
`), [
    'tasks.web.1.addresses: has no address on backnet, a network of service web',
    'tasks.web.1.addresses.sidenet: sidenet is not one of service web\'s networks (appnet, backnet)',
  ]);
});

test('ingress-mode ports need a sandbox on every node and an ingress network for it', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
  node-1: { address: 192.0.2.11 }
  node-2: { address: 192.0.2.12, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.2 } }
services:
  web: { vips: { appnet: 10.0.1.2 }, ports: [{ target: 80, published: 80 }] }
`), [
    'nodes.node-1.ingressSandbox: is required because services.web.ports[0] publishes 80/tcp in ingress mode '
      + '(the routing mesh runs in every node\'s ingress sandbox)',
    'nodes.node-2.ingressSandbox.address: there is no ingress network (a network with ingress: true) for the sandbox to be on',
    'services.web.ports[0].mode: an ingress-mode port needs an ingress network (a network with ingress: true)',
  ]);
});

const MESH = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1: { address: 192.0.2.11, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.2 } }
  node-2: { address: 192.0.2.12, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.3 } }
  node-3: { address: 192.0.2.13, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.4 } }
`;

test('a clash between two mesh ports is reported once for the cluster; host clashes name their nodes once', () => {
  assert.deepEqual(problemsOf(`${MESH}
services:
  a: { vips: { appnet: 10.0.1.2 }, ports: [{ target: 80, published: 80 }, { target: 81, published: 80 }] }
  b: { endpointMode: dnsrr, networks: [appnet], ports: [{ target: 9, published: 9000, protocol: udp, mode: host }] }
  c: { endpointMode: dnsrr, networks: [appnet], ports: [{ target: 9, published: 9000, protocol: udp, mode: host }] }
  d: { endpointMode: dnsrr, networks: [appnet], ports: [{ target: 9, published: 9000, mode: host }] }
  e: { vips: { appnet: 10.0.1.5 }, ports: [{ target: 9, published: 9000 }] }
tasks:
  b.1: { service: b, node: node-1, netns: /run/netns/b1, addresses: { appnet: 10.0.1.11 } }
  b.2: { service: b, node: node-2, netns: /run/netns/b2, addresses: { appnet: 10.0.1.12 } }
  c.1: { service: c, node: node-1, netns: /run/netns/c1, addresses: { appnet: 10.0.1.21 } }
  c.2: { service: c, node: node-2, netns: /run/netns/c2, addresses: { appnet: 10.0.1.22 } }
  c.3: { service: c, node: node-3, netns: /run/netns/c3, addresses: { appnet: 10.0.1.23 }, state: complete }
  d.1: { service: d, node: node-1, netns: /run/netns/d1, addresses: { appnet: 10.0.1.31 } }
  e.1: { service: e, node: node-3, netns: /run/netns/e1, addresses: { appnet: 10.0.1.41, ingress: 10.255.0.41 } }
`), [
    'services.a.ports[1].published: 80/tcp is already published in ingress mode by services.a.ports[0]',
    'services.c.ports[0].published: 9000/udp on nodes node-1, node-2 is also published by services.b.ports[0] (host mode)',
    'services.e.ports[0].published: 9000/tcp on node node-1 is also published by services.d.ports[0] (host mode)',
  ]);
});

test('a structural problem in one field does not hide cross-entry problems of the same entry', () => {
  assert.deepEqual(problemsOf(`${NET}
tasks:
  a: { node: node-1, netns: /run/netns/a, addresses: { appnet: 10.0.1.3 } }
  b: { node: node-1, netns: relative, pid: 0, addresses: { appnet: 10.0.1.3 }, weight: -1, colour: red }
  c: { node: node-9, netns: /run/netns/c, pid: 12, addresses: { appnet: 10.0.9.3 } }
`), [
    'tasks.b: has netns and pid; give only one',
    'tasks.b.addresses.appnet: 10.0.1.3 is already used by tasks.a.addresses.appnet',
    'tasks.b.colour: unknown field "colour"',
    'tasks.b.netns: must be an absolute path such as /run/netns/name',
    'tasks.b.pid: must be a whole number of at least 1',
    'tasks.b.weight: must be a whole number from 0 to 65535',
    'tasks.c: has netns and pid; give only one',
    'tasks.c.addresses.appnet: 10.0.9.3 is not inside appnet\'s subnet 10.0.1.0/24',
    'tasks.c.node: unknown node "node-9"',
  ]);
});

test('healthchecks need exactly one well-formed probe', () => {
  assert.deepEqual(problemsOf(`${NET}
services:
  a: { vips: { appnet: 10.0.1.2 }, healthcheck: { interval: 2s } }
  b: { vips: { appnet: 10.0.1.3 }, healthcheck: { exec: [] } }
  c: { vips: { appnet: 10.0.1.4 }, healthcheck: { http: { port: 80, path: healthz } } }
  d: { vips: { appnet: 10.0.1.5 }, healthcheck: { exec: [curl, ""], retries: 0, timeout: 0 } }
`), [
    'services.a.healthcheck: needs a probe: one of tcp, http or exec',
    'services.b.healthcheck.exec: must list at least the command to run',
    'services.c.healthcheck.http.path: must be a URL path starting with /',
    'services.d.healthcheck.exec[1]: must be a non-empty string',
    'services.d.healthcheck.retries: must be a whole number of at least 1',
    'services.d.healthcheck.timeout: must be longer than zero',
  ]);
});

test('fields are type-checked with plain messages', () => {
  assert.deepEqual(problemsOf(`${NET}
services:
  web:
    endpointMode: round-robin
    vips: [10.0.1.2]
    aliases: web
    ports: [{ target: "80", published: 70000 }, 8080]
tasks:
  web.1: { node: 7, netns: /run/netns/a, addresses: { appnet: 167837955 }, state: running, health: ok }
`), [
    'services.web.aliases: must be a list of names',
    'services.web.endpointMode: "round-robin" is not one of: vip, dnsrr',
    'services.web.ports[0].published: must be a whole number from 1 to 65535',
    'services.web.ports[0].target: must be a whole number from 1 to 65535',
    'services.web.ports[1]: must be a map with target and published',
    'services.web.vips: must be a map of network name to VIP',
    'tasks.web.1.addresses.appnet: must be an IP address such as 10.0.1.2',
    'tasks.web.1.health: "ok" is not one of: healthy, unhealthy, unknown',
    'tasks.web.1.node: must be a node name',
  ]);
});

test('YAML warnings such as an unknown tag are reported', () => {
  assert.deepEqual(problemsOf('version: 1\nnetworks:\n  appnet: { subnet: !cidr 10.0.1.0/24 }\n'),
    ['YAML warning: Unresolved tag: !cidr (line 3, column 21)']);
});

test('a list or map used as a key is refused before anything else', () => {
  assert.deepEqual(problemsOf('version: 1\nnetworks:\n  ? [a, b]\n  : { subnet: 10.0.1.0/24 }\n'),
    ['networks: a key must be a plain name, not a list or map (line 3, column 5)']);
});

test('lb: whole seconds, persistence at most 31 days', () => {
  assert.deepEqual(problemsOf(`${NET}
services:
  web: { vips: { appnet: 10.0.1.2 }, lb: { persistence: 2678401, drainTimeout: -1, algorithm: rr } }
  api: { vips: { appnet: 10.0.1.3 }, lb: { persistence: 1.5, drainTimeout: 30s } }
`), [
    'services.api.lb.drainTimeout: must be a whole number of at least 0',
    'services.api.lb.persistence: must be a whole number from 0 to 2678400',
    'services.web.lb.algorithm: unknown field "algorithm"',
    'services.web.lb.drainTimeout: must be a whole number of at least 0',
    'services.web.lb.persistence: must be a whole number from 0 to 2678400',
  ]);
});

test('two running tasks on one node may not share a namespace; stopped ones and other nodes may', () => {
  assert.deepEqual(problemsOf(`${NET}  node-2: { address: 192.0.2.12 }
tasks:
  t1: { node: node-1, netns: /run/netns/x, addresses: { appnet: 10.0.1.2 } }
  t2: { node: node-1, netns: /run/netns/x, addresses: { appnet: 10.0.1.3 } }
  t3: { node: node-1, netns: /run/netns/x, addresses: { appnet: 10.0.1.4 }, state: shutdown }
  t4: { node: node-2, netns: /run/netns/x, addresses: { appnet: 10.0.1.5 } }
`), ['tasks.t2.netns: running task t2 and running task t1 (tasks.t1.netns) both use the namespace /run/netns/x on node node-1; each needs its own']);
});
