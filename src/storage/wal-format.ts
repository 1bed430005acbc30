// WAL format v1 (docs/storage-format.md has the byte tables). A segment file
// `wal-<firstSeq as 16 hex digits>.log` is a 32-byte header followed by
// records, each 8-byte aligned and self-describing:
//
//   recordLength u32 | maskedCrc u32 | seq u64 | syncedSeq u64 | poolId u64 |
//   op u32 | valueCount u32 | values f64[valueCount]
//
// The CRC (CRC32C, masked as in LevelDB) covers the length and everything after
// the CRC field. Each record carries its own sequence number (RocksDB puts the
// log number in each record for the same reason: a record is recognisable on
// its own), and `syncedSeq`, the highest sequence number the writer knew to be
// fdatasync'ed when it wrote the record. Recovery uses it to tell a torn tail
// (the unsynced end of the log, damaged in any pattern by a power cut) from
// corruption (a record that a later, valid record proves was durable).

import {
  asciiBytes,
  bytesEqual,
  bytesOf,
  crc32cOf,
  crc32cOfRange,
  crc32cOfValues,
  getU64,
  hex16,
  maskCrc,
  setU64,
  viewOf,
} from './binary.js';

export const WAL_MAGIC = asciiBytes('POOLQWAL');
export const WAL_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 40;

export const WalOp = { append: 1, delete: 2 } as const;
export type WalOp = (typeof WalOp)[keyof typeof WalOp];

/** recordLength is a u32: at most this many values fit in one record (~4 GiB). */
export const MAX_RECORD_VALUES = Math.floor((0xffff_ffff - RECORD_HEADER_BYTES) / 8);

export interface RecordHeader {
  seq: number;
  syncedSeq: number;
  poolId: number;
  op: WalOp;
  valueCount: number;
}

export interface DecodedRecordHeader extends RecordHeader {
  /** Total bytes of the record, header included (40 + 8 × valueCount). */
  length: number;
  /** The masked CRC as stored. */
  storedCrc: number;
}

const SEGMENT_NAME = /^wal-([0-9a-f]{16})\.log$/;

export function segmentFileName(firstSeq: number): string {
  return `wal-${hex16(firstSeq)}.log`;
}

/** firstSeq from a segment file name, or null if `name` is not one. */
export function parseSegmentFileName(name: string): number | null {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return null;
  const n = Number.parseInt(m[1], 16);
  return Number.isSafeInteger(n) ? n : null;
}

export function recordLength(valueCount: number): number {
  return RECORD_HEADER_BYTES + 8 * valueCount;
}

export function encodeSegmentHeader(firstSeq: number): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = viewOf(bytes);
  bytes.set(WAL_MAGIC, 0);
  view.setUint32(8, WAL_VERSION, true);
  view.setUint32(12, SEGMENT_HEADER_BYTES, true);
  setU64(view, 16, firstSeq);
  view.setUint32(24, 0, true);
  view.setUint32(28, maskCrc(crc32cOf(bytes.subarray(0, 28))), true);
  return bytes;
}

/** The segment's firstSeq, or a reason the header is not a valid v1 header. */
export function decodeSegmentHeader(bytes: Uint8Array): { firstSeq: number } | { error: string } {
  if (bytes.length < SEGMENT_HEADER_BYTES) return { error: `header is ${bytes.length} bytes, expected ${SEGMENT_HEADER_BYTES}` };
  const view = viewOf(bytes);
  if (view.getUint32(28, true) !== maskCrc(crc32cOf(bytes.subarray(0, 28)))) return { error: 'header CRC mismatch' };
  if (!bytesEqual(bytes.subarray(0, 8), WAL_MAGIC)) return { error: 'bad magic' };
  const version = view.getUint32(8, true);
  if (version !== WAL_VERSION) return { error: `unsupported WAL version ${version}` };
  if (view.getUint32(12, true) !== SEGMENT_HEADER_BYTES) return { error: 'bad header length' };
  const firstSeq = getU64(view, 16);
  if (firstSeq < 1) return { error: 'bad firstSeq' };
  return { firstSeq };
}

/**
 * Fills `target[0..40)` with the record header and returns the masked CRC it
 * stored. `values` must be exactly the record's values (null for a delete).
 */
export function writeRecordHeader(target: Uint8Array, header: RecordHeader, values: Float64Array | null): number {
  const view = viewOf(target);
  const count = values === null ? 0 : values.length;
  writeHeaderFields(view, 0, header.seq, header.syncedSeq, header.poolId, header.op, count);
  const crc = maskCrc(values === null || values.length === 0 ? headerCrc(target) : crc32cOfValues(values, headerCrc(target)));
  view.setUint32(4, crc, true);
  return crc;
}

/** The record header's fields at `view[at..at + 40)`, all but the CRC. */
function writeHeaderFields(view: DataView, at: number, seq: number, syncedSeq: number, poolId: number, op: WalOp, count: number): void {
  view.setUint32(at, recordLength(count), true);
  setU64(view, at + 8, seq);
  setU64(view, at + 16, syncedSeq);
  setU64(view, at + 24, poolId);
  view.setUint32(at + 32, op, true);
  view.setUint32(at + 36, count, true);
}

/** Unmasked CRC32C over the length and the header fields after the CRC. */
function headerCrc(header: Uint8Array): number {
  return crc32cOf(header.subarray(8, RECORD_HEADER_BYTES), crc32cOf(header.subarray(0, 4)));
}

/** Masked CRC32C over length, the header fields after the CRC, and the value bytes. */
export function recordCrc(header: Uint8Array, valueBytes: Uint8Array | null): number {
  const crc = headerCrc(header);
  return maskCrc(valueBytes === null || valueBytes.length === 0 ? crc : crc32cOf(valueBytes, crc));
}

/** One record as a fresh byte array (tests, golden files); the writer encodes in place. */
export function encodeRecord(header: Omit<RecordHeader, 'valueCount'>, values: Float64Array | null): Uint8Array {
  const count = values === null ? 0 : values.length;
  const bytes = new Uint8Array(recordLength(count));
  if (values !== null) bytes.set(bytesOf(values), RECORD_HEADER_BYTES);
  writeRecordHeader(bytes, { ...header, valueCount: count }, values);
  return bytes;
}

/** Up to this many values are copied into a record with setFloat64, not through a byte view. */
const COPY_BY_VALUE_MAX = 32;

/**
 * The log writer's encoder: one record with its values inline at `out[at..)`,
 * `view` being a DataView over all of `out` (a whole write batch). The same
 * bytes as encodeRecord, without a header object, subarrays or a DataView per
 * record: those small allocations cost more than encoding a small record.
 * Returns the masked CRC it stored.
 */
export function encodeRecordInto(
  out: Uint8Array,
  view: DataView,
  at: number,
  seq: number,
  syncedSeq: number,
  poolId: number,
  op: WalOp,
  values: Float64Array | null,
): number {
  const count = values === null ? 0 : values.length;
  const length = recordLength(count);
  writeHeaderFields(view, at, seq, syncedSeq, poolId, op, count);
  if (values !== null) {
    if (count <= COPY_BY_VALUE_MAX) {
      for (let i = 0, o = at + RECORD_HEADER_BYTES; i < count; i++, o += 8) view.setFloat64(o, values[i], true);
    } else {
      out.set(bytesOf(values), at + RECORD_HEADER_BYTES);
    }
  }
  const crc = maskCrc(crc32cOfRange(out, at + 8, at + length, crc32cOfRange(out, at, at + 4)));
  view.setUint32(at + 4, crc, true);
  return crc;
}

/**
 * Parses the 40 header bytes at `bytes[0..40)` without checking the CRC.
 * Returns null when the fields cannot belong to any record poolq writes
 * (zero length, misaligned, inconsistent count, unknown op…), which is how
 * a zero-filled or garbage tail is recognised cheaply.
 */
export function decodeRecordHeader(bytes: Uint8Array): DecodedRecordHeader | null {
  const view = viewOf(bytes);
  const length = view.getUint32(0, true);
  const valueCount = view.getUint32(36, true);
  if (length !== recordLength(valueCount)) return null;
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
  return { length, storedCrc: view.getUint32(4, true), seq, syncedSeq, poolId, op: op as WalOp, valueCount };
}
