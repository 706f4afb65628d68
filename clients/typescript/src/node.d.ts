// The little of Node's API this package uses, declared here so that the package builds without
// Node's type definitions (and browsers never load it: openTcp imports it on demand).
declare module 'node:net' {
  interface Socket {
    setNoDelay(noDelay: boolean): void;
    write(data: Uint8Array): boolean;
    end(): void;
    destroy(): void;
    readonly writableLength: number;
    once(event: 'connect', listener: () => void): void;
    on(event: 'data', listener: (data: Uint8Array) => void): void;
    on(event: 'error', listener: (error: Error) => void): void;
    on(event: 'close', listener: () => void): void;
  }
  function connect(options: { host: string; port: number }): Socket;
}
