// The byte stream under the protocol: a WebSocket (browsers, and Node with a global WebSocket)
// or a TCP socket (Node). The stream does not follow WebSocket message boundaries.

export interface Link {
  write(bytes: Uint8Array): void;
  /** Bytes handed to write() and not yet on the wire: what the send queue bound is held to. */
  buffered(): number;
  /** Ends the link once what was written has gone; no more events after. */
  close(): void;
  onData: (bytes: Uint8Array) => void;
  onClose: (error?: string) => void;
}

// A Link over a transport's write, buffered count and end; `closed()` reports its end once.
class StreamLink implements Link {
  onData: (bytes: Uint8Array) => void = () => {};
  onClose: (error?: string) => void = () => {};
  private ended = false;
  constructor(private readonly io: {
    send: (bytes: Uint8Array) => void;
    buffered: () => number;
    end: () => void;
  }) {}
  write(bytes: Uint8Array) {
    if (!this.ended) this.io.send(bytes);
  }
  buffered() {
    return this.io.buffered();
  }
  close() {
    if (this.ended) return;
    this.ended = true;
    this.io.end();
  }
  closed(error?: string) {
    if (this.ended) return;
    this.ended = true;
    this.onClose(error);
  }
}

/** Opens a WebSocket to `url` with the subprotocol `hawser`; resolves once it is open. */
export function openWebSocket(url: string): Promise<Link> {
  const Socket = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
  if (!Socket)
    return Promise.reject(new Error('no WebSocket here (Node 20: run with --experimental-websocket)'));
  return new Promise((resolve, reject) => {
    const ws = new Socket(url, 'hawser');
    ws.binaryType = 'arraybuffer';
    const link = new StreamLink({
      send: (bytes) => ws.send(bytes),
      buffered: () => ws.bufferedAmount,
      end: () => ws.close(1000),
    });
    let open = false;
    ws.onopen = () => {
      open = true;
      resolve(link);
    };
    ws.onmessage = (event: MessageEvent) => {
      if (typeof event.data === 'string') {
        link.closed('the server sent a text message');  // tells the connection first
        // The WebSocket API takes only 1000 and 3000-4999 (it throws on 1003, RFC 6455's).
        try {
          ws.close(4003, 'text messages are not part of the protocol');
        } catch {
          // already closing
        }
      } else {
        link.onData(new Uint8Array(event.data as ArrayBuffer));
      }
    };
    ws.onerror = () => {
      if (!open) reject(new Error(`cannot open ${url}`));
    };
    ws.onclose = (event: CloseEvent) => {
      if (!open) reject(new Error(`cannot open ${url} (WebSocket close ${event.code})`));
      link.closed(event.code === 1000 || event.code === 1005 ? undefined
                                                              : `WebSocket close ${event.code}`);
    };
  });
}

/** Opens a TCP connection (Node only); resolves once it is connected. */
export async function openTcp(host: string, port: number): Promise<Link> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const link = new StreamLink({
      send: (bytes) => socket.write(bytes),
      buffered: () => socket.writableLength,
      // A FIN first, so that what was written goes; a peer that never closes its side does
      // not keep the socket (and Node's event loop) for ever.
      end: () => {
        socket.end();
        const timer = setTimeout(() => socket.destroy(), 2000);
        (timer as { unref?: () => void }).unref?.();
      },
    });
    let open = false;
    socket.once('connect', () => {
      open = true;
      resolve(link);
    });
    socket.on('data', (data: Uint8Array) => link.onData(data));
    socket.on('error', (e: Error) => {
      if (!open) reject(e);
      link.closed(e.message);
    });
    socket.on('close', () => link.closed());
  });
}
