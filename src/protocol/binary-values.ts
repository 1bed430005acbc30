// application/octet-stream bodies and binary WebSocket frames carry values as
// little-endian IEEE-754 float64, 8 bytes each, no header. This module turns
// such bytes into a Float64Array (a view when the bytes are 8-byte aligned, so
// a large body read into shared memory reaches a worker without a copy) and
// names the first value that is not finite.

import { endianness } from 'node:os';
import { invalidRequest } from '../core/errors.js';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: Float64Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) return i; // 0 only for finite numbers
  }
  return -1;
}

/** Throws invalid_request naming `${field}[i]` for the first value that is not finite. */
export function checkFinite(values: Float64Array, field: string): void {
  const i = firstNonFinite(values);
  if (i >= 0) throw invalidRequest(`${field}[${i}]`, `${field}[${i}] must be a finite number, got ${values[i]}.`);
}

/**
 * The float64 values in `bytes`. A length that is not a multiple of 8, or 0,
 * is refused naming `field`. Aligned bytes on a little-endian host come back
 * as a view of the same memory (no copy); otherwise as a copy.
 * Finiteness is not checked here (see checkFinite): large bodies check it on
 * the worker that sorts them.
 */
export function float64View(bytes: Uint8Array, field: string): Float64Array {
  if (bytes.byteLength === 0) throw invalidRequest(field, `${field} must hold at least one float64 (8 bytes), got 0 bytes.`);
  if (bytes.byteLength % 8 !== 0) {
    throw invalidRequest(
      field,
      `${field} must be a whole number of little-endian float64 values (8 bytes each), got ${bytes.byteLength} bytes.`,
    );
  }
  const n = bytes.byteLength / 8;
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset, n);
  return copyFloat64(bytes, 0, n, new Float64Array(n));
}

/** Copies `n` little-endian float64s starting at `offset` of `bytes` into `out`. */
export function copyFloat64(bytes: Uint8Array, offset: number, n: number, out: Float64Array): Float64Array {
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer, out.byteOffset, n * 8).set(bytes.subarray(offset, offset + n * 8));
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, n * 8);
  for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/** The little-endian bytes of `values` (a view on little-endian hosts). */
export function float64Bytes(values: Float64Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i], true);
  return out;
}
