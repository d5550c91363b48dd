// Health probes run inside a task's network namespace (SPEC §5 "Health probes").
// A socket belongs for life to the namespace it was created in and Node cannot
// enter one, so something must live in the task's namespace. At 200 tasks probed
// every 2 s a fork per probe would cost the agent more than everything else it
// does; instead each namespace gets one long-lived `bash`, entered once with
// nsenter and fed probe commands on stdin. bash connects with its `/dev/tcp`
// redirection and speaks HTTP with `printf` and `read`, all builtins: a probe
// costs the shell a few dozen syscalls and the agent one pipe write and one read.
// Results come back framed by a per-session nonce, as session.ts frames its
// output, so nothing a server sends can pass for a result.
//
// bash's connect has no timeout of its own (a blackholed address holds it for
// minutes) and a timed read costs too much, so the agent enforces the probe's
// timeout: the probe fails at once, and a shell that has not answered a little
// later is killed and restarted on the next probe. A task that keeps timing
// out thus costs a fork per probe; a healthy one, none. exec probes fork by
// nature and go through the Runner.
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { execa } from 'execa';
import type { HealthProbe } from '../catalog/types.js';
import { namespaceExists } from './env.js';
import type { Runner, RunnerStats } from './exec.js';

export type ProbeOutcome =
  | { readonly result: 'pass' }
  | { readonly result: 'fail'; readonly reason: string }
  /** The namespace is no longer there: not a verdict on the task's server. */
  | { readonly result: 'namespace-gone' };

export interface ProbeRequest {
  /** The task's namespace path (/run/netns/NAME or /proc/PID/ns/net). */
  readonly netns: string;
  /** Where tcp and http probes connect: the task's address on its first non-ingress network. */
  readonly address: string;
  readonly probe: HealthProbe;
  readonly timeoutMs: number;
}

export interface Prober {
  /**
   * Never rejects. Resolves within the request's timeout, plus the start of a
   * new shell when one is needed (at most 10 s) and, for an exec probe whose
   * program ignores SIGTERM, the runner's wait before SIGKILL.
   */
  probe(request: ProbeRequest): Promise<ProbeOutcome>;
  /** Ends the shells of every namespace not named, so a task that left frees its namespace. */
  retain(netns: ReadonlySet<string>): Promise<void>;
  /** Ends every shell; probes in flight fail. Nothing keeps running after it resolves. */
  close(): Promise<void>;
}

export type SocketProbe =
  | { readonly kind: 'tcp'; readonly address: string; readonly port: number }
  | { readonly kind: 'http'; readonly address: string; readonly port: number; readonly path: string };

/** One namespace's shell. Probes run one at a time, in call order. */
export interface ProbeSession {
  probe(target: SocketProbe, timeoutMs: number): Promise<ProbeOutcome>;
  /** Kills the shell; queued and running probes fail. */
  close(): Promise<void>;
}

export interface ProbeSessionOptions {
  /** Counts each shell started, as the runners count their forks. */
  readonly stats?: RunnerStats;
  /**
   * How long past a probe's timeout a silent shell may take to answer before it
   * is killed (a reply already on its way is not worth a fork).
   */
  readonly graceMs?: number;
  /** How long a new shell may take to start. */
  readonly startTimeoutMs?: number;
}

const PASS: ProbeOutcome = { result: 'pass' };
const GONE: ProbeOutcome = { result: 'namespace-gone' };
const fail = (reason: string): ProbeOutcome => ({ result: 'fail', reason });

const DEFAULT_GRACE_MS = 250;
const DEFAULT_START_TIMEOUT_MS = 10_000;
const MARK = '@@vipmesh-probe-';
/** In the shell's command line, so `ps` says what it is. */
export const PROBE_SHELL_TAG = 'vipmesh-probe';

// The shell's whole program. `_p SEQ t|h ADDRESS PORT [TARGET HOST]` probes
// once and prints one frame line. It is written for few syscalls: `read -u`
// rather than a `<&3` redirection (each redirection saves and restores
// descriptors) and one untimed read of `HTTP/1.x NNN` (a timed read polls and
// resets a dozen signal handlers around every byte). The shell bounds nothing:
// the agent's timer ends a probe, and the shell only if it stays silent. A
// broken pipe must not end it (a server that closes before reading the
// request). The reply is not read to its end: closing with bytes unread resets
// the connection, as HAProxy's checks do, which costs the server nothing.
function program(nonce: string): string {
  return `exec 2>&1
trap '' PIPE
_f() { printf '${MARK}${nonce} %s %s\\n' "$1" "$2"; }
_p() {
  local line=
  if ! exec 3<>"/dev/tcp/$3/$4"; then _f "$1" 'fail connect'; return; fi
  if [[ $2 == t ]]; then exec 3<&-; _f "$1" pass; return; fi
  printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\nUser-Agent: vipmesh-probe\\r\\n\\r\\n' "$5" "$6" >&3
  read -r -u 3 -N 12 line
  exec 3<&-
  case $line in
    HTTP/[0-9].[0-9]\\ [23][0-9][0-9]) _f "$1" "pass \${line:9}" ;;
    HTTP/[0-9].[0-9]\\ [0-9][0-9][0-9]) _f "$1" "fail status \${line:9}" ;;
    '') _f "$1" 'fail empty' ;;
    *) _f "$1" "fail reply \${line%%[$'\\r\\n']*}" ;;
  esac
}
_f 0 ready
`;
}

/** A single-quoted shell word: every byte but NUL survives. */
function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The path as a request target: bytes a request line cannot carry raw are percent-encoded. */
export function requestTarget(path: string): string {
  return path.replace(/[^\x21-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

function hostHeader(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Server-sent text, made safe and short for a log line. */
function shown(text: string): string {
  return JSON.stringify(text.replace(/\r$/, '').slice(0, 64));
}

interface Frame {
  readonly status: string;
  readonly detail: string;
  /** What the shell printed since the previous frame (bash's error messages). */
  readonly diagnostics: string;
}

type Reply = { readonly kind: 'frame'; readonly frame: Frame } | { readonly kind: 'ended'; readonly why: string };

/** Where a namespace lives: stat(2) of the path, or of /proc/PID/ns/net for a shell. */
interface NamespaceId {
  readonly dev: number;
  readonly ino: number;
}

// Synchronous on purpose: it runs before every probe, and on nsfs and procfs a
// stat(2) never blocks, where the promise API's round trip through the thread
// pool cost the agent more than the rest of a probe.
function namespaceId(path: string): NamespaceId | undefined {
  try {
    const s = statSync(path, { throwIfNoEntry: false });
    return s === undefined ? undefined : { dev: s.dev, ino: s.ino };
  } catch {
    return undefined;
  }
}

interface Shell {
  readonly pid: number;
  /** The namespace the shell entered. */
  readonly ns: NamespaceId;
  send(seq: number, line: string): Promise<Reply>;
  /** Set once the shell has ended. */
  ended(): string | undefined;
  kill(): Promise<void>;
}

type Started = { readonly ok: true; readonly shell: Shell } | { readonly ok: false; readonly why: string };

async function startShell(netns: string, stats: RunnerStats | undefined, startTimeoutMs: number): Promise<Started> {
  const nonce = randomBytes(12).toString('hex');
  const marker = `${MARK}${nonce} `;
  if (stats) stats.spawns++;
  // A bare environment: BASH_ENV or an exported function of the agent's must not
  // run in a task's namespace, and LC_ALL=C keeps the connect errors we quote in English.
  const child = execa('nsenter', [`--net=${netns}`, '--', 'bash', '--noprofile', '--norc', '-s', PROBE_SHELL_TAG, netns], {
    stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false, reject: false,
    extendEnv: false, env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
  });
  let out = '';
  let errText = '';
  let endedWhy: string | undefined;
  const waiting = new Map<number, (reply: Reply) => void>();
  child.stdout.setEncoding('latin1');
  child.stderr.setEncoding('latin1');
  child.stdin.on('error', () => {}); // a dead shell is reported through its exit

  const parse = () => {
    for (;;) {
      const at = out.indexOf(marker);
      if (at < 0) return;
      const eol = out.indexOf('\n', at + marker.length);
      if (eol < 0) return;
      const diagnostics = out.slice(0, at);
      const [seqText = '', status = '', ...rest] = out.slice(at + marker.length, eol).split(' ');
      out = out.slice(eol + 1);
      const deliver = waiting.get(Number(seqText));
      waiting.delete(Number(seqText));
      deliver?.({ kind: 'frame', frame: { status, detail: rest.join(' '), diagnostics } });
    }
  };
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    parse();
  });
  child.stderr.on('data', (chunk: string) => {
    errText += chunk;
  });
  const exited = child.then((result) => {
    const said = errText.trim() || out.trim();
    endedWhy = `the probe shell ${result.signal ? `was killed (${result.signal})` : `exited ${result.exitCode ?? ''}`}${said ? `: ${said.slice(0, 200)}` : ''}`;
    for (const deliver of waiting.values()) deliver({ kind: 'ended', why: endedWhy });
    waiting.clear();
  });

  const send = (seq: number, line: string): Promise<Reply> => {
    if (endedWhy !== undefined) return Promise.resolve({ kind: 'ended', why: endedWhy });
    return new Promise<Reply>((resolve) => {
      waiting.set(seq, resolve);
      child.stdin.write(line);
    });
  };
  const kill = async () => {
    child.kill('SIGKILL');
    await exited;
  };

  let timer: NodeJS.Timeout | undefined;
  const ready = await Promise.race([
    send(0, program(nonce)),
    new Promise<Reply>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'ended', why: `the probe shell did not start within ${startTimeoutMs} ms` }), startTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  // Once bash runs our program, nsenter has entered the namespace: this is the one the shell holds.
  const ns = ready.kind === 'frame' && child.pid !== undefined ? namespaceId(`/proc/${child.pid}/ns/net`) : undefined;
  if (ready.kind === 'ended' || ns === undefined || child.pid === undefined) {
    await kill();
    return { ok: false, why: ready.kind === 'ended' ? ready.why : (endedWhy ?? 'the probe shell ended as it started') };
  }
  return { ok: true, shell: { pid: child.pid, ns, send, ended: () => endedWhy, kill } };
}

const noAnswer = (target: SocketProbe, timeoutMs: number): ProbeOutcome =>
  fail(`no answer from ${hostHeader(target.address, target.port)} within ${timeoutMs} ms`);

function outcomeOf(frame: Frame, target: SocketProbe): ProbeOutcome {
  const where = `${hostHeader(target.address, target.port)}`;
  if (frame.status === 'pass') return PASS;
  const [what = '', ...rest] = frame.detail.split(' ');
  const detail = rest.join(' ');
  switch (what) {
    case 'connect': {
      const why = /connect: ([^\n]*)/.exec(frame.diagnostics)?.[1]?.trim();
      return fail(`cannot connect to ${where}${why ? `: ${why}` : ''}`);
    }
    case 'status':
      return fail(`GET http://${where}${target.kind === 'http' ? requestTarget(target.path) : ''} answered ${detail}`);
    case 'empty':
      return fail(`${where} closed the connection without an HTTP status line`);
    case 'reply':
      return fail(`${where} did not answer HTTP: ${shown(detail)}`);
    default:
      return fail(`the probe shell said ${shown(`${frame.status} ${frame.detail}`)}`);
  }
}

export function openProbeSession(netns: string, options: ProbeSessionOptions = {}): ProbeSession {
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  let shell: Shell | undefined;
  let closed = false;
  let seq = 0;
  // Resolves once the shell has answered the last probe or been killed.
  let settled: Promise<void> = Promise.resolve();
  let tail: Promise<unknown> = Promise.resolve();

  const drop = async () => {
    const old = shell;
    shell = undefined;
    await old?.kill();
  };

  const once = async (target: SocketProbe, timeoutMs: number): Promise<ProbeOutcome> => {
    // What reaches the shell's command line is checked first: an address is an address.
    if (isIP(target.address) === 0) return fail(`${JSON.stringify(target.address)} is not an IP address`);
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) return fail(`${target.port} is not a port`);
    await settled;
    if (closed) return fail('the probe session is closed');
    // One stat(2) per probe tells both that the namespace is there and that it
    // is still the one our shell holds: the path may now name another (a task
    // restarted under the same name) or a stale file, and our shell alone would
    // keep a deleted namespace alive.
    const here = namespaceId(netns);
    if (here === undefined) {
      await drop();
      return GONE;
    }
    if (shell !== undefined && (shell.ended() !== undefined || here.ino !== shell.ns.ino || here.dev !== shell.ns.dev)) await drop();
    if (shell === undefined) {
      const started = await startShell(netns, options.stats, startTimeoutMs);
      if (!started.ok) return (await namespaceExists(netns).catch(() => true)) ? fail(started.why) : GONE;
      if (closed) {
        await started.shell.kill();
        return fail('the probe session is closed');
      }
      shell = started.shell;
    }
    const current = shell;
    const id = ++seq;
    const where = `${shellWord(target.address)} ${target.port}`;
    const line = target.kind === 'tcp'
      ? `_p ${id} t ${where}\n`
      : `_p ${id} h ${where} ${shellWord(requestTarget(target.path))} ${shellWord(hostHeader(target.address, target.port))}\n`;
    const reply = current.send(id, line);
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      reply,
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (result === 'timeout') {
      let grace: NodeJS.Timeout | undefined;
      settled = Promise.race([
        reply.then(() => 'answered' as const),
        new Promise<'silent'>((resolve) => (grace = setTimeout(() => resolve('silent'), graceMs))),
      ]).then(async (late) => {
        clearTimeout(grace);
        if (late === 'silent' && shell === current) await drop();
      });
      return noAnswer(target, timeoutMs);
    }
    if (result.kind === 'ended') {
      if (shell === current) shell = undefined;
      return (await namespaceExists(netns).catch(() => true)) ? fail(result.why) : GONE;
    }
    return outcomeOf(result.frame, target);
  };

  return {
    probe(target, timeoutMs) {
      const result = tail.then(() => once(target, timeoutMs));
      tail = result;
      return result;
    },
    async close() {
      closed = true;
      await drop();
      await tail;
      await drop();
    },
  };
}

async function execProbe(runner: Runner, request: ProbeRequest, argv: readonly string[]): Promise<ProbeOutcome> {
  const exists = () => namespaceExists(request.netns).catch(() => true);
  if (!(await exists())) return GONE;
  const [file = '', ...args] = argv;
  const result = await runner.run({ file, args, netns: request.netns, timeoutMs: request.timeoutMs });
  if (result.failure === undefined && result.exitCode === 0) return PASS;
  // nsenter's own failure (the namespace went in between) looks like the program's.
  if (!(await exists())) return GONE;
  const stderr = result.stderr.trim().split('\n')[0] ?? '';
  return fail(`\`${argv.join(' ')}\` ${result.failure ?? `exited ${result.exitCode}`}${stderr ? `: ${stderr.slice(0, 200)}` : ''}`);
}

export interface ProberOptions extends ProbeSessionOptions {
  /**
   * Runs exec probes. createRunner() suits: such a probe forks anyway, and its
   * timeout ends the program itself, where a pooled shell's would orphan it.
   */
  readonly runner: Runner;
}

/** Probes for every local task: one shell per namespace for tcp and http, the runner for exec. */
export function createProber(options: ProberOptions): Prober {
  const sessions = new Map<string, ProbeSession>();
  let closed = false;
  return {
    async probe(request) {
      const { probe } = request;
      if (closed) return fail('the prober is closed');
      if (probe.kind === 'exec') return execProbe(options.runner, request, probe.argv);
      let session = sessions.get(request.netns);
      if (session === undefined) {
        session = openProbeSession(request.netns, options);
        sessions.set(request.netns, session);
      }
      const target: SocketProbe = probe.kind === 'tcp'
        ? { kind: 'tcp', address: request.address, port: probe.port }
        : { kind: 'http', address: request.address, port: probe.port, path: probe.path };
      return session.probe(target, request.timeoutMs);
    },
    async retain(netns) {
      const leaving = [...sessions].filter(([path]) => !netns.has(path));
      for (const [path] of leaving) sessions.delete(path);
      await Promise.all(leaving.map(([, session]) => session.close()));
    },
    async close() {
      closed = true;
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map((session) => session.close()));
    },
  };
}
