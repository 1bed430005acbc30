// Streams a request body into one buffer with a hard size limit (uWS has none).
// uWS neuters each chunk's ArrayBuffer when onData returns, so every chunk of a
// body that spans several is copied (one that arrives whole is lent, below).
// With a content-length we allocate exactly once and refuse an oversize body
// before reading a byte of it; without one (chunked) we grow by doubling and
// stop as soon as the count passes the limit, never buffering the excess.
//
// Lingering: a client that is still sending when it is refused (413, 401,
// 503) only sees the reply if the server goes on reading — Node's fetch and
// http.request and Python's urllib write the whole body before they read, and
// a socket closed under them fails with EPIPE. nginx replies first and then
// reads; uWS cannot do that here: a response may not be touched after its
// reply (so the connection cannot be closed later), uWS closes a
// `Connection: close` request's connection right after the reply, and a
// keep-alive reply sent early let undici reuse a connection on which it had
// stopped sending the body (the next request was read as body: ECONNRESET).
// So a refused body is read and dropped first, up to LINGER_MAX_BYTES and
// LINGER_MS, and the refusal is sent when it ended (the connection stays
// usable) or with the connection closed when a bound was hit.

import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import type { BodyBufferPool } from './body-buffers.js';
import { PoolqError } from '../core/errors.js';
import { inUwsCallback, type Exchange } from './exchange.js';

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'bad_length'; close: boolean };

const INITIAL_CHUNKED_CAPACITY = 16 * 1024;

/** Most bytes of a refused body read and discarded so that the client sees the refusal. */
export const LINGER_MAX_BYTES = 64 << 20;
/** Longest a refused chunked body is read before the refusal goes out with the connection closed. */
export const LINGER_MS = 5000;

export interface ReadBodyOptions {
  /** Storage for bodies of `sharedFromBytes` or more (default: a recycled buffer from the pool). */
  allocateShared?: (size: number) => SharedArrayBuffer;
}

/**
 * Reads the body of `res`. `contentLength` is the raw header ('' when absent).
 * Bodies of `sharedFromBytes` or more are read into a SharedArrayBuffer from
 * `sharedBuffers`; hand it back with `sharedBuffers.give(body.buffer)` when done.
 * A smaller body may be a view of uWS's receive chunk, valid only until `done`
 * returns: read it synchronously and copy what you keep.
 * Calls `done` exactly once unless the request is aborted first.
 */
export function readBody(
  res: HttpResponse,
  contentLength: string,
  maxBytes: number,
  sharedFromBytes: number,
  sharedBuffers: BodyBufferPool,
  done: (result: BodyResult) => void,
  options: ReadBodyOptions = {},
): void {
  let expected = -1;
  if (contentLength !== '') {
    if (!/^\d{1,16}$/.test(contentLength)) return done({ ok: false, reason: 'bad_length', close: true });
    expected = Number(contentLength);
    if (expected > LINGER_MAX_BYTES) return done({ ok: false, reason: 'too_large', close: true });
    if (expected === 0) return done({ ok: true, body: Buffer.alloc(0) });
  }
  // Bodies a worker will parse go on shared memory, so it reads them in place.
  // They come from a pool of recycled buffers; the caller gives them back.
  const takeShared = options.allocateShared ?? ((size: number) => sharedBuffers.take(size));
  const allocate = (size: number): Buffer => (size >= sharedFromBytes ? Buffer.from(takeShared(size), 0, size) : Buffer.allocUnsafe(size));
  let buffer: Buffer | null = null;
  let length = 0;
  let finished = false;
  let discarded = -1; // >= 0 once the body is known to be over the limit: read and dropped
  let lingerTimer: NodeJS.Timeout | null = null;
  /** Inside onData uWS corks the socket; from the timer the reply corks itself. */
  const refuse = (close: boolean, inOnData = true) => {
    if (lingerTimer !== null) clearTimeout(lingerTimer);
    finished = true;
    const result: BodyResult = { ok: false, reason: 'too_large', close };
    if (inOnData) inUwsCallback(res, () => done(result));
    else done(result);
  };
  const startDiscarding = (bytes: number) => {
    discarded = bytes;
    lingerTimer = setTimeout(() => {
      if (!finished) refuse(true, false);
    }, LINGER_MS);
  };
  if (expected > maxBytes) startDiscarding(0);
  res.onData((chunk: ArrayBuffer, isLast: boolean) => {
    if (finished) return;
    const size = chunk.byteLength;
    if (discarded >= 0) {
      discarded += size;
      if (isLast || discarded > LINGER_MAX_BYTES) refuse(!isLast);
      return;
    }
    if (isLast && buffer === null && size < sharedFromBytes && size <= maxBytes && (expected < 0 || size === expected)) {
      // The whole body in one chunk, the usual case for a small request: hand
      // over a view of uWS's own chunk instead of a copy. It is valid until
      // this callback returns (uWS then detaches it, so a kept view reads as
      // empty, never as another request's bytes); `done` parses synchronously.
      finished = true;
      inUwsCallback(res, () => done({ ok: true, body: Buffer.from(chunk) }));
      return;
    }
    const bytes = new Uint8Array(chunk);
    const needed = length + size;
    if (needed > maxBytes || (expected >= 0 && needed > expected)) {
      if (buffer !== null && options.allocateShared === undefined) sharedBuffers.give(buffer.buffer);
      buffer = null;
      if (isLast) return refuse(false);
      startDiscarding(needed);
      return;
    }
    buffer ??= allocate(expected >= 0 ? expected : INITIAL_CHUNKED_CAPACITY);
    if (needed > buffer.length) {
      const grown = allocate(Math.min(maxBytes, Math.max(needed, buffer.length * 2)));
      buffer.copy(grown, 0, 0, length);
      if (options.allocateShared === undefined) sharedBuffers.give(buffer.buffer);
      buffer = grown;
    }
    buffer.set(bytes, length);
    length = needed;
    if (isLast) {
      finished = true;
      const body = buffer.subarray(0, length);
      inUwsCallback(res, () => done({ ok: true, body }));
    }
  });
}

/**
 * Reads and drops the body of a request refused before its body was read
 * (401, 503, a bad path), then calls `then` (see "Lingering" above); at once
 * when there is no body or it is over LINGER_MAX_BYTES. A request aborted
 * meanwhile never calls `then` (its Exchange was finished by onAborted).
 */
export function discardBodyThen(res: HttpResponse, contentLength: string, then: () => void): void {
  const expected = contentLength === '' ? 1 : /^\d{1,16}$/.test(contentLength) ? Number(contentLength) : -1;
  if (expected <= 0 || expected > LINGER_MAX_BYTES) return then();
  let finished = false;
  const timer = setTimeout(() => {
    if (finished) return;
    finished = true;
    then();
  }, LINGER_MS);
  res.onData((_chunk, isLast) => {
    if (finished || !isLast) return;
    finished = true;
    clearTimeout(timer);
    inUwsCallback(res, then);
  });
}

/** The refusal of a body that was not read (body-reader.ts, "Lingering"). */
export function refuseBody(ex: Exchange, reason: 'too_large' | 'bad_length', close: boolean, max: number, ofEndpoint = false): void {
  const err =
    reason === 'too_large'
      ? new PoolqError(
          'payload_too_large',
          `The request body exceeds the ${max}-byte limit${ofEndpoint ? ' of this endpoint' : ' (--max-body)'}.`,
        )
      : new PoolqError('invalid_request', 'The content-length header is not a valid length.', 'content-length');
  ex.sendError(err, undefined, close);
}
