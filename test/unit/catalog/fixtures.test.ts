import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCatalog } from '../../../src/catalog/load.js';
import { formatProblems } from '../../../src/catalog/problems.js';
import { FIXTURES } from '../../helpers/paths.js';

const INVALID = join(FIXTURES, 'invalid');

// The full list per fixture: a changed message, or a problem gained or lost, fails the test.
const EXPECTED: Readonly<Record<string, readonly string[]>> = {
  'bad-address.yaml': [
    `networks.backnet.subnet: 10.0.2.0/33 is not a CIDR such as 10.0.1.0/24 or fd00:1::/64`,
    `networks.hostbits.subnet: 10.0.3.5/24 has host bits set; the network is 10.0.3.0/24`,
    `nodes.node-1.address: 192.0.2.300 is not a valid IPv4 or IPv6 address`,
    `nodes.node-2.address: node-2.example is not a valid IPv4 or IPv6 address`,
    `services.whoami.vips.appnet: 10.0.1.2/32 must be a single address, without a /prefix`,
    `tasks.whoami.1.698qak908bz8.addresses.appnet: 2001:db8::zz is not a valid IPv4 or IPv6 address`,
  ],
  'bad-names.yaml': [
    `networks.app_net: "app_net" is not a valid name: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen`,
    `nodes.-node-1: "-node-1" is not a valid name: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen`,
    `services.Web.aliases[0]: "www" is already the name of service www`,
    `services.Web.aliases[1]: "api.v1" is not a valid name: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen`,
    `services.tasks: a service can't be named "tasks": it would shadow the tasks.<service> lookups`,
    `tasks.web..1: "web..1" is not a valid task name: use dot-separated labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen`,
  ],
  'bad-scheduler.yaml': [
    `services.whoami.lb.scheduler: "roundrobin" is not one of: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos`,
  ],
  'dnsrr-ingress-port.yaml': [
    `services.whoami.ports[0].mode: a port published in ingress mode can't be used with dnsrr mode`,
  ],
  'duplicate-address.yaml': [
    `tasks.box-b.addresses.v6net: fd00:1::a is already used by tasks.box-a.addresses.v6net`,
    `tasks.whoami.1.698qak908bz8.addresses.appnet: 10.0.1.2 is already used by services.whoami.vips.appnet`,
  ],
  'duplicate-yaml-key.yaml': [
    `networks.appnet: duplicate key "appnet" (line 5, column 3)`,
  ],
  'host-mode-twice-on-node.yaml': [
    `tasks.whoami.2.7hq2hx0v1kpf.node: tasks whoami.1.698qak908bz8 and whoami.2.7hq2hx0v1kpf of service whoami both run on node node-1 and publish 8080/tcp in host mode`,
  ],
  'ipv6-vip.yaml': [
    `services.whoami.vips.v6net: IPv6 VIPs are not supported yet`,
  ],
  'many-problems.yaml': [
    `networks.v6net.ingress: must be true or false`,
    `nodes.node-1.netns: must be an absolute path such as /run/netns/name`,
    `services.broken: must be a map describing the service`,
    `services.whoami.healthcheck: has tcp and http; give only one`,
    `services.whoami.healthcheck.interval: must be a duration such as 500ms, 2s, 1.5s, 1m30s or a number of seconds`,
    `services.whoami.lb.scheduler: "fastest" is not one of: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos`,
    `services.whoami.ports[0].protocol: "icmp" is not one of: tcp, udp, sctp`,
    `services.whoami.ports[0].target: must be a whole number from 1 to 65535`,
    `tasks.standalone.addresses.appnet: 10.0.1.300 is not a valid IPv4 or IPv6 address`,
    `tasks.standalone.state: "Running" is not a lowercase word such as running, shutdown or failed`,
    `tasks.toolbox.node: unknown node "node-2"`,
    `tasks.toolbox.weight: must be a whole number from 0 to 65535`,
    `tasks.whoami.1.698qak908bz8: has netns and pid; give only one`,
    `tasks.whoami.1.698qak908bz8.addresses.appnet: 10.0.1.3 is already used by tasks.toolbox.addresses.appnet`,
    `tasks.whoami.1.698qak908bz8.health: "fine" is not one of: healthy, unhealthy, unknown`,
  ],
  'missing-ingress-address.yaml': [
    `tasks.whoami.1.698qak908bz8.addresses: has no address on the ingress network ingress, which service whoami's ingress-mode ports need`,
  ],
  'mixed-family.yaml': [
    `tasks.metrics.1.698qak908bz8.addresses.appnet: fd00:1::3 is an IPv6 address but appnet is an IPv4 network (10.0.1.0/24)`,
    `tasks.metrics.1.698qak908bz8.addresses.v6net: 10.0.1.3 is an IPv4 address but v6net is an IPv6 network (fd00:1::/64)`,
  ],
  'netns-sandbox-is-host.yaml': [
    `nodes.node-1.ingressSandbox.netns: the ingress sandbox and the node itself (nodes.node-1.netns) both use the namespace `
      + `/run/netns/node-1 on node node-1; each needs its own`,
  ],
  'netns-spelled-differently.yaml': [
    `tasks.web.2.netns: running task web.2 and running task web.1 (tasks.web.1.netns) both use the namespace /run/netns/web-1 `
      + `on node node-1, written /run/netns//web-1 and /run/netns/web-1; each needs its own`,
    `tasks.web.3.netns: running task web.3 and running task web.1 (tasks.web.1.netns) both use the namespace /run/netns/web-1 `
      + `on node node-1, written /var/run/netns/web-1 and /run/netns/web-1; each needs its own`,
    `tasks.web.4.netns: running task web.4 and running task web.1 (tasks.web.1.netns) both use the namespace /run/netns/web-1 `
      + `on node node-1, written /run/netns/web-4/../web-1 and /run/netns/web-1; each needs its own`,
    `tasks.web.5.netns: running task web.5 and running task web.1 (tasks.web.1.netns) both use the namespace /run/netns/web-1 `
      + `on node node-1, written /run/netns/web-1/ and /run/netns/web-1; each needs its own`,
  ],
  'netns-task-in-node-namespace.yaml': [
    `tasks.probe.netns: running task probe and the node itself (nodes.node-2.netns) both use the namespace /run/netns/node-2 `
      + `on node node-2; each needs its own`,
    `tasks.toolbox.netns: running task toolbox and the ingress sandbox (nodes.node-1.ingressSandbox.netns) both use the namespace `
      + `/run/netns/ingress_sbox on node node-1, written /var/run/netns/ingress_sbox and /run/netns/ingress_sbox; each needs its own`,
  ],
  'prototype-names.yaml': [
    `networks.__proto__: "__proto__" is not a valid name: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen`,
    `tasks.toString.node: unknown node "hasOwnProperty"`,
    `tasks.toString.service: unknown service "valueOf"`,
    `tasks.web.1.addresses: has no address on constructor, a network of service web`,
    `tasks.web.1.addresses.__proto__: __proto__ is not one of service web's networks (appnet, constructor)`,
  ],
  'published-port-twice.yaml': [
    `services.api.ports[1].published: 9000/tcp on node node-1 is also published by services.agent.ports[0] (host mode)`,
    `services.web.ports[0].published: 8080/tcp is already published in ingress mode by services.api.ports[0]`,
  ],
  'sandbox-address.yaml': [
    `nodes.node-1.ingressSandbox.address: 10.254.0.2 is not inside ingress's subnet 10.255.0.0/16`,
    `nodes.node-3.ingressSandbox.address: 10.255.0.3 is already used by nodes.node-2.ingressSandbox.address`,
    `nodes.node-5.ingressSandbox: is required because services.whoami.ports[0] publishes 8080/tcp in ingress mode (the routing mesh runs in every node's ingress sandbox)`,
    `tasks.whoami.1.698qak908bz8.addresses.ingress: 10.255.0.7 is already used by nodes.node-4.ingressSandbox.address`,
  ],
  'task-address-outside-subnet.yaml': [
    `tasks.toolbox.addresses.v6net: fd00:2::5 is not inside v6net's subnet fd00:1::/64`,
    `tasks.whoami.1.698qak908bz8.addresses.appnet: 10.0.9.3 is not inside appnet's subnet 10.0.1.0/24`,
    `tasks.whoami.2.7hq2hx0v1kpf.addresses.appnet: 10.0.1.0 is the network address of appnet's subnet 10.0.1.0/24`,
  ],
  'unknown-field.yaml': [
    `netwroks: unknown field "netwroks"`,
    `services.whoami.ports[0].proto: unknown field "proto"`,
    `services.whoami.replicas: unknown field "replicas"`,
    `tasks.whoami.1.698qak908bz8.status: unknown field "status"`,
  ],
  'unknown-reference.yaml': [
    `services.lookup.networks[1]: unknown network "frontnet"`,
    `services.whoami.vips.backnet: unknown network "backnet"`,
    `tasks.lookup.1.7hq2hx0v1kpf.addresses.sidenet: unknown network "sidenet"`,
    `tasks.lookup.1.7hq2hx0v1kpf.service: unknown service "lookupp"`,
    `tasks.whoami.1.698qak908bz8.node: unknown node "node-9"`,
  ],
  'vip-outside-subnet.yaml': [
    `services.whoami.vips.appnet: 10.0.2.9 is not inside appnet's subnet 10.0.1.0/24`,
    `services.whoami.vips.backnet: 10.0.2.255 is the broadcast address of backnet's subnet 10.0.2.0/24`,
  ],
};

test('every invalid fixture has its expected problems listed here', async () => {
  const files = (await readdir(INVALID)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  assert.deepEqual(files, Object.keys(EXPECTED).sort());
});

for (const [file, expected] of Object.entries(EXPECTED)) {
  test(`fixtures/invalid/${file} is rejected with exactly its problems`, async () => {
    const path = join(INVALID, file);
    assert.match(await readFile(path, 'utf8'), /^# \S/, 'a fixture starts with a comment saying what is wrong');
    const result = await loadCatalog(path);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(formatProblems(result.problems), expected.join('\n'));
  });
}

test('the valid fixtures are accepted', async () => {
  const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length > 0);
  for (const file of files) {
    const result = await loadCatalog(join(FIXTURES, file));
    assert.equal(result.ok ? '' : formatProblems(result.problems), '', file);
  }
});
