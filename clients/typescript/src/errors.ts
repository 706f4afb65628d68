// Error codes and close reasons of the wire protocol (docs/protocol.md, "Error codes" and
// "Close reasons"), and the one error type every failing call rejects with.

/** Error codes, as numbers on the wire. A code not listed here is still passed on as its number. */
export const Errc = {
  ok: 0,
  unknown_command: 1,
  handler_error: 2,
  wrong_kind: 3,
  timeout: 4,
  cancelled: 5,
  disconnected: 6,
  too_many_pending: 7,
  shutting_down: 8,
  bad_payload: 9,
  would_deadlock: 10,
  not_connected: 11,
  type_mismatch: 12,
  end_of_data: 13,
  limit_exceeded: 14,
  invalid_argument: 15,
  not_found: 16,
  storage_error: 17,
  overloaded: 18,
  cluster_unavailable: 19,
  not_allowed: 20,
  hash_mismatch: 21,
  size_mismatch: 22,
  unauthenticated: 23,
  rate_limited: 24,
  already_exists: 25,
} as const;

/** Why a connection ended, as numbers on the wire (a goodbye's code). */
export const CloseReason = {
  none: 0,
  peer_closed: 1,
  local_close: 2,
  io_error: 3,
  bad_mark: 4,
  frame_too_large: 5,
  malformed: 6,
  slow_consumer: 7,
  idle_timeout: 8,
  shutdown: 9,
  max_connections: 10,
  protocol_error: 11,
  connect_failed: 12,
  handshake_failed: 13,
  handshake_timeout: 14,
  bad_mac: 15,
  too_large: 16,
  denied: 17,
  rate_limited: 18,
  too_many_handshakes: 19,
  too_many_per_address: 20,
  key_not_allowed: 21,
  internal_error: 22,
  redirect: 23,
  websocket_error: 24,
} as const;

function nameOf(table: Record<string, number>, value: number): string {
  for (const [name, v] of Object.entries(table)) if (v === value) return name;
  return `code_${value}`;
}

export const errcName = (code: number): string => nameOf(Errc, code);
export const closeReasonName = (reason: number): string => nameOf(CloseReason, reason);

/**
 * What a failed call, connect or command rejects with: `code` is an Errc (the program's to
 * test), `message` the text for people. A connection that ended also says why (`closeReason`).
 */
export class HawserError extends Error {
  readonly code: number;
  /** The text alone, without the code's name. */
  readonly detail: string;
  readonly closeReason?: number;
  constructor(code: number, detail: string, closeReason?: number) {
    super(detail ? `${errcName(code)}: ${detail}` : errcName(code));
    this.name = 'HawserError';
    this.code = code;
    this.detail = detail;
    this.closeReason = closeReason;
  }
  get codeName(): string {
    return errcName(this.code);
  }
}
