// One connection over a Link: the Noise handshake, the secure transport (pieces, records,
// rekeying) and the session (calls both ways, directs, pings, goodbye). Everything runs on the
// JavaScript event loop that delivers the link's events; nothing here blocks or sleeps.
import { concat, equal, readU32, text, toHex, u32, utf8 } from './bytes.js';
import type { Commands } from './commands.js';
import { Compression, DecompressError, decompress } from './compression.js';
import { type DataFrame, DataFrameError, type DecodeLimits, decodeDataFrame, encodeDataFrame } from './dataframe.js';
import { CloseReason, Errc, HawserError, closeReasonName } from './errors.js';
import { FrameError, FrameReader, type Mark, frame } from './frames.js';
import type { Link } from './links.js';
import { Kind, type Message, codeAndText, encodeMessage, parseMessage } from './messages.js';
import { type CipherState, Initiator, type KeyPair, type Pattern, keyPair, protocolName } from './noise.js';

const VERSION = 2;
const MAX_NOISE_MESSAGE = 65535;
const MAX_PIECE_DATA = MAX_NOISE_MESSAGE - 16 - 1;
const PIECE_DATA = 0;
const PIECE_REKEY = 2;
const MAX_TIMER_MS = 2 ** 31 - 1;

// A close reason the protocol knows, or `otherwise` (docs/protocol.md: an unknown code or 0).
const knownReason = (code: number, otherwise: number): number =>
  code > 0 && code <= CloseReason.websocket_error ? code : otherwise;

export interface ConnectionSettings {
  mark: Mark;
  pattern: Pattern;
  serverKey?: Uint8Array;   // pinned (required for NK)
  localStatic?: KeyPair;    // XX
  maxFrameBytes: number;
  maxPendingCalls: number;
  maxSendQueueBytes: number;
  maxDecompressedBytes: number;
  dataframe: DecodeLimits;
  handshakeMs: number;
  idleMs: number;           // 0: never
  heartbeatMs: number;      // 0: never
  rekeyMessages: number;
  rekeyMs: number;
  report: (what: string, error: unknown) => void;  // failures no caller sees; never throws
}

interface PendingCall {
  resolve: (payload: Uint8Array) => void;
  reject: (error: HawserError) => void;
  timer: ReturnType<typeof setTimeout>;
}

// Messages of the message stream arrive in type-0 pieces: length (4) | message, cut anywhere.
class RecordReader {
  private head = new Uint8Array(4);
  private headHave = 0;
  private parts: Uint8Array[] = [];
  private have = 0;
  private want = -1;
  constructor(private readonly limit: number) {}

  /** The messages completed by these bytes; throws FrameError on a bad length. */
  push(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < data.length) {
      if (this.want < 0) {
        const n = Math.min(4 - this.headHave, data.length - at);
        this.head.set(data.subarray(at, at + n), this.headHave);
        this.headHave += n;
        at += n;
        if (this.headHave < 4) break;
        this.want = readU32(this.head, 0);
        this.headHave = 0;
        if (this.want === 0) throw new FrameError(CloseReason.malformed, 'an empty message');
        if (this.want > this.limit)
          throw new FrameError(CloseReason.too_large, `a message of ${this.want} bytes`);
        continue;
      }
      const n = Math.min(this.want - this.have, data.length - at);
      this.parts.push(data.subarray(at, at + n));
      this.have += n;
      at += n;
      if (this.have === this.want) {
        out.push(concat(this.parts));
        this.parts = [];
        this.have = 0;
        this.want = -1;
      }
    }
    return out;
  }
}

export class Connection {
  /** Resolves once the handshake is done; rejects with why it failed. */
  readonly established: Promise<void>;
  /** Runs once, when the connection ends for any reason. */
  onClose: (reason: number, text: string) => void = () => {};
  closeReason: number = CloseReason.none;
  closeText = '';
  /** Closed by this side's close(), not by the server or a failure. */
  closedHere = false;
  /** The server's static public key, 64 hex digits, once the handshake is done. */
  serverKey = '';

  private state: 'handshake' | 'open' | 'closed' = 'handshake';
  private readonly frames: FrameReader;
  private readonly records: RecordReader;
  private handshake: Initiator | null;
  private send: CipherState | null = null;
  private recv: CipherState | null = null;
  private outbox: Uint8Array[] = [];
  private outboxBytes = 0;
  private flushQueued = false;
  private nextId = 1n;
  private readonly calls = new Map<bigint, PendingCall>();
  private callsServing = 0;
  private directsRunning = 0;
  private confirming: bigint | null = null;  // the ping confirmed() waits for
  private highestPeerStream = 0n;
  private sealedSinceRekey = 0;
  private rekeyedAt = Date.now();
  private lastReceived = Date.now();
  private lastSent = Date.now();
  private readonly timers: ReturnType<typeof setTimeout>[] = [];
  private settle: { resolve: () => void; reject: (e: HawserError) => void } | null = null;

  constructor(private readonly link: Link, private readonly settings: ConnectionSettings,
              private readonly commands: Commands) {
    this.established = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Handshake replies and a refusal in clear are small: a body of one Noise message at most.
    this.frames = new FrameReader(settings.mark, Math.min(settings.maxFrameBytes, MAX_NOISE_MESSAGE));
    this.records = new RecordReader(settings.maxFrameBytes);
    const name = protocolName(settings.pattern);
    const prologue = concat([utf8(`Hawser/${VERSION} ${name} `), settings.mark.head, settings.mark.tail]);
    this.handshake = new Initiator(settings.pattern, prologue, {
      remoteStatic: settings.serverKey,
      // XX without a key of this client's own: a fresh one for this connection.
      localStatic: settings.localStatic ?? (settings.pattern === 'XX' ? keyPair() : undefined),
    });
    link.onData = (bytes) => this.received(bytes);
    link.onClose = (error) =>
      this.finish(error ? CloseReason.io_error : CloseReason.peer_closed,
                  error ?? 'the server closed the connection', false);
    const mode = settings.pattern === 'NK' ? 1 : 2;
    link.write(frame(settings.mark, concat([Uint8Array.of(VERSION, mode), this.handshake.write()])));
    this.timers.push(setTimeout(() => this.finish(CloseReason.handshake_timeout,
                                                  'the handshake did not finish in time', false),
                                settings.handshakeMs));
  }

  get open(): boolean {
    return this.state === 'open';
  }
  private get running(): boolean {
    return this.state !== 'closed';
  }

  /** A call: resolves with the reply's payload (decompressed), rejects with a HawserError. */
  call(kind: number, command: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      if (this.state !== 'open') return reject(this.notOpen());
      if (this.calls.size >= this.settings.maxPendingCalls)
        return reject(new HawserError(Errc.too_many_pending, `${this.calls.size} calls in flight`));
      const id = this.nextId++;
      const message = encodeMessage(kind, id, command, payload);
      if (message.length > this.settings.maxFrameBytes)
        return reject(new HawserError(Errc.limit_exceeded, `a call of ${message.length} bytes`));
      // setTimeout takes at most 2^31-1 ms (about 24.8 days); past that it would fire at once.
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new HawserError(Errc.timeout, `no reply to ${command} in ${timeoutMs} ms`));
      }, Math.min(Math.max(timeoutMs, 0), MAX_TIMER_MS));
      this.calls.set(id, { resolve, reject, timer });
      this.queue(message);
    });
  }

  /** A one-way command; throws a HawserError when the connection is not open. */
  sendDirect(kind: number, command: string, payload: Uint8Array): void {
    if (this.state !== 'open') throw this.notOpen();
    const message = encodeMessage(kind, 0n, command, payload);
    if (message.length > this.settings.maxFrameBytes)
      throw new HawserError(Errc.limit_exceeded, `a message of ${message.length} bytes`);
    this.queue(message);
  }

  /** Resolves once the server answers a ping sent now: it has taken the handshake (a server
   *  that refuses this client's key, or redirects it, says so before any answer). Rejects with
   *  the close reason if the connection ends first, or `timeout` after `ms`. */
  confirmed(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.state !== 'open') return reject(this.notOpen());
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new HawserError(Errc.timeout, `the server did not answer in ${ms} ms`));
      }, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
      // Kept with the calls, so that the end of the connection rejects it with its reason.
      this.calls.set(id, { resolve: () => resolve(), reject, timer });
      this.confirming = id;
      this.queue(encodeMessage(Kind.ping, id, '', new Uint8Array(0)));
    });
  }

  /** Says goodbye (when open) and closes once what is queued is written. */
  close(reason: number = CloseReason.local_close, why = ''): void {
    if (this.state !== 'closed') this.closedHere = true;
    this.finish(reason, why, true);
  }

  // --- receiving ---

  private received(bytes: Uint8Array): void {
    if (this.state === 'closed') return;
    this.lastReceived = Date.now();
    try {
      this.frames.push(bytes);
      for (let body; this.running && (body = this.frames.next());) {
        if (this.state === 'handshake') this.handshakeFrame(body);
        else this.transportFrame(body);
      }
    } catch (e) {
      if (e instanceof FrameError) this.finish(e.reason, e.message, true);
      else this.finish(CloseReason.internal_error, String(e), false);
    }
  }

  private handshakeFrame(body: Uint8Array): void {
    const hs = this.handshake!;
    try {
      // Handshake payloads are empty (docs/protocol.md): a reply carrying one is not Hawser's.
      if (hs.read(body).length !== 0) throw new Error('a handshake payload');
    } catch (e) {
      // A refusal comes as a goodbye in clear (a plaintext message), never as a Noise message.
      const clear = parseMessage(body);
      if (clear && clear.kind === Kind.goodbye && clear.flags === 0 && clear.payload.length >= 2)
        return this.finish(knownReason((clear.payload[0] << 8) | clear.payload[1],
                                       CloseReason.handshake_failed),
                           text(clear.payload.subarray(2)), false);
      return this.finish(CloseReason.handshake_failed, `the server's handshake message: ${(e as Error).message}`, false);
    }
    const learnt = hs.remoteStatic!;
    if (this.settings.serverKey && !equal(learnt, this.settings.serverKey))
      return this.finish(CloseReason.handshake_failed, 'the server\'s key is not the pinned one', false);
    if (hs.messagesLeft > 0) this.link.write(frame(this.settings.mark, hs.write()));
    [this.send, this.recv] = hs.split();
    this.handshake = null;
    this.serverKey = toHex(learnt);
    this.state = 'open';
    this.frames.maxBody = MAX_NOISE_MESSAGE;
    clearTimeout(this.timers.pop());
    const period = Math.min(1000, Math.max(50, Math.min(this.settings.idleMs || 1e9,
                                                        this.settings.heartbeatMs || 1e9) / 4));
    this.timers.push(setInterval(() => this.tick(), period));
    for (const t of this.timers) (t as { unref?: () => void }).unref?.();
    this.settle?.resolve();
  }

  private transportFrame(body: Uint8Array): void {
    let piece: Uint8Array;
    try {
      piece = this.recv!.open(body);
    } catch {
      return this.finish(CloseReason.bad_mac, 'a transport message failed authentication', false);
    }
    if (piece.length === 0) throw new FrameError(CloseReason.malformed, 'an empty piece');
    if (piece[0] === PIECE_REKEY && piece.length === 1) return this.recv!.rekey();
    if (piece[0] !== PIECE_DATA) throw new FrameError(CloseReason.malformed, `a piece of type ${piece[0]}`);
    for (const message of this.records.push(piece.subarray(1))) {
      this.dispatch(message);
      if (this.state !== 'open') return;
    }
  }

  private dispatch(bytes: Uint8Array): void {
    const m = parseMessage(bytes);
    if (!m) throw new FrameError(CloseReason.malformed, 'a message header that does not parse');
    const codec = m.flags & 3;
    if (m.flags & ~3 || codec === 3 || (codec && m.kind > Kind.reply && m.kind !== Kind.stream_data))
      throw new FrameError(CloseReason.malformed, `flags ${m.flags} on a message of kind ${m.kind}`);
    if (codec !== Compression.none) {
      try {
        m.payload = decompress(codec, m.payload, this.settings.maxDecompressedBytes);
      } catch (e) {
        const tooLarge = e instanceof DecompressError && e.tooLarge;
        throw new FrameError(tooLarge ? CloseReason.too_large : CloseReason.malformed, (e as Error).message);
      }
    }
    switch (m.kind) {
      case Kind.call_console:
      case Kind.call_dataframe:
      case Kind.direct_console:
      case Kind.direct_dataframe:
        return this.serve(m);
      case Kind.reply:
      case Kind.error:
        return this.answered(m);
      case Kind.ping:
        return this.queue(encodeMessage(Kind.pong, m.id, '', new Uint8Array(0)));
      case Kind.pong:
        if (m.id !== this.confirming) return;  // a heartbeat's
        this.confirming = null;
        return this.answered({ ...m, kind: Kind.reply });
      case Kind.goodbye: {
        const code = m.payload.length >= 2 ? (m.payload[0] << 8) | m.payload[1] : 0;
        return this.finish(knownReason(code, CloseReason.peer_closed), text(m.payload.subarray(2)), false);
      }
      default:
        return this.stream(m);
    }
  }

  private answered(m: Message): void {
    // This side numbers its calls (and pings) from 1 up: an answer to any other id answers
    // nothing it asked (docs/protocol.md); one to a call that ended already is late, and dropped.
    if (m.id === 0n || m.id >= this.nextId)
      throw new FrameError(CloseReason.protocol_error, 'a reply to a call never made');
    if (m.kind === Kind.error && m.payload.length < 2)
      throw new FrameError(CloseReason.malformed, 'an error without a code');
    const call = this.calls.get(m.id);
    if (!call) return;  // timed out already
    this.calls.delete(m.id);
    clearTimeout(call.timer);
    if (m.kind === Kind.reply) return call.resolve(m.payload);
    const code = (m.payload[0] << 8) | m.payload[1];
    call.reject(new HawserError(code || Errc.handler_error, text(m.payload.subarray(2))));
  }

  // The server's calls and one-way commands, to this side's Commands.
  private serve(m: Message): void {
    const command = text(m.name);
    const handler = this.commands.find(command);
    const isCall = m.kind === Kind.call_console || m.kind === Kind.call_dataframe;
    const dataframe = m.kind === Kind.call_dataframe || m.kind === Kind.direct_dataframe;
    const fail = (code: number, why: string) => {
      if (isCall) this.queue(encodeMessage(Kind.error, m.id, '', codeAndText(code, why)));
      else this.settings.report(`one-way command ${command}`, new HawserError(code, why));
    };
    if (!handler) return fail(Errc.unknown_command, `unknown command '${command}'`);
    const wanted = isCall ? (dataframe ? 'dataframe' : 'console')
                          : (dataframe ? 'direct_dataframe' : 'direct_console');
    if (handler.kind !== wanted) return fail(Errc.wrong_kind, `'${command}' is a ${handler.kind} command`);
    if (isCall && this.callsServing >= this.settings.maxPendingCalls)
      return fail(Errc.too_many_pending, 'too many calls running');
    let argument: string | DataFrame;
    try {
      argument = dataframe ? decodeDataFrame(m.payload, this.settings.dataframe) : text(m.payload);
    } catch (e) {
      const over = e instanceof DataFrameError && e.overLimit;
      return fail(over ? Errc.limit_exceeded : Errc.bad_payload, (e as Error).message);
    }
    const request = { command };
    if (!isCall) {
      // Async one-way handlers still running are bounded like the calls being served: past the
      // bound a message is dropped and reported (a push flood onto a slow handler). The handler
      // runs now, so that one read's messages count as they start; those that return at once
      // count for nothing.
      if (this.directsRunning >= this.settings.maxPendingCalls)
        return fail(Errc.overloaded, 'too many one-way handlers running');
      let r: unknown;
      try {
        r = (handler.run as (a: typeof argument, r: typeof request) => unknown)(argument, request);
      } catch (e) {
        return this.settings.report(`one-way command ${command}`, e);
      }
      // A handler may be async although its type says void: its rejection is reported too.
      if (r instanceof Promise) {
        this.directsRunning++;
        r.catch((e) => this.settings.report(`one-way command ${command}`, e))
          .finally(() => this.directsRunning--);
      }
      return;
    }
    this.callsServing++;
    const id = m.id;
    Promise.resolve()
      .then(() => (handler.run as (a: typeof argument, r: typeof request) => unknown)(argument, request))
      .then((result) => {
        if (this.state !== 'open') return;
        const payload = dataframe ? encodeDataFrame(result as DataFrame) : utf8(String(result));
        const reply = encodeMessage(Kind.reply, id, '', payload);
        // Too big for the peer to take: the call fails, not the connection.
        if (reply.length > this.settings.maxFrameBytes)
          throw new HawserError(Errc.limit_exceeded, `a reply of ${reply.length} bytes`);
        this.queue(reply);
      })
      .catch((e) => {
        if (this.state !== 'open') return;
        if (e instanceof HawserError) {
          this.queue(encodeMessage(Kind.error, id, '', codeAndText(e.code, e.detail)));
        } else {
          this.settings.report(`command ${command}`, e);
          this.queue(encodeMessage(Kind.error, id, '', codeAndText(Errc.handler_error, 'handler failed')));
        }
      })
      .finally(() => this.callsServing--);
  }

  // This client opens no big streams and takes none: a server's stream is refused, and what
  // follows for it is ignored (docs/protocol.md, "Big streams").
  private stream(m: Message): void {
    if (m.kind === Kind.stream_open) {
      if (m.id % 2n !== 0n || m.id <= this.highestPeerStream)
        throw new FrameError(CloseReason.protocol_error, `a stream id ${m.id} out of order`);
      this.highestPeerStream = m.id;
      return this.queue(encodeMessage(Kind.stream_reset, m.id, '',
                                      codeAndText(Errc.not_allowed, 'this client takes no big streams')));
    }
    const ours = m.kind === Kind.stream_accept || m.kind === Kind.stream_window;
    if (m.kind === Kind.stream_window && m.id === 0n) return;
    // This side opened none, so a message about a client (odd) id is about no stream.
    if (ours || m.id === 0n || m.id % 2n !== 0n || m.id > this.highestPeerStream)
      throw new FrameError(CloseReason.protocol_error, `a stream message about unknown stream ${m.id}`);
    // Every stream was refused, so nothing was granted: any data is past the window.
    if (m.kind === Kind.stream_data && m.payload.length > 0)
      throw new FrameError(CloseReason.protocol_error, `data on stream ${m.id}, which was granted none`);
  }

  // --- sending ---

  // `bounded` false only for the goodbye, which must go even when the queue is full.
  private queue(message: Uint8Array, bounded = true): void {
    if (this.state !== 'open') return;
    this.outbox.push(u32(message.length), message);
    this.outboxBytes += 4 + message.length;
    if (bounded && this.outboxBytes + this.link.buffered() > this.settings.maxSendQueueBytes)
      return this.finish(CloseReason.slow_consumer, 'the send queue is full', false);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  // Everything queued in this turn of the event loop leaves in as few pieces as it fits in.
  private flush(): void {
    this.flushQueued = false;
    if (!this.outbox.length || !this.send) return;
    const data = concat(this.outbox);
    this.outbox = [];
    this.outboxBytes = 0;
    const frames: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += MAX_PIECE_DATA) {
      if (this.sealedSinceRekey >= this.settings.rekeyMessages ||
          Date.now() - this.rekeyedAt >= this.settings.rekeyMs) {
        frames.push(frame(this.settings.mark, this.send.seal(Uint8Array.of(PIECE_REKEY))));
        this.send.rekey();
        this.sealedSinceRekey = 0;
        this.rekeyedAt = Date.now();
      }
      const piece = concat([Uint8Array.of(PIECE_DATA), data.subarray(at, at + MAX_PIECE_DATA)]);
      frames.push(frame(this.settings.mark, this.send.seal(piece)));
      this.sealedSinceRekey++;
    }
    this.link.write(concat(frames));
    this.lastSent = Date.now();
  }

  private tick(): void {
    const now = Date.now();
    if (this.settings.idleMs && now - this.lastReceived >= this.settings.idleMs)
      return this.finish(CloseReason.idle_timeout, `nothing received for ${this.settings.idleMs} ms`, true);
    if (this.settings.heartbeatMs && now - this.lastSent >= this.settings.heartbeatMs)
      this.queue(encodeMessage(Kind.ping, this.nextId++, '', new Uint8Array(0)));
  }

  // --- ending ---

  private finish(reason: number, why: string, goodbye: boolean): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    if (goodbye && wasOpen)
      this.queue(encodeMessage(Kind.goodbye, 0n, '', codeAndText(reason, why)), false);
    this.state = 'closed';  // from here a re-entrant finish() returns at once
    if (goodbye && wasOpen) this.flush();
    this.outbox = [];  // what was not flushed never goes
    this.outboxBytes = 0;
    this.closeReason = reason;
    this.closeText = why;
    for (const t of this.timers) clearTimeout(t);
    this.link.close();
    const describe = `${closeReasonName(reason)}${why ? `: ${why}` : ''}`;
    const error = new HawserError(Errc.disconnected, describe, reason);
    for (const call of this.calls.values()) {
      clearTimeout(call.timer);
      call.reject(error);
    }
    this.calls.clear();
    if (!wasOpen) this.settle?.reject(new HawserError(Errc.not_connected, describe, reason));
    this.settle = null;
    this.onClose(reason, why);
  }

  private notOpen(): HawserError {
    return new HawserError(Errc.not_connected, 'the connection is not open', this.closeReason || undefined);
  }
}
