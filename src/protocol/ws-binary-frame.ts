// The binary WebSocket frame for `add`: the fast path for appends over /ws
// (no JSON to build or parse, values copied straight from the frame).
// All integers little-endian:
//
//   offset      size  field
//   0           u8    op: 1 = add (any other value closes the socket, 1003)
//   1           u8    K: length of the idempotency key in bytes (0: none)
//   2           u16   reserved, 0
//   4           u32   request id, echoed as "id" in the JSON reply
//   8           u32   poolId, low 32 bits
//   12          u32   poolId, high bits (poolId ≤ 2^53 − 1)
//   16          K     idempotency key (ASCII 0x21–0x7e), zero-padded to a multiple of 8
//   16 + pad(K) 8·n   n ≥ 1 float64 values
//
// The header is 16 bytes and the padding keeps the values 8-byte aligned, so
// a frame can be read as one Float64Array.

import { invalidRequest, PoolqError } from '../core/errors.js';
import { MAX_POOL_ID } from '../core/pool-id.js';
import { allocateBatch } from '../core/sorted-run.js';
import { copyFloat64, firstNonFinite, float64Bytes } from './binary-values.js';
import { checkIdempotencyKey } from './idempotency-key.js';

export const BINARY_OP_ADD = 1;
export const BINARY_HEADER_BYTES = 16;

export interface BinaryAdd {
  id: number;
  poolId: number;
  key: string | null;
  values: Float64Array;
}

/** A frame that cannot be answered (no readable request id, unknown op): the socket is closed with `closeCode`. */
export class FrameViolation extends Error {
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'FrameViolation';
  }
}

/** A well-formed frame whose request is refused: answered with an error reply carrying `id`. */
export class FrameRequestError extends Error {
  constructor(
    readonly id: number,
    readonly error: PoolqError,
  ) {
    super(error.message);
    this.name = 'FrameRequestError';
  }
}

const padded = (k: number): number => (k + 7) & ~7;

/**
 * Decodes a binary frame (valid only during the callback that received it:
 * the values are copied out). Throws FrameViolation or FrameRequestError.
 */
export function decodeBinaryAdd(frame: ArrayBuffer): BinaryAdd {
  if (frame.byteLength < BINARY_HEADER_BYTES) {
    throw new FrameViolation(1003, `a binary frame needs a ${BINARY_HEADER_BYTES}-byte header, got ${frame.byteLength} bytes`);
  }
  const view = new DataView(frame);
  const op = view.getUint8(0);
  if (op !== BINARY_OP_ADD) throw new FrameViolation(1003, `unknown binary op ${op} (1 = add)`);
  if (view.getUint16(2, true) !== 0) throw new FrameViolation(1003, 'reserved header bytes 2-3 must be 0');
  const id = view.getUint32(4, true);
  const refuse = (err: PoolqError): never => {
    throw new FrameRequestError(id, err);
  };
  const high = view.getUint32(12, true);
  const poolId = high * 2 ** 32 + view.getUint32(8, true);
  if (poolId > MAX_POOL_ID) refuse(invalidRequest('poolId', `poolId must be an integer from 0 to 2^53-1, got ${poolId}.`));
  const k = view.getUint8(1);
  const valuesAt = BINARY_HEADER_BYTES + padded(k);
  const bytes = new Uint8Array(frame);
  let key: string | null = null;
  if (k > 0) {
    if (frame.byteLength < valuesAt) refuse(invalidRequest('key', `the frame ends inside its ${k}-byte idempotency key.`));
    key = Buffer.from(frame, BINARY_HEADER_BYTES, k).toString('latin1');
    try {
      checkIdempotencyKey(key, 'key');
    } catch (err) {
      refuse(err as PoolqError);
    }
  }
  const valueBytes = frame.byteLength - valuesAt;
  if (valueBytes <= 0 || valueBytes % 8 !== 0) {
    refuse(
      invalidRequest(
        'poolValues',
        `a binary add carries one or more float64 values (8 bytes each) after its header; got ${Math.max(0, valueBytes)} bytes.`,
      ),
    );
  }
  const n = valueBytes / 8;
  const values = copyFloat64(bytes, valuesAt, n, allocateBatch(n));
  const bad = firstNonFinite(values);
  if (bad >= 0) refuse(invalidRequest(`poolValues[${bad}]`, `poolValues[${bad}] must be a finite number, got ${values[bad]}.`));
  return { id, poolId, key, values };
}

/** Encodes a binary add frame (the client side). `id` is a u32. */
export function encodeBinaryAdd(
  id: number,
  poolId: number,
  values: Float64Array | readonly number[],
  key: string | null = null,
): Uint8Array {
  const keyBytes = key === null ? null : Buffer.from(key, 'latin1');
  const k = keyBytes?.length ?? 0;
  if (k > 255) throw new RangeError('an idempotency key in a binary frame is at most 255 bytes');
  const valuesAt = BINARY_HEADER_BYTES + padded(k);
  const out = new Uint8Array(valuesAt + values.length * 8);
  const view = new DataView(out.buffer);
  view.setUint8(0, BINARY_OP_ADD);
  view.setUint8(1, k);
  view.setUint32(4, id >>> 0, true);
  view.setUint32(8, poolId % 2 ** 32, true);
  view.setUint32(12, Math.floor(poolId / 2 ** 32), true);
  if (keyBytes !== null) out.set(keyBytes, BINARY_HEADER_BYTES);
  const typed = values instanceof Float64Array ? values : Float64Array.from(values);
  out.set(float64Bytes(typed), valuesAt);
  return out;
}
