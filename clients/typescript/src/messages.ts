// The message header: kind (1) | flags (1) | id (LEB128, 1-10 bytes) | name length (1) | name |
// payload (docs/protocol.md, "Message header").
import { concat, utf8 } from './bytes.js';

export const Kind = {
  call_console: 1,
  call_dataframe: 2,
  direct_console: 3,
  direct_dataframe: 4,
  reply: 5,
  error: 6,
  ping: 7,
  pong: 8,
  goodbye: 9,
  stream_open: 10,
  stream_accept: 11,
  stream_data: 12,
  stream_window: 13,
  stream_end: 14,
  stream_reset: 15,
} as const;

export interface Message {
  kind: number;
  flags: number;
  id: bigint;
  name: Uint8Array;
  payload: Uint8Array;
}

const MAX_U64 = 2n ** 64n - 1n;

export function encodeMessage(kind: number, id: bigint, name: string | Uint8Array,
                              payload: Uint8Array): Uint8Array {
  const nameBytes = typeof name === 'string' ? utf8(name) : name;
  if (nameBytes.length > 255) throw new Error('a command name is at most 255 bytes');
  const varint: number[] = [];
  let n = id;
  do {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    varint.push(n ? b | 0x80 : b);
  } while (n);
  return concat([Uint8Array.of(kind, 0, ...varint, nameBytes.length), nameBytes, payload]);
}

/** Parses a header; null when it cannot be (the connection then closes `malformed`). */
export function parseMessage(m: Uint8Array): Message | null {
  if (m.length < 4 || m[0] < Kind.call_console || m[0] > Kind.stream_reset) return null;
  let at = 2;
  let id = 0n;
  for (let shift = 0n; ; shift += 7n) {
    if (at >= m.length || shift > 63n) return null;
    const b = m[at++];
    id |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  if (id > MAX_U64 || at >= m.length) return null;
  const nameLength = m[at++];
  if (at + nameLength > m.length) return null;
  return {
    kind: m[0],
    flags: m[1],
    id,
    name: m.subarray(at, at + nameLength),
    payload: m.subarray(at + nameLength),
  };
}

/** A 2-byte big-endian code and a UTF-8 text: the payload of `error`, `goodbye`, `stream_reset`. */
export function codeAndText(code: number, text: string): Uint8Array {
  return concat([Uint8Array.of(code >> 8, code & 0xff), utf8(text)]);
}
