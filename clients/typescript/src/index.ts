// Hawser's TypeScript client: the same end-to-end encrypted protocol as the C++ client, from a
// browser (WebSocket) or Node (WebSocket or TCP). docs/browser.md shows it in use.
export { Client, type CallOptions, type ClientOptions } from './client.js';
export { Commands, type Request } from './commands.js';
export type { DataFrame, DecodeLimits, Value } from './dataframe.js';
export { CloseReason, Errc, HawserError, closeReasonName, errcName } from './errors.js';
