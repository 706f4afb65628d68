// The pure parts, without a server: Noise against the published test vectors, and every
// decoder against bad input (frames, records, headers, LZ4, zstd headers, DataFrames).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { packageDir } from './servers.mjs';

const load = (name) => import(join(packageDir, 'dist', name));
const { Initiator, keyPair, protocolName } = await load('noise.js');
const { FrameReader, FrameError, frame, parseMark } = await load('frames.js');
const { parseMessage, encodeMessage } = await load('messages.js');
const { decompress, DecompressError } = await load('compression.js');
const { decodeDataFrame, encodeDataFrame, DataFrameError } = await load('dataframe.js');
const { CloseReason } = await load('errors.js');
const { fromHex, toHex, u32, concat } = await load('bytes.js');

// tests/data/noise_vectors.txt: blocks of key=value lines, one block per handshake.
function vectors() {
  const file = join(process.env.HAWSER_SOURCE_DIR, 'tests/data/noise_vectors.txt');
  const blocks = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [k, v] = line.split('=');
    if (k === 'handshake') blocks.push({});
    blocks.at(-1)[k] = v ?? '';
  }
  return blocks;
}

test('Noise NK and XX agree with the published vectors', () => {
  const blocks = vectors();
  assert.ok(blocks.length >= 4);
  for (const v of blocks) {
    const pattern = v.handshake.includes('_NK_') ? 'NK' : 'XX';
    assert.equal(v.handshake, protocolName(pattern));
    const prologue = fromHex(v.prologue ?? '');
    const hs = new Initiator(pattern, prologue, {
      remoteStatic: v.resp_static ? keyPair(fromHex(v.resp_static)).publicKey : undefined,
      localStatic: v.init_static ? keyPair(fromHex(v.init_static)) : undefined,
      ephemeral: keyPair(fromHex(v.gen_init_ephemeral)),
    });
    let i = 0;
    for (; hs.messagesLeft > 0; ++i) {
      const payload = fromHex(v[`msg_${i}_payload`]);
      if (hs.writesNext) assert.equal(toHex(hs.write(payload)), v[`msg_${i}_ciphertext`]);
      else assert.equal(toHex(hs.read(fromHex(v[`msg_${i}_ciphertext`]))), v[`msg_${i}_payload`]);
    }
    const [send, recv] = hs.split();
    // Transport messages go initiator -> responder first, whoever sent the last handshake one.
    for (const steps = i; v[`msg_${i}_ciphertext`] !== undefined; ++i) {
      const ours = (i - steps) % 2 === 0;
      if (ours) assert.equal(toHex(send.seal(fromHex(v[`msg_${i}_payload`]))), v[`msg_${i}_ciphertext`]);
      else assert.equal(toHex(recv.open(fromHex(v[`msg_${i}_ciphertext`]))), v[`msg_${i}_payload`]);
    }
  }
});

test('a tampered handshake reply is refused', () => {
  const server = keyPair();
  const hs = new Initiator('NK', new Uint8Array(0), { remoteStatic: server.publicKey });
  hs.write();
  const forged = new Uint8Array(48);
  forged.set(keyPair().publicKey);
  assert.throws(() => hs.read(forged));
});

test('frames: marks and lengths are checked before the body arrives', () => {
  const mark = parseMark();
  const reader = new FrameReader(mark, 100);
  const bytes = concat([frame(mark, new Uint8Array([1, 2, 3])), frame(mark, new Uint8Array([4]))]);
  const bodies = [];
  for (const b of bytes) {  // a byte at a time
    reader.push(Uint8Array.of(b));
    for (let body; (body = reader.next());) bodies.push(body);
  }
  assert.deepEqual(bodies.map((b) => Array.from(b)), [[1, 2, 3], [4]]);
  const expectClose = (input, reason) => assert.throws(() => {
    const r = new FrameReader(mark, 100);
    r.push(input);
    r.next();
  }, (e) => e instanceof FrameError && e.reason === reason);
  expectClose(new TextEncoder().encode('GET / HTTP/1.1'), CloseReason.bad_mark);
  expectClose(new TextEncoder().encode('HX'), CloseReason.bad_mark);  // at its second byte
  expectClose(concat([mark.head, u32(101)]), CloseReason.frame_too_large);
  expectClose(concat([mark.head, u32(1), Uint8Array.of(0), mark.head]), CloseReason.bad_mark);
  assert.throws(() => parseMark('toolong', 'hwsr'));
});

test('message headers: bad ones do not parse', () => {
  const m = parseMessage(encodeMessage(2, 300n, 'cmd', new Uint8Array([9])));
  assert.equal(m.kind, 2);
  assert.equal(m.id, 300n);
  assert.equal(new TextDecoder().decode(m.name), 'cmd');
  assert.deepEqual(Array.from(m.payload), [9]);
  assert.equal(parseMessage(encodeMessage(1, 2n ** 64n - 1n, 'x', new Uint8Array(0))).id, 2n ** 64n - 1n);
  assert.equal(parseMessage(Uint8Array.of(16, 0, 0, 0)), null);               // unknown kind
  assert.equal(parseMessage(Uint8Array.of(1, 0, 0x80, 0x80)), null);          // varint past the end
  assert.equal(parseMessage(Uint8Array.of(1, 0, ...Array(10).fill(0xff), 1, 0)), null);  // > 64 bits
  assert.equal(parseMessage(Uint8Array.of(1, 0, 1, 5, 65)), null);            // name past the end
});

test('LZ4 blocks decode, and malformed ones are refused', () => {
  // "abcabcabcabc!": literals "abc", a match of 9 at offset 3, then the last literals "!".
  const block = Uint8Array.of(0x35, 97, 98, 99, 3, 0, 0x10, 33);
  const payload = concat([u32(13), block]);
  assert.equal(new TextDecoder().decode(decompress(2, payload, 100)), 'abcabcabcabc!');
  assert.throws(() => decompress(2, payload, 12), (e) => e instanceof DecompressError && e.tooLarge);
  assert.throws(() => decompress(2, concat([u32(14), block]), 100), DecompressError);  // size lies
  assert.throws(() => decompress(2, concat([u32(13), Uint8Array.of(0x35, 97, 98, 99, 9, 0, 0x10, 33)]), 100),
                DecompressError);  // offset before the start
  assert.throws(() => decompress(2, concat([u32(13), Uint8Array.of(0xf0)]), 100), DecompressError);
  assert.throws(() => decompress(2, Uint8Array.of(0, 0), 100), DecompressError);
});

test('zstd headers are checked before anything is allocated', () => {
  // A single-segment frame header announcing 4 GiB of content, for a message of 10 bytes.
  const forged = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);
  assert.throws(() => decompress(1, concat([u32(10), forged]), 100), DecompressError);
  // A window of 2 GiB for 10 bytes of content.
  const window = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0, 0, 0);
  assert.throws(() => decompress(1, concat([u32(10), window]), 100), (e) => e.tooLarge);
  assert.throws(() => decompress(1, concat([u32(10), Uint8Array.of(1, 2, 3, 4, 5, 6)]), 100), DecompressError);
});

test('zstd: a frame decodes; a second frame cannot write past the announced size', () => {
  // A single-segment frame of one raw block holding "hi".
  const hi = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x20, 2, 0x11, 0, 0, 0x68, 0x69);
  assert.equal(new TextDecoder().decode(decompress(1, concat([u32(2), hi]), 100)), 'hi');
  // The same, then a frame announcing 1.5 GB: refused without allocating it.
  const huge = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0x60, 0, 0, 0, 0, 0x11, 0, 0, 0x78);
  assert.throws(() => decompress(1, concat([u32(2), hi, huge]), 100), DecompressError);
  // A header announcing 4 bytes over a block of 2: refused, not padded with zeros.
  const short = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x20, 4, 0x11, 0, 0, 0x68, 0x69);
  assert.throws(() => decompress(1, concat([u32(4), short]), 100), DecompressError);
});

test('DataFrames: values round-trip; ext types, bad bytes and limits are refused', () => {
  const values = [0, -1, 2 ** 40, -(2n ** 63n), 2n ** 64n - 1n, 0.25, '', 'ü', new Uint8Array(3),
                  [], [[1], { a: [null] }], {}, false];
  assert.deepEqual(decodeDataFrame(encodeDataFrame(values)), values);
  // Integers past 32 bits go as MessagePack integers, never floats; int64 and uint64 values a
  // number holds exactly come back as numbers.
  assert.deepEqual(Array.from(encodeDataFrame([2 ** 40])), [0xcf, 0, 0, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(encodeDataFrame([{ a: [-(2 ** 33)] }])).slice(0, 4), [0x81, 0xa1, 0x61, 0x91]);
  assert.equal(encodeDataFrame([{ a: [-(2 ** 33)] }])[4], 0xd3);
  assert.deepEqual(decodeDataFrame(Uint8Array.of(0xcf, 0, 0, 0, 0, 0, 0, 0, 5, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb)),
                   [5, -5]);
  assert.deepEqual(decodeDataFrame(encodeDataFrame([2n ** 53n, [-(2n ** 53n)]])), [2n ** 53n, [-(2n ** 53n)]]);
  assert.throws(() => decodeDataFrame(Uint8Array.of(0xd4, 1, 0)), DataFrameError);      // ext
  assert.throws(() => decodeDataFrame(Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff)), DataFrameError);
  assert.throws(() => decodeDataFrame(Uint8Array.of(0xc1)), DataFrameError);           // never used
  assert.throws(() => decodeDataFrame(Uint8Array.of(0x81, 1, 2)), DataFrameError);     // int key
  const limits = { maxDepth: 3, maxElements: 10, maxValues: 100, maxBytes: 100 };
  assert.deepEqual(decodeDataFrame(encodeDataFrame([[[[1]]]]), limits), [[[[1]]]]);  // 3 deep
  assert.throws(() => decodeDataFrame(encodeDataFrame([[[[[1]]]]]), limits), (e) => e.overLimit);
  // Headers announcing more than the bytes left are refused before anything is allocated:
  // 2,000 nested arrays of 16,383 elements each, in 6 KB.
  const bomb = new Uint8Array(6000);
  for (let i = 0; i < bomb.length; i += 3) bomb.set([0xdc, 0x3f, 0xff], i);
  assert.throws(() => decodeDataFrame(bomb), (e) => e instanceof DataFrameError && !e.overLimit);
  assert.throws(() => decodeDataFrame(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 1)), DataFrameError);
  assert.throws(() => decodeDataFrame(Uint8Array.of(0x92, 1)), DataFrameError);  // truncated
  assert.throws(() => decodeDataFrame(encodeDataFrame([Array(11).fill(0)]), limits));
  assert.throws(() => decodeDataFrame(new Uint8Array(101), limits), (e) => e.overLimit);
});

// Random bytes into every decoder: each either decodes or fails with its own typed error, and
// never throws anything else or runs away (a fuzz pass over the pure parts; seeded, so a
// failure repeats).
test('random input into every decoder fails only with typed errors', () => {
  let seed = 0x2545f491;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
  const bytes = (n) => Uint8Array.from({ length: n }, random);
  const mark = parseMark();
  for (let i = 0; i < 3000; ++i) {
    const input = bytes(1 + (random() % 64));
    // Half of the frames start with the real mark, so lengths and tails are reached.
    if (i % 2) input.set(mark.head.subarray(0, Math.min(4, input.length)));
    const reader = new FrameReader(mark, 32);
    try {
      reader.push(input);
      while (reader.next());
    } catch (e) {
      assert.ok(e instanceof FrameError, String(e));
    }
    parseMessage(input);  // null or a message, never a throw
    for (const codec of [1, 2]) {
      try {
        decompress(codec, input, 1024);
      } catch (e) {
        assert.ok(e instanceof DecompressError, String(e));
      }
    }
    try {
      decodeDataFrame(input, { maxDepth: 8, maxElements: 64, maxValues: 256, maxBytes: 64 });
    } catch (e) {
      assert.ok(e instanceof DataFrameError, String(e));
    }
  }
});
