// The client's errors. A PoolqRequestError is the server saying no (it
// changed nothing); a PoolqConnectionError is the transport failing, and for a
// write sent before the failure the outcome is unknown unless it carried an
// idempotency key (then retrying it is safe).

export class PoolqRequestError extends Error {
  constructor(
    /** The server's error code: invalid_request, pool_not_found, unavailable, ... */
    readonly code: string,
    message: string,
    /** HTTP status, or null for a WebSocket reply. */
    readonly status: number | null,
    /** The offending field for validation errors (`poolValues[3]`). */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'PoolqRequestError';
  }
}

export class PoolqConnectionError extends Error {
  constructor(
    message: string,
    /** True when a write may or may not have been applied (sent, not acknowledged). */
    readonly outcomeUnknown: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PoolqConnectionError';
  }
}
