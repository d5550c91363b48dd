// Writing output that may be larger than one string can hold, a chunk at a time,
// waiting for the stream to drain rather than buffering gigabytes in memory.
import type { Writable } from 'node:stream';

/** The output stream failed; `cause` is its error (EPIPE when the reader left). */
export class OutputError extends Error {
  override readonly name = 'OutputError';
  readonly code: unknown;
  constructor(override readonly cause: Error) {
    super(`cannot write the output: ${cause.message}`);
    this.code = (cause as { code?: unknown }).code;
  }
}

/** Writes every chunk in order; throws OutputError on the stream's first error. */
export async function writeChunks(out: Writable, chunks: Iterable<string>): Promise<void> {
  // The error is kept from its event: not every stream keeps `errored` set (a file
  // stdout clears it once the event is out) and each write after it fails again.
  let failure: { error: Error } | undefined;
  let wake: (() => void) | undefined;
  const onError = (error: Error) => {
    failure ??= { error };
    wake?.();
  };
  const onDrain = () => wake?.();
  out.on('error', onError);
  out.on('drain', onDrain);
  out.on('close', onDrain);
  try {
    for (const chunk of chunks) {
      if (failure === undefined && out.errored !== null) failure = { error: out.errored };
      if (failure !== undefined) throw new OutputError(failure.error);
      // A stream can end without an error, e.g. destroyed by whoever holds it.
      if (out.destroyed) throw new OutputError(Object.assign(new Error('the output was closed'), { code: 'ERR_STREAM_DESTROYED' }));
      if (!out.write(chunk) && failure === undefined && out.errored === null) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    }
    if (failure !== undefined) throw new OutputError(failure.error);
  } finally {
    out.off('error', onError);
    out.off('drain', onDrain);
    out.off('close', onDrain);
  }
}
