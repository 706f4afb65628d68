// DataFrames: MessagePack values back to back, no outer array (docs/protocol.md, "DataFrame").
// In TypeScript a DataFrame is an array of values. Integers beyond 2^53 come and go as bigint.
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

export function encodeDataFrame(values: DataFrame): Uint8Array {
  return concat(values.map((v) => encode(v, { useBigInt64: true, ignoreUndefined: true })));
}

export function decodeDataFrame(bytes: Uint8Array,
                                limits: DecodeLimits = defaultDecodeLimits): DataFrame {
  if (bytes.length > limits.maxBytes)
    throw new DataFrameError(`a DataFrame of ${bytes.length} bytes`, true);
  const values: DataFrame = [];
  let count = 0;
  // msgpack's own bounds check every header against the bytes left before allocating; the walk
  // below counts values and depth and refuses what a DataFrame cannot hold (ext types).
  const check = (v: unknown, depth: number): void => {
    if (++count > limits.maxValues) throw new DataFrameError('too many values', true);
    if (depth > limits.maxDepth) throw new DataFrameError('nested too deep', true);
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return;
    if (Array.isArray(v)) {
      if (v.length > limits.maxElements) throw new DataFrameError('an array too long', true);
      for (const x of v) check(x, depth + 1);
      return;
    }
    if (Object.getPrototypeOf(v) !== Object.prototype)
      throw new DataFrameError('a MessagePack ext type');
    const entries = Object.values(v as object);
    if (entries.length > limits.maxElements) throw new DataFrameError('a map too large', true);
    for (const x of entries) check(x, depth + 1);
  };
  try {
    const options = {
      useBigInt64: true,
      maxArrayLength: limits.maxElements,
      maxMapLength: limits.maxElements,
      maxExtLength: 0,
      mapKeyConverter: (key: unknown) => {
        if (typeof key !== 'string') throw new DataFrameError('a map key that is not a string');
        return key;
      },
    };
    for (const v of decodeMulti(bytes, options)) {
      check(v, 1);
      values.push(v as Value);
    }
  } catch (e) {
    if (e instanceof DataFrameError) throw e;
    throw new DataFrameError((e as Error).message);
  }
  return values;
}
