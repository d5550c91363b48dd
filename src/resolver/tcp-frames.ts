// RFC 1035 §4.2.2 framing of DNS over TCP: a 2-byte length, then the message.
// Frames are assembled in place: a client trickling a 64 KiB query one byte at a
// time costs one allocation, not one copy of the whole buffer per byte.

/** What read() returns when a length prefix is zero or over the limit. */
export const BAD_FRAME = -1;

export class FrameReader {
  private readonly header = Buffer.alloc(2);
  private headerFilled = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private done: Buffer | null = null;

  constructor(private readonly maxBytes: number) {}

  /**
   * Reads `chunk` from `at` until one message is complete or the chunk ends, and
   * returns the offset reached (take() then has the message, if one completed),
   * or BAD_FRAME: there is no resynchronising a stream after a bad length.
   */
  read(chunk: Buffer, at: number): number {
    let off = at;
    while (off < chunk.length) {
      if (this.body === null) {
        this.header[this.headerFilled++] = chunk[off++]!;
        if (this.headerFilled < 2) continue;
        this.headerFilled = 0;
        const length = this.header.readUInt16BE(0);
        if (length === 0 || length > this.maxBytes) return BAD_FRAME;
        this.body = Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
        continue;
      }
      const copied = chunk.copy(this.body, this.bodyFilled, off, Math.min(chunk.length, off + this.body.length - this.bodyFilled));
      this.bodyFilled += copied;
      off += copied;
      if (this.bodyFilled === this.body.length) {
        this.done = this.body;
        this.body = null;
        return off;
      }
    }
    return off;
  }

  /** The message read() completed, once; null if it completed none. */
  take(): Buffer | null {
    const message = this.done;
    this.done = null;
    return message;
  }
}

/** A reply with its length prefix; null when it is too long to frame. */
export function framed(reply: Uint8Array): Buffer | null {
  if (reply.length > 0xffff) return null;
  const frame = Buffer.allocUnsafe(2 + reply.length);
  frame.writeUInt16BE(reply.length, 0);
  frame.set(reply, 2);
  return frame;
}
