import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { formatProblems } from '../../../src/catalog/problems.js';

function problemsOf(text: string): string[] {
  const result = parseCatalog(text);
  if (result.ok) assert.fail('expected the catalog to be rejected');
  return formatProblems(result.problems).split('\n');
}

const NETWORKS = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
`;

const EACH = 'each needs its own';

test('the ingress sandbox may not be the namespace that plays its node\'s host', () => {
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1: { address: 192.0.2.11, netns: /run/netns/n1, ingressSandbox: { netns: /run/netns/n1, address: 10.255.0.2 } }
  node-2: { address: 192.0.2.12, netns: /var/run/netns/n2, ingressSandbox: { netns: /run/netns/x/../n2/, address: 10.255.0.3 } }
  node-3: { address: 192.0.2.13, netns: /run/netns/n1, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.4 } }
`), [
    'nodes.node-1.ingressSandbox.netns: the ingress sandbox and the node itself (nodes.node-1.netns) both use the namespace '
      + `/run/netns/n1 on node node-1; ${EACH}`,
    'nodes.node-2.ingressSandbox.netns: the ingress sandbox and the node itself (nodes.node-2.netns) both use the namespace '
      + `/run/netns/n2 on node node-2, written /run/netns/x/../n2/ and /var/run/netns/n2; ${EACH}`,
  ]);
});

test('a running task may not be in its node\'s host or sandbox namespace; a stopped one, or one on another node, may', () => {
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1: { address: 192.0.2.11, netns: /run/netns/n1, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.2 } }
  node-2: { address: 192.0.2.12 }
tasks:
  in-host: { node: node-1, netns: /run/netns/n1/, addresses: { appnet: 10.0.1.3 } }
  in-sbox: { node: node-1, netns: /run/netns/sbox, addresses: { appnet: 10.0.1.4 } }
  stopped: { node: node-1, netns: /run/netns/sbox, addresses: { appnet: 10.0.1.5 }, state: shutdown }
  elsewhere: { node: node-2, netns: /run/netns/sbox, addresses: { appnet: 10.0.1.6 } }
`), [
    'tasks.in-host.netns: running task in-host and the node itself (nodes.node-1.netns) both use the namespace /run/netns/n1 '
      + `on node node-1, written /run/netns/n1/ and /run/netns/n1; ${EACH}`,
    'tasks.in-sbox.netns: running task in-sbox and the ingress sandbox (nodes.node-1.ingressSandbox.netns) both use the namespace '
      + `/run/netns/sbox on node node-1; ${EACH}`,
  ]);
});

test('two running tasks may not share a namespace however it is spelled; the first by name keeps it', () => {
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1: { address: 192.0.2.11 }
tasks:
  b: { node: node-1, netns: /var/run/netns/x, addresses: { appnet: 10.0.1.3 } }
  a: { node: node-1, netns: /run/netns//x, addresses: { appnet: 10.0.1.4 } }
  c: { node: node-1, pid: 7, addresses: { appnet: 10.0.1.5 } }
  d: { node: node-1, netns: /proc/7/ns/net/, addresses: { appnet: 10.0.1.6 } }
  e: { node: node-1, netns: /run/netns/x, addresses: { appnet: 10.0.1.7 }, weight: -1 }
`), [
    `tasks.b.netns: running task b and running task a (tasks.a.netns) both use the namespace /run/netns/x on node node-1, `
      + `written /var/run/netns/x and /run/netns//x; ${EACH}`,
    // c has no netns of its own to quote: its pid stands for /proc/7/ns/net.
    `tasks.d.netns: running task d and running task c (tasks.c.netns) both use the namespace /proc/7/ns/net on node node-1, `
      + `written /proc/7/ns/net/ and /proc/7/ns/net; ${EACH}`,
    // e is read by zod (a bad weight) and kept for the checks: its namespace is judged all the same.
    `tasks.e.netns: running task e and running task a (tasks.a.netns) both use the namespace /run/netns/x on node node-1, `
      + `written /run/netns/x and /run/netns//x; ${EACH}`,
    'tasks.e.weight: must be a whole number from 0 to 65535',
  ]);
});

test('a namespace that is a stand-in for a bad one claims nothing', () => {
  // Both netns are refused; salvage.ts stands "/" in for each, which must not clash.
  assert.deepEqual(problemsOf(`${NETWORKS}nodes:
  node-1: { address: 192.0.2.11 }
tasks:
  a: { node: node-1, netns: relative/a, addresses: { appnet: 10.0.1.3 } }
  b: { node: node-1, pid: 0, addresses: { appnet: 10.0.1.4 } }
  c: { node: node-1, netns: /, addresses: { appnet: 10.0.1.5 } }
`), [
    'tasks.a.netns: must be an absolute path such as /run/netns/name',
    'tasks.b.pid: must be a whole number of at least 1',
  ]);
});
