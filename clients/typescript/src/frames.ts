// Frames on the byte stream: head mark | length (4, BE) | body | tail mark
// (docs/protocol.md, "Frames"). The reader checks the head mark from its first byte and the
// length as soon as the 8-byte head is in, before it buffers any body.
import { concat, equal, readU32, u32, utf8 } from './bytes.js';
import { CloseReason } from './errors.js';

export interface Mark {
  head: Uint8Array;
  tail: Uint8Array;
}

export function parseMark(head = 'HWSR', tail = 'hwsr'): Mark {
  const m = { head: utf8(head), tail: utf8(tail) };
  if (m.head.length !== 4 || m.tail.length !== 4) throw new Error('a protocol mark is 4 bytes');
  return m;
}

export const frame = (mark: Mark, body: Uint8Array): Uint8Array =>
  concat([mark.head, u32(body.length), body, mark.tail]);

/** Thrown by FrameReader.push: the connection closes with `reason`. */
export class FrameError extends Error {
  constructor(readonly reason: number, message: string) {
    super(message);
  }
}

/** Cuts frames out of the stream as it arrives, in any pieces. */
export class FrameReader {
  private parts: Uint8Array[] = [];
  private buffered = 0;
  /** The most a body may hold: changes after the handshake (docs/protocol.md). */
  maxBody: number;

  constructor(private readonly mark: Mark, maxBody: number) {
    this.maxBody = maxBody;
  }

  /** Appends bytes as they arrive. */
  push(bytes: Uint8Array): void {
    if (!bytes.length) return;
    this.parts.push(bytes);
    this.buffered += bytes.length;
  }

  /** The next whole frame's body, or null until more bytes arrive. One at a time, so that the
   *  limit may change between frames (it does after the handshake). */
  next(): Uint8Array | null {
    const head = this.peek(Math.min(this.buffered, 8));
    for (let i = 0; i < Math.min(head.length, 4); ++i)
      if (head[i] !== this.mark.head[i]) throw new FrameError(CloseReason.bad_mark, 'bad head mark');
    if (head.length < 8) return null;
    const length = readU32(head, 4);
    if (length > this.maxBody)
      throw new FrameError(CloseReason.frame_too_large, `a frame of ${length} bytes`);
    if (this.buffered < 12 + length) return null;
    const whole = this.take(12 + length);
    if (!equal(whole.subarray(8 + length), this.mark.tail))
      throw new FrameError(CloseReason.bad_mark, 'bad tail mark');
    return whole.subarray(8, 8 + length);
  }

  // The first n buffered bytes (n <= buffered), joining only the parts they span: a frame
  // arriving in many small reads is copied once, when it is whole.
  private peek(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    if (this.parts.length && this.parts[0].length >= n) return this.parts[0].subarray(0, n);
    let count = 0;
    for (let have = 0; have < n; ++count) have += this.parts[count].length;
    const joined = concat(this.parts.slice(0, count));
    this.parts.splice(0, count, joined);
    return joined.subarray(0, n);
  }

  private take(n: number): Uint8Array {
    const out = this.peek(n);
    const first = this.parts[0];
    if (first.length === n) this.parts.shift();
    else this.parts[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
