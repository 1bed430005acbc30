// Streams a request body into one buffer with a hard size limit (style.md #9).
// uWS neuters each chunk's ArrayBuffer when onData returns, so every chunk of a
// body that spans several is copied (one that arrives whole is lent, below).
// With a content-length we allocate exactly once and refuse an oversize body
// before reading a byte of it; without one (chunked) we grow by doubling and
// stop as soon as the count passes the limit, never buffering the excess.
//
// Lingering close: a client that is still sending when it is refused (413)
// only sees the reply if the server goes on reading — Node's fetch and
// Python's urllib write the whole body before they read, and a socket closed
// under them fails with EPIPE. With a content-length up to LINGER_MAX_BYTES the
// refusal keeps the connection and uWS reads and discards the rest of the body
// itself (it knows where the request ends); a chunked body is read and
// discarded up to LINGER_MAX_BYTES / LINGER_MS before the refusal is sent.
// Past either bound the reply goes out with the connection closed.

import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import type { BodyBufferPool } from './body-buffers.js';
import { inUwsCallback } from './exchange.js';

export type BodyResult =
  | { ok: true; body: Buffer }
  | { ok: false; reason: 'too_large' | 'bad_length'; close: boolean };

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
    if (expected > maxBytes) return done({ ok: false, reason: 'too_large', close: expected > LINGER_MAX_BYTES });
    if (expected === 0) return done({ ok: true, body: Buffer.alloc(0) });
  }
  // Bodies a worker will parse go on shared memory, so it reads them in place.
  // They come from a pool of recycled buffers; the caller gives them back.
  const takeShared = options.allocateShared ?? ((size: number) => sharedBuffers.take(size));
  const allocate = (size: number): Buffer => (size >= sharedFromBytes ? Buffer.from(takeShared(size), 0, size) : Buffer.allocUnsafe(size));
  let buffer: Buffer | null = null;
  let length = 0;
  let finished = false;
  let discarded = -1; // >= 0 once a chunked body went over the limit
  let lingerTimer: NodeJS.Timeout | null = null;
  /** Inside onData uWS corks the socket; from the timer the reply corks itself. */
  const refuse = (close: boolean, inOnData = true) => {
    if (lingerTimer !== null) clearTimeout(lingerTimer);
    finished = true;
    const result: BodyResult = { ok: false, reason: 'too_large', close };
    if (inOnData) inUwsCallback(res, () => done(result));
    else done(result);
  };
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
      discarded = needed;
      lingerTimer = setTimeout(() => {
        if (!finished) refuse(true, false);
      }, LINGER_MS);
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
