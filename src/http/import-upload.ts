// Streams a request body into a file (an import's spool file) instead of
// memory, with a hard size limit. uWS hands over chunks as fast as the socket
// delivers them; when the file stream falls behind, the socket is paused until
// the stream drains, so the server holds at most a few MiB of any body however
// large it is. uWS neuters each chunk when onData returns, so chunks are
// copied into the stream.

import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { Exchange } from './exchange.js';

export type SpoolResult = { ok: true; bytes: number } | { ok: false; reason: 'too_large' | 'bad_length' | 'io'; message?: string };

/** Bytes buffered in the file stream before the socket is paused. */
const HIGH_WATER_BYTES = 4 << 20;

/**
 * Writes the body of `res` to `file`. `contentLength` is the raw header (''
 * when absent: chunked, checked as it streams). Calls `done` once, unless the
 * request is aborted (then the file is deleted and `done` never runs).
 */
export function spoolBody(ex: Exchange, contentLength: string, maxBytes: number, file: string, done: (result: SpoolResult) => void): void {
  const res = ex.res;
  if (contentLength !== '') {
    if (!/^\d{1,16}$/.test(contentLength)) return done({ ok: false, reason: 'bad_length' });
    if (Number(contentLength) > maxBytes) return done({ ok: false, reason: 'too_large' });
  }
  const out = createWriteStream(file, { highWaterMark: HIGH_WATER_BYTES });
  let bytes = 0;
  let finished = false;
  const stop = (result: SpoolResult | null): void => {
    if (finished) return;
    finished = true;
    out.destroy();
    void unlink(file).catch(() => {});
    if (result !== null) done(result);
  };
  out.on('error', (err) => stop({ ok: false, reason: 'io', message: err.message }));
  ex.whenAborted(() => stop(null));
  res.onData((chunk, isLast) => {
    if (finished) return;
    bytes += chunk.byteLength;
    if (bytes > maxBytes) return stop({ ok: false, reason: 'too_large' });
    const writable = out.write(Buffer.from(new Uint8Array(chunk)));
    if (isLast) {
      finished = true;
      out.end(() => {
        if (!ex.aborted) done({ ok: true, bytes });
        else void unlink(file).catch(() => {});
      });
      return;
    }
    if (!writable) {
      res.pause();
      out.once('drain', () => {
        if (!ex.aborted) res.resume();
      });
    }
  });
}
