// Real etcd clusters for tests: N members of Debian's etcd on loopback ports,
// each with its own data directory, started here (there is no systemd) and
// stopped and removed when the test ends, pass or fail. With `tls`, clients
// speak TLS with client certificates from a throwaway CA made with openssl.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort } from '../../src/lab/etcd.js';
import type { Cleanup } from './agent.js';
import { requireTool } from './tools.js';

export interface EtcdTls {
  /** The CA that signed the members' and the client's certificates. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** A CA that signed nothing here: a client trusting it cannot verify the members. */
  readonly otherCa: string;
}

export interface EtcdCluster {
  /** host:port of each member's client URL. */
  readonly endpoints: readonly string[];
  /** etcd://… (etcds:// with tls) for all members, under PREFIX. */
  source(prefix: string): string;
  readonly tls?: EtcdTls;
  /** Stops member i (SIGTERM, then waits for it to exit; SIGKILL after 15 s). */
  stop(i: number): Promise<void>;
  /** Starts member i again on its data directory. */
  start(i: number): Promise<void>;
  /** etcdctl against every member (TLS flags added); stdout, or throws with stderr. */
  etcdctl(args: readonly string[]): Promise<string>;
}

export interface EtcdOptions {
  readonly members?: number;
  readonly tls?: boolean;
  /** More flags for every member (e.g. a short --grpc-keepalive-interval, so a stopped client is dropped). */
  readonly extraArgs?: readonly string[];
}

/** `t`: a test's context, or a benchmark's list of things to undo. */
export async function startEtcd(t: Cleanup, options: EtcdOptions = {}): Promise<EtcdCluster> {
  const etcd = await requireTool('etcd');
  const etcdctlPath = await requireTool('etcdctl');
  const count = options.members ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-etcd-'));
  const children: (ChildProcess | undefined)[] = new Array(count).fill(undefined);
  const exits: (Promise<void> | undefined)[] = new Array(count).fill(undefined);
  t.after(async () => {
    for (const child of children) child?.kill('SIGKILL');
    await Promise.all(exits);
    rmSync(dir, { recursive: true, force: true });
  });

  const tls = options.tls === true ? await makeTls(dir) : undefined;
  const scheme = tls === undefined ? 'http' : 'https';
  const clientPorts: number[] = [];
  const peerPorts: number[] = [];
  const taken = new Set<number>();
  for (let i = 0; i < count; i++) {
    clientPorts.push(await freePort(taken));
    peerPorts.push(await freePort(taken));
  }
  const token = `vipmesh-test-${randomBytes(4).toString('hex')}`;
  const name = (i: number): string => `m${i}`;
  const initialCluster = peerPorts.map((port, i) => `${name(i)}=http://127.0.0.1:${port}`).join(',');
  const endpoints = clientPorts.map((port) => `127.0.0.1:${port}`);
  const logs: string[] = new Array(count).fill('');

  const args = (i: number): string[] => [
    '--name', name(i), '--data-dir', join(dir, name(i)),
    '--listen-client-urls', `${scheme}://127.0.0.1:${clientPorts[i]}`,
    '--advertise-client-urls', `${scheme}://127.0.0.1:${clientPorts[i]}`,
    '--listen-peer-urls', `http://127.0.0.1:${peerPorts[i]}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPorts[i]}`,
    '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
    // A whole 10 000-service catalog is pushed in one transaction.
    '--max-txn-ops', '1000000', '--max-request-bytes', String(64 * 1024 * 1024),
    '--logger', 'zap', '--log-level', 'warn',
    ...(tls === undefined ? [] : ['--cert-file', join(dir, 'server.crt'), '--key-file', join(dir, 'server.key'), '--trusted-ca-file', tls.ca, '--client-cert-auth']),
    ...(options.extraArgs ?? []),
  ];

  const start = async (i: number): Promise<void> => {
    if (children[i] !== undefined) throw new Error(`etcd member ${name(i)} is already running`);
    const child = spawn(etcd, args(i), { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (chunk: Buffer) => (logs[i] = (logs[i] + chunk.toString()).slice(-4000)));
    children[i] = child;
    exits[i] = new Promise((resolve) => child.once('exit', () => resolve()));
    void exits[i]!.then(() => {
      if (children[i] === child) children[i] = undefined;
    });
  };
  const stop = async (i: number): Promise<void> => {
    const child = children[i];
    if (child === undefined) return;
    const exited = exits[i]!;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    children[i] = undefined;
  };

  const tlsFlags = tls === undefined ? [] : ['--cacert', tls.ca, '--cert', tls.cert, '--key', tls.key];
  const etcdctl = async (extra: readonly string[]): Promise<string> => {
    const result = await execa(etcdctlPath, ['--endpoints', endpoints.map((e) => `${scheme}://${e}`).join(','), ...tlsFlags, ...extra], {
      reject: false, env: { ETCDCTL_API: '3' },
    });
    if (result.exitCode !== 0) throw new Error(`etcdctl ${extra.join(' ')} exited ${result.exitCode}: ${result.stderr.trim()}`);
    return result.stdout;
  };

  for (let i = 0; i < count; i++) await start(i);
  // Ready when the cluster takes a write (it needs a leader; 2–4 s for three fresh members).
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await etcdctl(['--command-timeout=2s', 'put', `/vipmesh-test-ready/${token}`, 'yes']);
      await etcdctl(['--command-timeout=2s', 'del', `/vipmesh-test-ready/${token}`]);
      break;
    } catch (error) {
      const dead = children.findIndex((c) => c === undefined);
      if (dead !== -1) throw new Error(`etcd member ${name(dead)} exited while starting: ${logs[dead]!.trim()}`);
      if (Date.now() > deadline) throw new Error(`etcd (${count} members) took no write within 30 s: ${String(error)}\n${logs.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  return {
    endpoints,
    source: (prefix) => `${tls === undefined ? 'etcd' : 'etcds'}://${endpoints.join(',')}${prefix.startsWith('/') ? '' : '/'}${prefix}`,
    ...(tls === undefined ? {} : { tls }),
    stop, start, etcdctl,
  };
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, and another CA. */
async function makeTls(dir: string): Promise<EtcdTls & { serverCert: string; serverKey: string }> {
  const openssl = await requireTool('openssl');
  const at = (file: string): string => join(dir, file);
  const run = async (args: readonly string[]): Promise<void> => {
    const result = await execa(openssl, args, { reject: false });
    if (result.exitCode !== 0) throw new Error(`openssl ${args.join(' ')} exited ${result.exitCode}: ${result.stderr.trim()}`);
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    await run(['req', '-x509', ...key, '-keyout', at(`${ca}.key`), '-out', at(`${ca}.crt`), '-days', '2', '-subj', `/CN=vipmesh test ${ca}`]);
  }
  const sign = async (who: string, subject: string, extensions: string): Promise<void> => {
    await run(['req', ...key, '-keyout', at(`${who}.key`), '-out', at(`${who}.csr`), '-subj', subject]);
    writeFileSync(at(`${who}.ext`), extensions);
    await run(['x509', '-req', '-in', at(`${who}.csr`), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at(`${who}.crt`), '-days', '2', '-extfile', at(`${who}.ext`)]);
  };
  await sign('server', '/CN=etcd', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  await sign('client', '/CN=vipmesh', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: at('ca.crt'), cert: at('client.crt'), key: at('client.key'), otherCa: at('other-ca.crt'),
    serverCert: at('server.crt'), serverKey: at('server.key'),
  };
}
