// All poolq errors in one place (piscina style: one module, stable codes).
// The HTTP layer maps `code` to a status in src/protocol/error-status.ts; nothing
// else decides statuses. Engine, storage and HTTP validation all throw these.

export type ErrorCode =
  | 'invalid_json'
  | 'invalid_request'
  | 'pool_not_found'
  | 'payload_too_large'
  | 'not_found'
  | 'method_not_allowed'
  | 'unauthorized'
  | 'misdirected'
  | 'conflict'
  | 'unavailable'
  | 'not_implemented'
  | 'internal';

export class PoolqError extends Error {
  readonly code: ErrorCode;
  /** JSON path of the offending field, for validation errors (`poolValues[3]`). */
  readonly field: string | undefined;
  /** Seconds a client should wait before retrying (sent as Retry-After), for refusals that pass by themselves. */
  retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'PoolqError';
    this.code = code;
    this.field = field;
  }
}

export function invalidRequest(field: string, message: string): PoolqError {
  return new PoolqError('invalid_request', message, field);
}

export function poolNotFound(poolId: number): PoolqError {
  return new PoolqError('pool_not_found', `Pool ${poolId} does not exist.`);
}

export function nonFiniteValue(index: number, value: number): PoolqError {
  return invalidRequest(`poolValues[${index}]`, `poolValues[${index}] must be a finite number, got ${value}.`);
}

export function unavailable(message: string, retryAfterSeconds?: number): PoolqError {
  const err = new PoolqError('unavailable', message);
  err.retryAfterSeconds = retryAfterSeconds;
  return err;
}

/** A cluster instance was asked about a pool whose bucket another shard owns (docs/cluster.md). */
export function misdirected(message: string): PoolqError {
  return new PoolqError('misdirected', message);
}

export function conflict(message: string): PoolqError {
  return new PoolqError('conflict', message);
}

/** The WASM engine could not grow its linear memory (wasm32 caps it at 4 GiB). */
export function wasmMemoryExhausted(bytesNeeded: number, maxBytes: number): PoolqError {
  return new PoolqError(
    'unavailable',
    `The WASM engine needs ${bytesNeeded} bytes of linear memory but wasm32 allows at most ${maxBytes}; use --engine=ts for work this large.`,
  );
}

/** Options errors say `options.X must be …` (piscina's convention). */
export function invalidOption(name: string, expectation: string, got: unknown): Error {
  return new TypeError(`options.${name} must be ${expectation} (got ${JSON.stringify(got)})`);
}
