// The client: connects over WebSocket or TCP, calls the server's commands, serves the server's
// calls and pushes (Commands), joins channels, and reconnects with jittered backoff. The same
// shape as the C++ hawser::Client where the language allows.
import { fromHex, text, toHex, utf8 } from './bytes.js';
import { Commands } from './commands.js';
import { Connection, type ConnectionSettings } from './connection.js';
import { type DataFrame, DataFrameError, type DecodeLimits, decodeDataFrame, defaultDecodeLimits, encodeDataFrame } from './dataframe.js';
import { CloseReason, Errc, HawserError } from './errors.js';
import { parseMark } from './frames.js';
import { type Link, openTcp, openWebSocket } from './links.js';
import { Kind } from './messages.js';
import { keyPair } from './noise.js';

export interface ClientOptions {
  /** A server's WebSocket URL, e.g. ws://host:7100/hawser (browsers; Node 22, or 20 with
   *  --experimental-websocket). Or `host` and `port` for TCP (Node only). */
  url?: string;
  host?: string;
  port?: number;
  /** The server's static public key, 64 hex digits (hawser-server --print-public-key). */
  serverPublicKey?: string;
  /** Without a pinned key: learn the first server's key (Noise XX) and pin it from then on. */
  trustOnFirstUse?: boolean;
  /** This client's own static private key, 64 hex digits: proves who it is (Noise XX). */
  clientPrivateKey?: string;
  mark?: { head: string; tail: string };
  timeouts?: { callMs?: number; connectMs?: number; idleMs?: number; heartbeatMs?: number };
  limits?: {
    maxFrameBytes?: number;
    maxPendingCalls?: number;
    maxSendQueueBytes?: number;
    maxDecompressedBytes?: number;
    dataframe?: DecodeLimits;
  };
  rekey?: { messages?: number; ms?: number };
  reconnect?: { enabled: boolean; minDelayMs?: number; maxDelayMs?: number };
  /** Failures no caller sees: a one-way handler that threw, a channel not re-joined. */
  onError?: (what: string, error: unknown) => void;
}

// The application's reporter (console.warn without one), which must not throw into the client:
// a reporter that throws has nobody to tell.
function safeReporter(onError?: (what: string, error: unknown) => void) {
  const report = onError ?? ((what: string, error: unknown) => console.warn(`hawser: ${what}:`, error));
  return (what: string, error: unknown) => {
    try {
      report(what, error);
    } catch {
      // nothing left to tell
    }
  };
}

export interface CallOptions {
  timeoutMs?: number;
}

export class Client {
  /** What the server may call or send to this client. */
  readonly commands = new Commands();
  private connection: Connection | null = null;
  private connecting: Connection | null = null;  // an attempt's, until it is the connection
  private readonly settings: ConnectionSettings;
  private readonly channels = new Set<string>();
  private readonly connectHooks: (() => void)[] = [];
  private readonly disconnectHooks: ((reason: number, text: string) => void)[] = [];
  private stopped = true;
  private generation = 0;  // connect() and close() start a new one; older attempts give up
  private attempts = 0;
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: ClientOptions) {
    if (!options.url === !(options.host && options.port))
      throw new HawserError(Errc.invalid_argument, 'give either url, or host and port');
    const key = options.serverPublicKey;
    if (key !== undefined && !/^[0-9a-fA-F]{64}$/.test(key))
      throw new HawserError(Errc.invalid_argument, 'serverPublicKey is 64 hex digits');
    if (!key && !options.trustOnFirstUse)
      throw new HawserError(Errc.invalid_argument, 'a serverPublicKey, or trustOnFirstUse');
    const own = options.clientPrivateKey;
    if (own !== undefined && !/^[0-9a-fA-F]{64}$/.test(own))
      throw new HawserError(Errc.invalid_argument, 'clientPrivateKey is 64 hex digits');
    const t = options.timeouts ?? {}, l = options.limits ?? {};
    this.settings = {
      mark: parseMark(options.mark?.head, options.mark?.tail),
      pattern: own || !key ? 'XX' : 'NK',
      serverKey: key ? fromHex(key) : undefined,
      localStatic: own ? keyPair(fromHex(own)) : undefined,
      maxFrameBytes: l.maxFrameBytes ?? 16 << 20,
      maxPendingCalls: l.maxPendingCalls ?? 4096,
      maxSendQueueBytes: l.maxSendQueueBytes ?? 64 << 20,
      maxDecompressedBytes: l.maxDecompressedBytes ?? 16 << 20,
      dataframe: l.dataframe ?? defaultDecodeLimits,
      handshakeMs: t.connectMs ?? 10_000,
      idleMs: t.idleMs ?? 60_000,
      heartbeatMs: t.heartbeatMs ?? 20_000,
      rekeyMessages: options.rekey?.messages ?? 2 ** 20,
      rekeyMs: options.rekey?.ms ?? 600_000,
      report: safeReporter(options.onError),
    };
  }

  /** Connects (the link, then the handshake); rejects with `not_connected` and the reason. */
  async connect(): Promise<void> {
    this.stop();
    this.stopped = false;
    await this.attempt(this.generation);
  }

  get connected(): boolean {
    return this.connection?.open ?? false;
  }
  /** The server's key: the pinned one, or the one learnt on first use. */
  get serverPublicKey(): string {
    return this.settings.serverKey ? toHex(this.settings.serverKey) : '';
  }

  onConnect(hook: () => void): void {
    this.connectHooks.push(hook);
  }
  /** Runs when a connection ends, with the close reason (CloseReason) and its text. */
  onDisconnect(hook: (reason: number, text: string) => void): void {
    this.disconnectHooks.push(hook);
  }

  /** A console call (text in, text out) or a DataFrame call, by the argument's type. */
  call(command: string, argument: string, options?: CallOptions): Promise<string>;
  call(command: string, argument: DataFrame, options?: CallOptions): Promise<DataFrame>;
  async call(command: string, argument: string | DataFrame,
             options: CallOptions = {}): Promise<string | DataFrame> {
    const timeout = options.timeoutMs ?? this.options.timeouts?.callMs ?? 30_000;
    const conn = this.live();
    if (typeof argument === 'string')
      return text(await conn.call(Kind.call_console, command, utf8(argument), timeout));
    const reply = await conn.call(Kind.call_dataframe, command, encodeDataFrame(argument), timeout);
    try {
      return decodeDataFrame(reply, this.settings.dataframe);
    } catch (e) {
      const over = e instanceof DataFrameError && e.overLimit;
      throw new HawserError(over ? Errc.limit_exceeded : Errc.bad_payload, (e as Error).message);
    }
  }

  /** A one-way command: no reply. Throws `not_connected` when there is no connection. */
  send(command: string, argument: string | DataFrame): void {
    const conn = this.live();
    if (typeof argument === 'string') conn.sendDirect(Kind.direct_console, command, utf8(argument));
    else conn.sendDirect(Kind.direct_dataframe, command, encodeDataFrame(argument));
  }

  /** Joins a channel (the server must allow it); joined again after every reconnect. A
   *  publication arrives as the one-way command its publisher named (this.commands). */
  async subscribe(channel: string): Promise<void> {
    await this.call('hawser.subscribe', channel);
    this.channels.add(channel);
  }
  async unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel);
    await this.call('hawser.unsubscribe', channel);
  }

  /** Says goodbye and stops reconnecting. */
  close(): void {
    this.stopped = true;
    this.stop();
  }

  // Ends the connection, a pending reconnect and any attempt in flight.
  private stop(): void {
    this.generation++;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.connection?.close();  // onDisconnect hooks run; a local close never reconnects
    this.connection = null;
    this.connecting?.close();  // its attempt fails with `cancelled`
    this.connecting = null;
  }

  private live(): Connection {
    if (!this.connection?.open) throw new HawserError(Errc.not_connected, 'not connected');
    return this.connection;
  }

  // One connect: the link, the handshake and the channels, within connectMs in all. Gives up
  // (closing what it opened) as soon as connect() or close() starts a new generation.
  private async attempt(generation: number): Promise<void> {
    const current = () => generation === this.generation && !this.stopped;
    const cancelled = () => new HawserError(Errc.cancelled, 'closed while connecting');
    const deadline = Date.now() + this.settings.handshakeMs;
    const link = await this.openLink(this.settings.handshakeMs);
    if (!current()) {
      link.close();
      throw cancelled();
    }
    const conn = new Connection(link, { ...this.settings, handshakeMs: Math.max(1, deadline - Date.now()) },
                                this.commands);
    conn.onClose = (reason, why) => this.lost(conn, reason, why);
    this.connecting = conn;
    const left = () => Math.max(1, deadline - Date.now());
    try {
      await conn.established;
      // A server decides on the client's key after the handshake (XX: once it read the last
      // message) and a full node redirects then too: it has taken this client once it answers
      // a ping, and a refusal comes before that answer and fails the connect.
      await conn.confirmed(left());
    } catch (e) {
      const ended = conn.closeReason !== CloseReason.none;  // by the server, or a failure
      conn.close();
      if (!current()) throw cancelled();
      if (ended) throw new HawserError(Errc.not_connected, conn.closeText, conn.closeReason);
      throw new HawserError(Errc.not_connected, (e as Error).message, CloseReason.handshake_timeout);
    } finally {
      if (this.connecting === conn) this.connecting = null;
    }
    if (!current()) {
      conn.close();
      throw cancelled();
    }
    // Trust on first use: the first server's key is pinned for every reconnect after it.
    if (!this.settings.serverKey) this.settings.serverKey = fromHex(conn.serverKey);
    this.connection = conn;
    this.attempts = 0;  // a server that took the client: the backoff starts again
    // Back in every channel before the hooks run, within connectMs: a publication from then on
    // reaches it.
    await Promise.all([...this.channels].map((channel) =>
        this.call('hawser.subscribe', channel, { timeoutMs: left() })
            .catch((e) => this.settings.report(`joining channel ${channel} again`, e))));
    if (this.connection !== conn || !conn.open) return;  // lost meanwhile: onDisconnect said so
    for (const hook of this.connectHooks) {
      try {
        hook();
      } catch (e) {
        this.settings.report('an onConnect hook', e);
      }
    }
  }

  private openLink(ms: number): Promise<Link> {
    const { url, host, port } = this.options;
    const opening = url ? openWebSocket(url) : openTcp(host!, port!);
    return new Promise((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new HawserError(Errc.not_connected, `no answer in ${ms} ms`, CloseReason.connect_failed));
      }, ms);
      opening.then(
          (link) => {
            clearTimeout(timer);
            if (late) link.close();
            else resolve(link);
          },
          (e: Error) => {
            clearTimeout(timer);
            reject(new HawserError(Errc.not_connected, e.message, CloseReason.connect_failed));
          });
    });
  }

  private lost(conn: Connection, reason: number, why: string): void {
    if (conn !== this.connection) return;  // a connect attempt that failed: its caller knows
    this.connection = null;
    for (const hook of this.disconnectHooks) {
      try {
        hook(reason, why);
      } catch (e) {
        this.settings.report('an onDisconnect hook', e);
      }
    }
    // A server's own close (its goodbye may say local_close too) reconnects; close() never does.
    if (!conn.closedHere) this.scheduleReconnect();
  }

  // Backoff doubles from minDelayMs up to maxDelayMs; each wait is drawn from its upper half,
  // so the clients of a restarted server do not come back all at once.
  private scheduleReconnect(): void {
    const policy = this.options.reconnect;
    if (this.stopped || !policy?.enabled) return;
    const min = policy.minDelayMs ?? 100, max = policy.maxDelayMs ?? 10_000;
    const delay = Math.min(max, min * 2 ** Math.min(this.attempts++, 30));
    const generation = this.generation;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.attempt(generation).catch(() => {
        if (generation === this.generation) this.scheduleReconnect();
      });
    }, delay / 2 + Math.random() * (delay / 2));
  }
}
