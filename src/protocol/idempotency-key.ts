// Idempotency keys (the `Idempotency-Key` header on HTTP appends, `key` on a
// WebSocket add): a client names an append so that a retry of it is answered
// with the first attempt's outcome instead of appending again. The key's
// shape is checked here, at every entry point, so storage only sees valid ones.

import { invalidRequest } from '../core/errors.js';

/** The store logs keys of at most 64 bytes. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 64;

const KEY_SHAPE = /^[\x21-\x7e]{1,64}$/;

/** A key of 1–64 visible ASCII characters (0x21–0x7e), else invalid_request naming `field`. */
export function checkIdempotencyKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || !KEY_SHAPE.test(key)) {
    const got = typeof key === 'string' ? `${key.length} characters` : typeof key;
    throw invalidRequest(field, `${field} must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters (0x21-0x7e), got ${got}.`);
  }
  return key;
}
