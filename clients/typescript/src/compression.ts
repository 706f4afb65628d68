// Decompression of message payloads: `original size (4) | compressed bytes`, a zstd frame or an
// LZ4 block (docs/protocol.md, "Message header"). This client sends uncompressed (receivers
// accept both), so it only reads. The size is checked against the limit before anything is
// allocated, and the result must be exactly that size.
import { decompress as zstdDecompress } from 'fzstd';

import { readU32 } from './bytes.js';

export const Compression = { none: 0, zstd: 1, lz4: 2 } as const;

/** Thrown on a payload that does not decompress; `tooLarge` when it was over the limit. */
export class DecompressError extends Error {
  constructor(message: string, readonly tooLarge = false) {
    super(message);
  }
}

export function decompress(codec: number, payload: Uint8Array, limit: number): Uint8Array {
  if (payload.length < 4) throw new DecompressError('a compressed payload without its size');
  const size = readU32(payload, 0);
  if (size > limit) throw new DecompressError(`decompresses to ${size} bytes`, true);
  const body = payload.subarray(4);
  const out = codec === Compression.zstd ? zstd(body, size) : lz4Block(body, size);
  if (out.length !== size) throw new DecompressError('the decompressed size differs');
  return out;
}

// fzstd allocates the frame's window up front: it is checked against the announced size first,
// so a forged header cannot make it allocate more.
function zstd(body: Uint8Array, size: number): Uint8Array {
  if (body.length < 6 || readU32(body, 0) !== 0x28b52ffd)
    throw new DecompressError('not a zstd frame');
  const descriptor = body[4];
  const singleSegment = (descriptor & 0x20) !== 0;
  const contentSizeFlag = descriptor >> 6;
  if ((descriptor & 0x03) !== 0) throw new DecompressError('a zstd dictionary is not supported');
  let at = 5;
  if (!singleSegment) {
    const w = body[at++];
    const base = 2 ** (10 + (w >> 3));
    if (base + (base / 8) * (w & 7) > Math.max(size, 1 << 17))
      throw new DecompressError('the zstd window is larger than the content', true);
  }
  const fieldSize = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag];
  if (fieldSize === 0 || body.length < at + fieldSize)
    throw new DecompressError('a zstd frame without its content size');
  let contentSize = 0;
  for (let i = fieldSize - 1; i >= 0; --i) contentSize = contentSize * 256 + body[at + i];
  if (fieldSize === 2) contentSize += 256;
  if (contentSize !== size) throw new DecompressError('the zstd content size differs');
  try {
    // Into a buffer of the announced size: fzstd then allocates nothing for the content and
    // throws when a frame would write past it. It returns the whole buffer however much it
    // wrote (and keeps a block's literals at the buffer's end while it decodes), so the frame is
    // decoded twice, over zeros and over 0xff: a byte the content did not write differs, and
    // content that stops short of the size is refused. Compressed payloads cost twice.
    const out = zstdDecompress(body, new Uint8Array(size));
    const again = zstdDecompress(body, new Uint8Array(size).fill(0xff));
    for (let i = 0; i < size; ++i)
      if (out[i] !== again[i]) throw new DecompressError('the zstd content stops short of its size');
    return out;
  } catch (e) {
    if (e instanceof DecompressError) throw e;
    throw new DecompressError(`zstd: ${(e as Error).message}`);
  }
}

// An LZ4 block (the block format, no frame): sequences of literals and back-references.
function lz4Block(input: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let i = 0;
  let o = 0;
  const bad = (): never => {
    throw new DecompressError('a malformed LZ4 block');
  };
  const length = (start: number): number => {
    let n = start;
    if (start === 15) {
      for (;;) {
        if (i >= input.length) bad();
        const b = input[i++];
        n += b;
        if (b !== 255) break;
      }
    }
    return n;
  };
  while (i < input.length) {
    const token = input[i++];
    const literals = length(token >> 4);
    if (i + literals > input.length || o + literals > size) bad();
    out.set(input.subarray(i, i + literals), o);
    i += literals;
    o += literals;
    if (i === input.length) break;  // the last sequence has literals only
    if (i + 2 > input.length) bad();
    const offset = input[i] | (input[i + 1] << 8);
    i += 2;
    const match = length(token & 15) + 4;
    if (offset === 0 || offset > o || o + match > size) bad();
    for (let k = 0; k < match; ++k, ++o) out[o] = out[o - offset];  // may overlap itself
  }
  if (o !== size) bad();
  return out;
}
