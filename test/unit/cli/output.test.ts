import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import test from 'node:test';
import { OutputError, writeChunks } from '../../../src/cli/output.js';

/** A slow reader: takes one chunk per tick, and records how much was waiting at most. */
function slowSink(highWaterMark: number) {
  const received: string[] = [];
  let pending = 0;
  let peak = 0;
  const sink = new Writable({
    highWaterMark,
    decodeStrings: false,
    write(chunk: string, _encoding, done) {
      received.push(chunk);
      setImmediate(() => {
        pending -= chunk.length;
        done();
      });
    },
  });
  const write = sink.write.bind(sink);
  sink.write = ((chunk: string, ...rest: never[]) => {
    pending += chunk.length;
    peak = Math.max(peak, pending);
    return write(chunk, ...rest);
  }) as typeof sink.write;
  return { sink, received, peak: () => peak };
}

test('chunks arrive in order, and a slow reader is waited for rather than buffered', async () => {
  const { sink, received, peak } = slowSink(1024);
  const chunks = Array.from({ length: 200 }, (_, i) => `${i}:${'x'.repeat(1000)}\n`);
  let produced = 0;
  await writeChunks(sink, (function* () {
    for (const chunk of chunks) {
      produced++;
      yield chunk;
    }
  })());
  assert.equal(produced, chunks.length);
  assert.deepEqual(received, chunks);
  // Never more than the high-water mark plus one chunk queued: the writer waited for drain.
  assert.ok(peak() <= 1024 + 1010, `at most ${peak()} characters were queued`);
});

test('a failing stream stops the writing with its first error', async () => {
  let writes = 0;
  const sink = new Writable({
    write(_chunk, _encoding, done) {
      writes++;
      done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    },
  });
  sink.on('error', () => {});
  let produced = 0;
  const chunks = (function* () {
    for (let i = 0; i < 1000; i++) {
      produced++;
      yield 'x';
    }
  })();
  await assert.rejects(writeChunks(sink, chunks), (error: unknown) => {
    assert.ok(error instanceof OutputError);
    assert.equal(error.code, 'EPIPE');
    assert.match(error.message, /^cannot write the output: write EPIPE$/);
    return true;
  });
  assert.equal(writes, 1, 'nothing is written after the error');
  assert.ok(produced <= 2, `${produced} chunks were rendered for a dead stream`);
});
