// DataFrames: MessagePack values back to back, no outer array (docs/protocol.md, "DataFrame").
// In TypeScript a DataFrame is an array of values. Integers beyond 2^53 come and go as bigint;
// integers past 32 bits go out as MessagePack integers, never as floats.
import { decodeMulti, encode } from '@msgpack/msgpack';

import { concat } from './bytes.js';

export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Value[]
  | { [key: string]: Value };
export type DataFrame = Value[];

/** What a received DataFrame may hold before it is refused (the C++ side's DecodeLimits). */
export interface DecodeLimits {
  maxDepth: number;
  maxElements: number;  // per array or map
  maxValues: number;    // in all
  maxBytes: number;     // encoded size
}
export const defaultDecodeLimits: DecodeLimits = {
  maxDepth: 32,
  maxElements: 1 << 20,
  maxValues: 1 << 22,
  maxBytes: 16 << 20,
};

/** Thrown on a frame that does not decode (`bad_payload`) or is over a limit (`limit_exceeded`). */
export class DataFrameError extends Error {
  constructor(message: string, readonly overLimit = false) {
    super(message);
  }
}

// With useBigInt64 the encoder writes a number past 32 bits as a float64, which a peer reading an
// integer refuses: such integers go as bigint, so they leave as MessagePack int64 or uint64.
const wide = (n: number): boolean => Number.isSafeInteger(n) && (n >= 2 ** 32 || n < -(2 ** 31));
function widened(v: Value): Value {
  if (typeof v === 'number') return wide(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(widened);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: { [key: string]: Value } = {};
    for (const [k, x] of Object.entries(v)) out[k] = widened(x);
    return out;
  }
  return v;
}

// The decoder gives every int64 or uint64 as a bigint: those a number holds exactly come back as
// numbers, so only integers beyond 2^53 are bigints, as the sender's side had them.
function narrowed(v: unknown): unknown {
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; ++i) v[i] = narrowed(v[i]);
    return v;
  }
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = narrowed(o[k]);
  }
  return v;
}

export function encodeDataFrame(values: DataFrame): Uint8Array {
  return concat(values.map((v) => encode(widened(v), { useBigInt64: true, ignoreUndefined: true })));
}

// Walks the MessagePack structure before anything is decoded: every container's count must fit
// in the bytes left (a value takes at least one byte), depth, elements and values within the
// limits, no ext types. Only then does the decoder allocate, so memory follows the bytes.
function scan(bytes: Uint8Array, limits: DecodeLimits): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const open: number[] = [];  // values still to come in each open container
  let at = 0;
  let values = 0;
  const truncated = () => new DataFrameError('a value runs past the end');
  const length = (size: number): number => {
    if (at + size > bytes.length) throw truncated();
    const n = size === 1 ? view.getUint8(at) : size === 2 ? view.getUint16(at) : view.getUint32(at);
    at += size;
    return n;
  };
  while (at < bytes.length) {
    if (open.length) open[open.length - 1]--;
    if (++values > limits.maxValues) throw new DataFrameError('too many values', true);
    const b = bytes[at++];
    let skip = 0;
    let children = 0;  // values inside, for a container
    let elements = 0;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // fixint, nil, bool
    } else if (b <= 0x8f) {
      elements = b & 0x0f;
      children = elements * 2;
    } else if (b <= 0x9f) {
      children = elements = b & 0x0f;
    } else if (b <= 0xbf) {
      skip = b & 0x1f;
    } else {
      switch (b) {
        case 0xc4: case 0xd9: skip = length(1); break;
        case 0xc5: case 0xda: skip = length(2); break;
        case 0xc6: case 0xdb: skip = length(4); break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xdc: children = elements = length(2); break;
        case 0xdd: children = elements = length(4); break;
        case 0xde: elements = length(2); children = elements * 2; break;
        case 0xdf: elements = length(4); children = elements * 2; break;
        default: throw new DataFrameError(b === 0xc1 ? 'the reserved byte 0xc1' : 'a MessagePack ext type');
      }
    }
    if (at + skip > bytes.length) throw truncated();
    at += skip;
    if (elements > limits.maxElements) throw new DataFrameError('a container too large', true);
    if (children > bytes.length - at) throw new DataFrameError('a container larger than the bytes left');
    if (children > 0) {
      if (open.length >= limits.maxDepth) throw new DataFrameError('nested too deep', true);
      open.push(children);
    } else {
      while (open.length && open[open.length - 1] === 0) open.pop();
    }
  }
  if (open.length) throw truncated();
}

export function decodeDataFrame(bytes: Uint8Array,
                                limits: DecodeLimits = defaultDecodeLimits): DataFrame {
  if (bytes.length > limits.maxBytes)
    throw new DataFrameError(`a DataFrame of ${bytes.length} bytes`, true);
  scan(bytes, limits);
  try {
    const options = {
      useBigInt64: true,
      mapKeyConverter: (key: unknown) => {
        if (typeof key !== 'string') throw new DataFrameError('a map key that is not a string');
        return key;
      },
    };
    return Array.from(decodeMulti(bytes, options), narrowed) as DataFrame;
  } catch (e) {
    if (e instanceof DataFrameError) throw e;
    throw new DataFrameError((e as Error).message);
  }
}
