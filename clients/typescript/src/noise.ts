// Noise (revision 34) for the initiator side of Noise_NK and Noise_XX with X25519,
// ChaCha20-Poly1305 and BLAKE2b, on the audited @noble libraries. docs/protocol.md, "Handshake".
import { chacha20poly1305 } from '@noble/ciphers/chacha';
import { x25519 } from '@noble/curves/ed25519';
import { blake2b } from '@noble/hashes/blake2b';
import { hmac } from '@noble/hashes/hmac';

import { concat, utf8 } from './bytes.js';

const HASH_LEN = 64;
const TAG_LEN = 16;
const KEY_LEN = 32;
const EMPTY = new Uint8Array(0);
const MAX_NONCE = 2n ** 64n - 1n;  // reserved for Rekey()

export type Pattern = 'NK' | 'XX';
export const protocolName = (p: Pattern): string => `Noise_${p}_25519_ChaChaPoly_BLAKE2b`;

export interface KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}
export function keyPair(privateKey: Uint8Array = x25519.utils.randomPrivateKey()): KeyPair {
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

const hash = (...parts: Uint8Array[]) => blake2b(concat(parts));
const hmacHash = (key: Uint8Array, ...parts: Uint8Array[]) => hmac(blake2b, key, concat(parts));

function hkdf(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmacHash(ck, ikm);
  const out1 = hmacHash(temp, Uint8Array.of(1));
  return [out1, hmacHash(temp, out1, Uint8Array.of(2))];
}

// ChaCha20-Poly1305 (IETF): 32 zero bits, then the 64-bit counter little-endian.
function nonce(n: bigint): Uint8Array {
  const out = new Uint8Array(12);
  new DataView(out.buffer).setBigUint64(4, n, true);
  return out;
}

/** One direction's key and nonce. Open throws on a tag that does not verify. */
export class CipherState {
  private n = 0n;
  constructor(private key: Uint8Array) {}
  seal(plaintext: Uint8Array, ad: Uint8Array = EMPTY): Uint8Array {
    if (this.n >= MAX_NONCE - 1n) throw new Error('nonces exhausted');
    return chacha20poly1305(this.key, nonce(this.n++), ad).encrypt(plaintext);
  }
  open(ciphertext: Uint8Array, ad: Uint8Array = EMPTY): Uint8Array {
    if (this.n >= MAX_NONCE - 1n) throw new Error('nonces exhausted');
    const plaintext = chacha20poly1305(this.key, nonce(this.n), ad).decrypt(ciphertext);
    this.n++;  // only once it verified: a forged message does not move the nonce
    return plaintext;
  }
  rekey(): void {
    const zeros = new Uint8Array(KEY_LEN);
    this.key = chacha20poly1305(this.key, nonce(MAX_NONCE)).encrypt(zeros).subarray(0, KEY_LEN);
  }
}

/**
 * The initiator's handshake. NK: write(), read(), done. XX: write(), read() (which learns the
 * responder's static key: check it before going on), write(), done. Then split().
 */
export class Initiator {
  private h: Uint8Array;
  private ck: Uint8Array;
  private k: CipherState | null = null;
  private re: Uint8Array | null = null;
  private step = 0;
  private readonly local: KeyPair | null;
  private readonly e: KeyPair;
  /** The responder's static public key: known up front (NK) or learnt by read() (XX). */
  remoteStatic: Uint8Array | null;

  constructor(readonly pattern: Pattern, prologue: Uint8Array, options: {
    remoteStatic?: Uint8Array;  // NK: required
    localStatic?: KeyPair;      // XX: required
    ephemeral?: KeyPair;        // tests only: a fixed ephemeral key
  }) {
    const name = utf8(protocolName(pattern));
    this.h = name.length <= HASH_LEN ? concat([name, new Uint8Array(HASH_LEN - name.length)])
                                     : hash(name);
    this.ck = this.h;
    this.remoteStatic = options.remoteStatic ?? null;
    this.local = options.localStatic ?? null;
    this.e = options.ephemeral ?? keyPair();
    if (pattern === 'NK' && !this.remoteStatic) throw new Error('NK needs the server key');
    if (pattern === 'XX' && !this.local) throw new Error('XX needs a static key');
    this.mixHash(prologue);
    if (pattern === 'NK') this.mixHash(this.remoteStatic!);
  }
  get messagesLeft(): number {
    return (this.pattern === 'NK' ? 2 : 3) - this.step;
  }
  get writesNext(): boolean {
    return this.step % 2 === 0;
  }

  write(payload: Uint8Array = EMPTY): Uint8Array {
    if (!this.writesNext || this.messagesLeft === 0) throw new Error('not the initiator\'s turn');
    const out: Uint8Array[] = [];
    if (this.step === 0) {
      out.push(this.e.publicKey);
      this.mixHash(this.e.publicKey);
      if (this.pattern === 'NK') this.mixKey(x25519.getSharedSecret(this.e.privateKey, this.remoteStatic!));
    } else {  // XX, message 3: s, se
      out.push(this.encryptAndHash(this.local!.publicKey));
      this.mixKey(x25519.getSharedSecret(this.local!.privateKey, this.re!));
    }
    out.push(this.encryptAndHash(payload));
    this.step++;
    return concat(out);
  }

  /** Reads the responder's message; throws when it does not verify. Returns its payload. */
  read(message: Uint8Array): Uint8Array {
    if (this.writesNext || this.messagesLeft === 0) throw new Error('not the responder\'s turn');
    const staticLen = this.pattern === 'XX' ? KEY_LEN + TAG_LEN : 0;
    if (message.length < KEY_LEN + staticLen + TAG_LEN) throw new Error('handshake message too short');
    this.re = message.subarray(0, KEY_LEN);
    this.mixHash(this.re);
    this.mixKey(x25519.getSharedSecret(this.e.privateKey, this.re));
    let at = KEY_LEN;
    if (this.pattern === 'XX') {
      this.remoteStatic = this.decryptAndHash(message.subarray(at, at + staticLen));
      at += staticLen;
      this.mixKey(x25519.getSharedSecret(this.e.privateKey, this.remoteStatic));
    }
    const payload = this.decryptAndHash(message.subarray(at));
    this.step++;
    return payload;
  }

  /** After the last message: [initiator → responder, responder → initiator]. */
  split(): [CipherState, CipherState] {
    if (this.messagesLeft !== 0) throw new Error('the handshake is not finished');
    const [k1, k2] = hkdf(this.ck, EMPTY);
    return [new CipherState(k1.subarray(0, KEY_LEN)), new CipherState(k2.subarray(0, KEY_LEN))];
  }

  private mixHash(data: Uint8Array): void {
    this.h = hash(this.h, data);
  }
  private mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.ck, ikm);
    this.ck = ck;
    this.k = new CipherState(k.subarray(0, KEY_LEN));
  }
  private encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const out = this.k ? this.k.seal(plaintext, this.h) : plaintext;
    this.mixHash(out);
    return out;
  }
  private decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const out = this.k ? this.k.open(ciphertext, this.h) : ciphertext;
    this.mixHash(ciphertext);
    return out;
  }
}
