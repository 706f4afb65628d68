// The commands this side serves when the server calls it or sends to it: the same four kinds
// as the C++ Commands (console, DataFrame, and their one-way "direct" variants).
import type { DataFrame } from './dataframe.js';

/** Who is calling: for handlers that answer per connection. */
export interface Request {
  command: string;
}

export type ConsoleHandler = (text: string, request: Request) => string | Promise<string>;
export type DataFrameHandler = (frame: DataFrame, request: Request) => DataFrame | Promise<DataFrame>;
export type DirectConsoleHandler = (text: string, request: Request) => void;
export type DirectDataFrameHandler = (frame: DataFrame, request: Request) => void;

export type Handler =
  | { kind: 'console'; run: ConsoleHandler }
  | { kind: 'dataframe'; run: DataFrameHandler }
  | { kind: 'direct_console'; run: DirectConsoleHandler }
  | { kind: 'direct_dataframe'; run: DirectDataFrameHandler };

/** A handler throws a HawserError to answer with its code; anything else is `handler_error`. */
export class Commands {
  private readonly table = new Map<string, Handler>();

  console(name: string, run: ConsoleHandler): this {
    return this.add(name, { kind: 'console', run });
  }
  dataframe(name: string, run: DataFrameHandler): this {
    return this.add(name, { kind: 'dataframe', run });
  }
  directConsole(name: string, run: DirectConsoleHandler): this {
    return this.add(name, { kind: 'direct_console', run });
  }
  directDataframe(name: string, run: DirectDataFrameHandler): this {
    return this.add(name, { kind: 'direct_dataframe', run });
  }
  remove(name: string): boolean {
    return this.table.delete(name);
  }
  find(name: string): Handler | undefined {
    return this.table.get(name);
  }

  private add(name: string, handler: Handler): this {
    const bytes = new TextEncoder().encode(name).length;
    if (bytes < 1 || bytes > 255) throw new Error('a command name is 1 to 255 bytes');
    this.table.set(name, handler);
    return this;
  }
}
