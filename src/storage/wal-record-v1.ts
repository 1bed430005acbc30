// WAL records, format version 1: read at recovery so a data directory written
// before version 2 still opens; written only by tests and golden files.
//
//   recordLength u32 | maskedCrc u32 | seq u64 | syncedSeq u64 | poolId u64 |
//   op u32 | valueCount u32 | values f64[valueCount]
//
// Ops are append (valueCount >= 1) and delete (valueCount 0); no time, key or
// flags.

import { bytesOf, crc32cOf, crc32cOfValues, getU64, maskCrc, setU64, viewOf } from './binary.js';
import { headerCrc, WalOp, type WalRecordHeader } from './wal-format.js';

export const V1_RECORD_HEADER_BYTES = 40;

export function recordLengthV1(valueCount: number): number {
  return V1_RECORD_HEADER_BYTES + 8 * valueCount;
}

export interface RecordV1 {
  seq: number;
  syncedSeq: number;
  poolId: number;
  op: typeof WalOp.append | typeof WalOp.delete;
}

/** One version 1 record as a fresh byte array (tests, golden files). */
export function encodeRecordV1(header: RecordV1, values: Float64Array | null): Uint8Array {
  const count = values === null ? 0 : values.length;
  const bytes = new Uint8Array(recordLengthV1(count));
  if (values !== null) bytes.set(bytesOf(values), V1_RECORD_HEADER_BYTES);
  const view = viewOf(bytes);
  view.setUint32(0, recordLengthV1(count), true);
  setU64(view, 8, header.seq);
  setU64(view, 16, header.syncedSeq);
  setU64(view, 24, header.poolId);
  view.setUint32(32, header.op, true);
  view.setUint32(36, count, true);
  const crc = headerCrc(bytes, V1_RECORD_HEADER_BYTES);
  view.setUint32(4, maskCrc(values === null || count === 0 ? crc : crc32cOfValues(values, crc)), true);
  return bytes;
}

/**
 * Parses the 40 header bytes at `bytes[0..40)` without checking the CRC.
 * Returns null when the fields cannot belong to any record poolq writes
 * (zero length, inconsistent count, unknown op…), which is how a zero-filled
 * or garbage tail is recognised cheaply.
 */
export function decodeRecordHeaderV1(bytes: Uint8Array): WalRecordHeader | null {
  if (bytes.length < V1_RECORD_HEADER_BYTES) return null;
  const view = viewOf(bytes);
  const length = view.getUint32(0, true);
  const valueCount = view.getUint32(36, true);
  if (length !== recordLengthV1(valueCount)) return null;
  const op = view.getUint32(32, true);
  if (op === WalOp.append) {
    if (valueCount === 0) return null;
  } else if (op === WalOp.delete) {
    if (valueCount !== 0) return null;
  } else {
    return null;
  }
  const seq = getU64(view, 8);
  const syncedSeq = getU64(view, 16);
  const poolId = getU64(view, 24);
  if (seq < 1 || syncedSeq < 0 || syncedSeq >= seq || poolId < 0) return null;
  return {
    length,
    storedCrc: view.getUint32(4, true),
    headerBytes: V1_RECORD_HEADER_BYTES,
    seq,
    syncedSeq,
    poolId,
    op,
    flags: 0,
    keyLength: 0,
    valueCount,
    timeMs: null,
  };
}

/** Masked CRC32C of a version 1 record from its header bytes and value bytes (tests). */
export function recordCrcV1(header: Uint8Array, valueBytes: Uint8Array | null): number {
  const crc = headerCrc(header, V1_RECORD_HEADER_BYTES);
  return maskCrc(valueBytes === null || valueBytes.length === 0 ? crc : crc32cOf(valueBytes, crc));
}
