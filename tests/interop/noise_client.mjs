// An independent Hawser client written from docs/protocol.md alone, on Node's own crypto
// (X25519, ChaCha20-Poly1305, BLAKE2b): Noise NK handshake, then console calls over the
// transport's pieces and records. It checks that the document is enough to interoperate.
// With a ws:// URL it goes through a WebSocket upgrade, as a browser does (Node's own WebSocket,
// `node --experimental-websocket` on Node 20): the same bytes, in binary messages.
//   node noise_client.mjs HOST PORT SERVER_PUBLIC_KEY_HEX [ws://HOST:PORT/PATH]
import crypto from 'node:crypto';
import net from 'node:net';

const [host, port, serverKeyHex, webSocketUrl] = process.argv.slice(2);
const HEAD = Buffer.from('HWSR'), TAIL = Buffer.from('hwsr');
const VERSION = 2, MODE_NK = 1;
const PROTOCOL = 'Noise_NK_25519_ChaChaPoly_BLAKE2b';
const MAX_PIECE = 65535 - 16 - 1;

function fail(why) {
  console.error('FAIL: ' + why);
  process.exit(1);
}

// --- Noise (revision 34): BLAKE2b, HKDF with HMAC-BLAKE2b, ChaCha20-Poly1305 ---
const hash = (...parts) => crypto.createHash('blake2b512').update(Buffer.concat(parts)).digest();
const hmac = (key, ...parts) =>
  crypto.createHmac('blake2b512', key).update(Buffer.concat(parts)).digest();
function hkdf(ck, ikm) {
  const temp = hmac(ck, ikm);
  const out1 = hmac(temp, Buffer.from([1]));
  const out2 = hmac(temp, out1, Buffer.from([2]));
  return [out1, out2];
}
function nonce(n) {
  const b = Buffer.alloc(12);
  b.writeBigUInt64LE(BigInt(n), 4);
  return b;
}
function encrypt(k, n, ad, plaintext) {
  const c = crypto.createCipheriv('chacha20-poly1305', k, nonce(n), { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}
function decrypt(k, n, ad, ciphertext) {
  const d = crypto.createDecipheriv('chacha20-poly1305', k, nonce(n), { authTagLength: 16 });
  d.setAAD(ad, { plaintextLength: ciphertext.length - 16 });
  d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  return Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
}
class Cipher {
  constructor(k) { this.k = k; this.n = 0; }
  seal(pt) { return encrypt(this.k, this.n++, Buffer.alloc(0), pt); }
  open(ct) { return decrypt(this.k, this.n++, Buffer.alloc(0), ct); }
  rekey() {
    const max = Buffer.alloc(12, 0xff);
    max.fill(0, 0, 4);
    const c = crypto.createCipheriv('chacha20-poly1305', this.k, max, { authTagLength: 16 });
    this.k = Buffer.concat([c.update(Buffer.alloc(32)), c.final()]).subarray(0, 32);
  }
}
function x25519Keys() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519');
  return { publicKey, privateKey, raw: publicKey.export({ format: 'der', type: 'spki' }).subarray(12) };
}
function dh(privateKey, rawPublic) {
  const spki = Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), rawPublic]);
  const publicKey = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return crypto.diffieHellman({ privateKey, publicKey });
}

// --- framing ---
function frame(body) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([HEAD, len, body, TAIL]);
}

// --- messages (docs/protocol.md, "Message header") ---
function varint(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    out.push(n ? b | 0x80 : b);
  } while (n);
  return Buffer.from(out);
}
function callConsole(id, name, text) {
  const n = Buffer.from(name), p = Buffer.from(text);
  return Buffer.concat([Buffer.from([1, 0]), varint(id), Buffer.from([n.length]), n, p]);
}
function parseMessage(m) {
  let i = 2, id = 0, shift = 1;
  for (;;) {
    const b = m[i++];
    id += (b & 0x7f) * shift;
    shift *= 128;
    if (!(b & 0x80)) break;
  }
  const nameLength = m[i++];
  return { kind: m[0], flags: m[1], id, payload: m.subarray(i + nameLength) };
}

// --- the connection ---
const serverKey = Buffer.from(serverKeyHex, 'hex');
const prologue = Buffer.concat([Buffer.from(`Hawser/${VERSION} ${PROTOCOL} `), HEAD, TAIL]);
let h = Buffer.concat([Buffer.from(PROTOCOL), Buffer.alloc(64 - PROTOCOL.length)]);
let ck = h, k = null;
const mixHash = (data) => { h = hash(h, data); };
const mixKey = (ikm) => { const [a, b] = hkdf(ck, ikm); ck = a; k = b.subarray(0, 32); };
mixHash(prologue);
mixHash(serverKey);  // NK: the responder's static key is known in advance
const e = x25519Keys();
mixHash(e.raw);
mixKey(dh(e.privateKey, serverKey));
const tag1 = encrypt(k, 0, h, Buffer.alloc(0));  // the empty payload, n = 0 after MixKey
mixHash(tag1);

// The byte stream under the protocol: a TCP socket, or binary WebSocket messages.
function tcpLink() {
  const s = net.connect(Number(port), host);
  s.setNoDelay(true);
  return {
    write: (bytes) => s.write(bytes),
    onData: (f) => s.on('data', f),
    onError: (f) => s.on('error', f),
    end: () => s.end(),
  };
}
function webSocketLink(url) {
  if (typeof WebSocket === 'undefined') fail('no WebSocket in this Node (run it with --experimental-websocket)');
  const ws = new WebSocket(url, 'hawser');
  ws.binaryType = 'arraybuffer';
  const early = [];
  ws.addEventListener('open', () => {
    if (ws.protocol !== 'hawser') fail(`the server chose subprotocol '${ws.protocol}'`);
    early.forEach((b) => ws.send(b));
    early.length = 0;
  });
  return {
    write: (bytes) => (ws.readyState === WebSocket.OPEN ? ws.send(bytes) : early.push(bytes)),
    onData: (f) => ws.addEventListener('message', (m) => {
      if (typeof m.data === 'string') fail('a text message from the server');
      f(Buffer.from(m.data));
    }),
    onError: (f) => ws.addEventListener('error', () => f(new Error('websocket error'))),
    end: () => ws.close(1000),
  };
}
const socket = webSocketUrl ? webSocketLink(webSocketUrl) : tcpLink();
socket.write(frame(Buffer.concat([Buffer.from([VERSION, MODE_NK]), e.raw, tag1])));

let send = null, recv = null, nextId = 1, rekeys = 0;
const pending = new Map();  // id -> resolve
let input = Buffer.alloc(0);
let stream = Buffer.alloc(0);  // the message stream: record bytes not yet complete

function onFrame(body) {
  if (!recv) {  // the server's handshake reply: e, ee
    if (body.length !== 48) fail(`handshake reply of ${body.length} bytes`);
    const re = body.subarray(0, 32);
    mixHash(re);
    mixKey(dh(e.privateKey, re));
    decrypt(k, 0, h, body.subarray(32));  // throws on a bad tag
    mixHash(body.subarray(32));
    const [k1, k2] = hkdf(ck, Buffer.alloc(0));
    send = new Cipher(k1.subarray(0, 32));
    recv = new Cipher(k2.subarray(0, 32));
    start();
    return;
  }
  const piece = recv.open(body);
  if (piece[0] === 2) return recv.rekey(), rekeys++;
  if (piece[0] !== 0) fail(`unknown piece type ${piece[0]}`);
  stream = Buffer.concat([stream, piece.subarray(1)]);
  while (stream.length >= 4 && stream.length >= 4 + stream.readUInt32BE(0)) {
    const message = stream.subarray(4, 4 + stream.readUInt32BE(0));
    stream = stream.subarray(4 + message.length);
    const m = parseMessage(message);
    if (m.kind === 9) fail('goodbye: ' + m.payload.subarray(2).toString());
    if (m.kind !== 5 && m.kind !== 6) continue;
    if (m.flags !== 0) fail('a compressed reply (this client asks for none)');
    pending.get(m.id)?.({ ok: m.kind === 5, text: m.payload.toString() });
    pending.delete(m.id);
  }
}

socket.onData((data) => {
  input = Buffer.concat([input, data]);
  while (input.length >= 8) {
    if (!input.subarray(0, 4).equals(HEAD)) fail('bad head mark');
    const length = input.readUInt32BE(4);
    if (input.length < 12 + length) break;
    if (!input.subarray(8 + length, 12 + length).equals(TAIL)) fail('bad tail mark');
    const body = input.subarray(8, 8 + length);
    input = input.subarray(12 + length);
    onFrame(body);
  }
});
socket.onError((err) => fail(err.message));

// Several records per piece, and records spanning pieces: the two things version 2 changed.
function sendMessages(messages) {
  let data = Buffer.concat(messages.map((m) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(m.length);
    return Buffer.concat([len, m]);
  }));
  const frames = [];
  while (data.length) {
    const part = data.subarray(0, MAX_PIECE);
    data = data.subarray(part.length);
    frames.push(frame(send.seal(Buffer.concat([Buffer.from([0]), part]))));
  }
  socket.write(Buffer.concat(frames));
}
function call(name, text) {
  const id = nextId++;
  return { id, message: callConsole(id, name, text), reply: new Promise((r) => pending.set(id, r)) };
}

async function start() {
  const a = call('hello', 'one'), b = call('hello', 'two'), c = call('hello', 'three');
  sendMessages([a.message, b.message, c.message]);  // one piece, three records
  const big = 'x'.repeat(200000);
  const d = call('hello', big);
  sendMessages([d.message]);  // four pieces, one record
  const replies = await Promise.all([a.reply, b.reply, c.reply, d.reply]);
  const want = ['hello, one', 'hello, two', 'hello, three', 'hello, ' + big];
  replies.forEach((r, i) => {
    if (!r.ok || r.text !== want[i]) fail(`reply ${i}: ${r.text.slice(0, 60)}`);
  });
  if (rekeys === 0) fail('the server was set to rekey every two messages; no rekey piece came');
  console.log(`independent client${webSocketUrl ? ' over WebSocket' : ''}: handshake, batched ` +
              `and spanning records, ${rekeys} rekey(s): ok`);
  socket.end();
  process.exit(0);
}

setTimeout(() => fail('timed out'), 20000).unref();
