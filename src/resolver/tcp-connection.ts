// One client connection to a namespace's TCP resolver socket (RFC 7766), as a
// small state machine:
//
//   reading ──(too many in flight, replies unread)──▶ paused ──(cleared)──▶ reading
//   reading/paused ──(client FIN, or idle)──▶ draining ──(every answer out)──▶ closing ──(FIN flushed)──▶ closed
//   any ──(bad frame, error, no progress for a whole idle period, served.close())──▶ closed
//
// Several queries per connection, pipelined, replies written as they complete
// (glibc sends A and AAAA back to back on one connection). A connection holds one
// of the namespace's slots until its socket is destroyed, and a client need not
// close its side ever: so every way out ends in destroy(), never in an end() that
// waits for the client's FIN (a half-closed socket in FIN-WAIT-2 would hold its
// slot until the client chose to close).
import type net from 'node:net';
import { BAD_FRAME, FrameReader, framed } from './tcp-frames.js';
import type { Reply } from './types.js';

export interface TcpLimits {
  /**
   * A connection is closed once no query has arrived and no reply has gone out for
   * this long (after the answers still due); bytes of an unfinished query do not
   * count, so trickling one never keeps a slot.
   */
  readonly tcpIdleTimeoutMs: number;
  /** Largest TCP query accepted; a bigger length prefix closes the connection. */
  readonly maxTcpMessageBytes: number;
  /** Queries of one TCP connection in flight before it stops being read. */
  readonly maxTcpPendingPerConnection: number;
  /** Reply bytes a TCP connection may leave unread before it stops being read. */
  readonly maxTcpUnsentBytes: number;
}

export interface TcpCounters {
  /** Replies that could not be sent (socket errors, replies too large to frame). */
  sendErrors: number;
  /** TCP connections closed for a bad frame (zero or oversize length). */
  tcpBadFrames: number;
  /** TCP connections closed by the idle timeout. */
  tcpIdleClosed: number;
}

type State =
  | { readonly kind: 'reading' }
  /**
   * Not reading until the queries in flight and the unread replies fall below
   * their bounds; `leftover` is what was read but not yet parsed (a chunk may
   * hold many queries), `ended` that the client's FIN came after it (Node emits
   * 'end' on a paused socket once nothing is left in its own buffer).
   */
  | { readonly kind: 'paused'; readonly leftover: Buffer | null; readonly ended: boolean }
  /** No more queries are taken (the client half-closed, or went idle); closes once every answer is out. */
  | { readonly kind: 'draining'; readonly why: 'end' | 'idle' }
  /** Our FIN is queued behind the last replies; the socket is destroyed once they are flushed. */
  | { readonly kind: 'closing' }
  | { readonly kind: 'closed' };

const READING: State = { kind: 'reading' };
const CLOSING: State = { kind: 'closing' };
const CLOSED: State = { kind: 'closed' };
const DRAINING_END: State = { kind: 'draining', why: 'end' };
const DRAINING_IDLE: State = { kind: 'draining', why: 'idle' };

/** Serves `socket` until it closes; nothing the client sends can throw out of here. */
export function serveConnection(
  socket: net.Socket,
  answer: (query: Buffer) => Reply | Promise<Reply>,
  limits: TcpLimits,
  counters: TcpCounters,
): void {
  let state: State = READING;
  let pending = 0;
  const frames = new FrameReader(limits.maxTcpMessageBytes);

  const destroy = (): void => {
    state = CLOSED;
    clearTimeout(idle);
    socket.destroy();
  };
  const close = (): void => {
    state = CLOSING;
    socket.end();
  };
  // Each query and each reply handed to the kernel is progress; a whole period without any ends the connection.
  const onIdle = (): void => {
    switch (state.kind) {
      case 'reading':
      case 'paused':
        counters.tcpIdleClosed++;
        // Replies left unsent a whole period: the client stopped reading them.
        if (socket.writableLength > 0) return destroy();
        if (pending === 0) return close();
        // Answers still due (a slow upstream): they go out first.
        state = DRAINING_IDLE;
        socket.resume(); // read and discard, so nothing unread turns our close into a reset
        idle.refresh();
        return;
      case 'draining':
        // The answerer's own timeouts bound how long an answer takes; unread replies are the client's doing.
        if (socket.writableLength > 0) return destroy();
        idle.refresh();
        return;
      case 'closing':
        return destroy(); // the last replies were not taken in a whole period
      case 'closed':
        return;
    }
  };
  const idle = setTimeout(onIdle, limits.tcpIdleTimeoutMs);
  idle.unref();
  const progress = (): void => {
    if (state.kind !== 'closed') idle.refresh();
  };

  const full = (): boolean =>
    pending >= limits.maxTcpPendingPerConnection || socket.writableLength > limits.maxTcpUnsentBytes;

  const onReply = (reply: Reply): void => {
    pending--;
    if (reply.bytes !== null && state.kind !== 'closed' && socket.writable) {
      const frame = framed(reply.bytes);
      if (frame === null) counters.sendErrors++;
      else socket.write(frame, progress);
    }
    switch (state.kind) {
      case 'paused':
        return flow();
      case 'draining':
        if (pending === 0) close();
        return;
      default:
        return;
    }
  };

  const dispatch = (query: Buffer): void => {
    pending++;
    progress();
    const reply = answer(query);
    if (reply instanceof Promise) void reply.then(onReply);
    else onReply(reply);
  };

  const consume = (chunk: Buffer, from: number): void => {
    let at = from;
    while (at < chunk.length && state.kind === 'reading') {
      if (full()) {
        state = { kind: 'paused', leftover: chunk.subarray(at), ended: false };
        socket.pause();
        return;
      }
      at = frames.read(chunk, at);
      if (at === BAD_FRAME) {
        counters.tcpBadFrames++;
        return destroy();
      }
      const query = frames.take();
      if (query !== null) dispatch(query);
    }
  };

  const ended = (): void => {
    state = DRAINING_END;
    if (pending === 0) close();
  };

  function flow(): void {
    if (state.kind !== 'paused' || full()) return;
    const { leftover, ended: eof } = state;
    state = READING;
    if (leftover !== null) consume(leftover, 0);
    if (state.kind === 'paused' && eof) state = { ...state, ended: true };
    else if (state.kind === 'reading') {
      if (eof) ended();
      else socket.resume();
    }
  }

  socket.setNoDelay(true);
  socket.on('error', () => {}); // resets and the like: 'close' follows
  socket.on('close', () => {
    state = CLOSED;
    clearTimeout(idle);
  });
  socket.on('finish', () => {
    // Our FIN is out: the socket is done with, whether or not the client ever closes its side.
    if (state.kind === 'closing') destroy();
  });
  socket.on('drain', () => {
    if (state.kind === 'paused') flow();
  });
  socket.on('end', () => {
    if (state.kind === 'reading') ended();
    else if (state.kind === 'paused') state = { ...state, ended: true };
    // draining, closing: no more queries are taken anyway
  });
  socket.on('data', (chunk: Buffer) => {
    if (state.kind === 'reading') consume(chunk, 0);
    // Data already on its way when reading paused (defensive: Node stops 'data' at pause()).
    else if (state.kind === 'paused') {
      state = { ...state, leftover: state.leftover === null ? chunk : Buffer.concat([state.leftover, chunk]) };
    }
    // draining, closing: the client sent more after we stopped taking queries; dropped.
  });
}
