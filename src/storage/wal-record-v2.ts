// WAL records, format version 2: what the writer writes.
//
//   recordLength u32 | maskedCrc u32 | seq u64 | syncedSeq u64 | poolId u64 |
//   op u8 | flags u8 | keyLength u8 | reserved u8 | valueCount u32 | timeMs u64 |
//   key (keyLength bytes, zero-padded to a multiple of 8) | values f64[valueCount]
//
// Version 1 plus three things: the time the change was accepted, an optional
// idempotency key on an append, and a `continues` flag that chains records
// into one transaction (recovery applies all of it or none). A retention
// record carries its window in seconds as its one value (0: unbounded).

import { bytesOf, crc32cOf, crc32cOfRange, crc32cOfValues, getU64, maskCrc, setU64, viewOf } from './binary.js';
import { headerCrc, paddedKeyBytes, WalFlag, WalOp, type WalRecordHeader } from './wal-format.js';

export const V2_RECORD_HEADER_BYTES = 48;

/** recordLength is a u32: at most this many values fit in one record with the longest key (~4 GiB). */
export const MAX_RECORD_VALUES = Math.floor((0xffff_ffff - V2_RECORD_HEADER_BYTES - 256) / 8);

export function recordLengthV2(valueCount: number, keyLength = 0): number {
  return V2_RECORD_HEADER_BYTES + paddedKeyBytes(keyLength) + 8 * valueCount;
}

/** The fields of a record besides its position in the log (the writer's LogRecord has these). */
export interface RecordBodyV2 {
  poolId: number;
  op: WalOp;
  /** WalFlag bits. */
  flags: number;
  atMs: number;
  /** UTF-8 idempotency key (appends only), or null. */
  key: Uint8Array | null;
  /** Values (appends), the window as one value (retention), or null (delete). */
  run: Float64Array | null;
}

/** The header fields and the key at `view[at..at + 48 + padded key)`, all but the CRC. */
function writeHeaderAndKey(out: Uint8Array, view: DataView, at: number, seq: number, syncedSeq: number, body: RecordBodyV2): number {
  const count = body.run === null ? 0 : body.run.length;
  const keyLength = body.key === null ? 0 : body.key.length;
  view.setUint32(at, recordLengthV2(count, keyLength), true);
  setU64(view, at + 8, seq);
  setU64(view, at + 16, syncedSeq);
  setU64(view, at + 24, body.poolId);
  view.setUint8(at + 32, body.op);
  view.setUint8(at + 33, body.flags);
  view.setUint8(at + 34, keyLength);
  view.setUint8(at + 35, 0);
  view.setUint32(at + 36, count, true);
  setU64(view, at + 40, body.atMs);
  const keyEnd = at + V2_RECORD_HEADER_BYTES + paddedKeyBytes(keyLength);
  if (body.key !== null) {
    out.set(body.key, at + V2_RECORD_HEADER_BYTES);
    out.fill(0, at + V2_RECORD_HEADER_BYTES + keyLength, keyEnd);
  }
  return keyEnd;
}

/**
 * Header and key of a record whose values are written from place (a large
 * run), at `out[at..)`; returns where they end. The CRC stored covers the
 * values too (crc32cOfValues: combined from the worker's CRC when known).
 */
export function writeRecordHeaderV2(
  out: Uint8Array,
  view: DataView,
  at: number,
  seq: number,
  syncedSeq: number,
  body: RecordBodyV2,
): number {
  const end = writeHeaderAndKey(out, view, at, seq, syncedSeq, body);
  let crc = crc32cOfRange(out, at + 8, end, crc32cOfRange(out, at, at + 4));
  if (body.run !== null && body.run.length > 0) crc = crc32cOfValues(body.run, crc);
  view.setUint32(at + 4, maskCrc(crc), true);
  return end;
}

/** Up to this many values are copied into a record with setFloat64, not through a byte view. */
const COPY_BY_VALUE_MAX = 32;

/**
 * The writer's encoder: one record with its values inline at `out[at..)`,
 * `view` being a DataView over all of `out` (a whole write batch), without a
 * header object, subarrays or a DataView per record: those small allocations
 * cost more than encoding a small record. Returns the record's length.
 */
export function encodeRecordIntoV2(
  out: Uint8Array,
  view: DataView,
  at: number,
  seq: number,
  syncedSeq: number,
  body: RecordBodyV2,
): number {
  const valuesAt = writeHeaderAndKey(out, view, at, seq, syncedSeq, body);
  const values = body.run;
  const count = values === null ? 0 : values.length;
  if (values !== null) {
    if (count <= COPY_BY_VALUE_MAX) {
      for (let i = 0, o = valuesAt; i < count; i++, o += 8) view.setFloat64(o, values[i], true);
    } else {
      out.set(bytesOf(values), valuesAt);
    }
  }
  const end = valuesAt + 8 * count;
  view.setUint32(at + 4, maskCrc(crc32cOfRange(out, at + 8, end, crc32cOfRange(out, at, at + 4))), true);
  return end - at;
}

export interface RecordV2 extends RecordBodyV2 {
  seq: number;
  syncedSeq: number;
}

/** One record as a fresh byte array (tests, golden files); the writer encodes in place. */
export function encodeRecordV2(record: RecordV2): Uint8Array {
  const count = record.run === null ? 0 : record.run.length;
  const bytes = new Uint8Array(recordLengthV2(count, record.key?.length ?? 0));
  encodeRecordIntoV2(bytes, viewOf(bytes), 0, record.seq, record.syncedSeq, record);
  return bytes;
}

/**
 * Parses the 48 header bytes at `bytes[0..48)` without checking the CRC.
 * Returns null when the fields cannot belong to any record poolq writes
 * (zero length, inconsistent count, unknown op or flag, a key on anything but
 * an append…), which is how a zero-filled or garbage tail is recognised cheaply.
 */
export function decodeRecordHeaderV2(bytes: Uint8Array): WalRecordHeader | null {
  if (bytes.length < V2_RECORD_HEADER_BYTES) return null;
  const view = viewOf(bytes);
  const length = view.getUint32(0, true);
  const op = view.getUint8(32);
  const flags = view.getUint8(33);
  const keyLength = view.getUint8(34);
  const valueCount = view.getUint32(36, true);
  if (length !== recordLengthV2(valueCount, keyLength) || view.getUint8(35) !== 0 || (flags & ~WalFlag.continues) !== 0) return null;
  if (op === WalOp.append) {
    if (valueCount === 0) return null;
  } else if (op === WalOp.delete) {
    if (valueCount !== 0 || keyLength !== 0) return null;
  } else if (op === WalOp.retention) {
    if (valueCount !== 1 || keyLength !== 0) return null;
  } else {
    return null;
  }
  const seq = getU64(view, 8);
  const syncedSeq = getU64(view, 16);
  const poolId = getU64(view, 24);
  const timeMs = getU64(view, 40);
  if (seq < 1 || syncedSeq < 0 || syncedSeq >= seq || poolId < 0 || timeMs < 0) return null;
  return {
    length,
    storedCrc: view.getUint32(4, true),
    headerBytes: V2_RECORD_HEADER_BYTES,
    seq,
    syncedSeq,
    poolId,
    op,
    flags,
    keyLength,
    valueCount,
    timeMs,
  };
}

/** Masked CRC32C of a record from its header bytes and the bytes after the header (key region, values). */
export function recordCrcV2(header: Uint8Array, rest: Uint8Array): number {
  return maskCrc(crc32cOf(rest, headerCrc(header, V2_RECORD_HEADER_BYTES)));
}
