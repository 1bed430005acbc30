// Streams a request body into one buffer with a hard size limit (uWS has none).
// uWS neuters each chunk's ArrayBuffer when onData returns, so every chunk of a
// body that spans several is copied (one that arrives whole is lent, below).
// With a content-length we allocate exactly once and refuse an oversize body
// before reading a byte of it; without one (chunked) we grow by doubling and
// stop as soon as the count passes the limit, never buffering the excess.

import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import type { BodyBufferPool } from './body-buffers.js';
import { inUwsCallback } from './exchange.js';

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'bad_length' };

const INITIAL_CHUNKED_CAPACITY = 16 * 1024;

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
): void {
  let expected = -1;
  if (contentLength !== '') {
    if (!/^\d{1,16}$/.test(contentLength)) return done({ ok: false, reason: 'bad_length' });
    expected = Number(contentLength);
    if (expected > maxBytes) return done({ ok: false, reason: 'too_large' });
    if (expected === 0) return done({ ok: true, body: Buffer.alloc(0) });
  }
  // Bodies a worker will parse go on shared memory, so it reads them in place.
  // They come from a pool of recycled buffers; the caller gives them back.
  const allocate = (size: number): Buffer =>
    size >= sharedFromBytes ? Buffer.from(sharedBuffers.take(size), 0, size) : Buffer.allocUnsafe(size);
  let buffer: Buffer | null = null;
  let length = 0;
  let finished = false;
  res.onData((chunk: ArrayBuffer, isLast: boolean) => {
    if (finished) return;
    const size = chunk.byteLength;
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
      finished = true;
      return done({ ok: false, reason: 'too_large' });
    }
    buffer ??= allocate(expected >= 0 ? expected : INITIAL_CHUNKED_CAPACITY);
    if (needed > buffer.length) {
      const grown = allocate(Math.min(maxBytes, Math.max(needed, buffer.length * 2)));
      buffer.copy(grown, 0, 0, length);
      sharedBuffers.give(buffer.buffer);
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
