// WAL segment files (docs/storage-format.md has the byte tables). A segment
// `wal-<firstSeq as 16 hex digits>.log` is a 32-byte header followed by
// records, each 8-byte aligned and self-describing. The header's version says
// how its records are laid out: version 1 (wal-record-v1.ts) is read, version
// 2 (wal-record-v2.ts) is read and written.
//
// Every record carries a CRC (CRC32C, masked as in LevelDB) over its length
// and everything after the CRC field, its own sequence number (RocksDB puts
// the log number in each record for the same reason: a record is recognisable
// on its own), and `syncedSeq`, the highest sequence number the writer knew to
// be fdatasync'ed when it wrote the record. Recovery uses it to tell a torn
// tail (the unsynced end of the log, damaged in any pattern by a power cut)
// from corruption (a record that a later, valid record proves was durable).

import { asciiBytes, bytesEqual, crc32cOf, getU64, hex16, maskCrc, setU64, viewOf } from './binary.js';

export const WAL_MAGIC = asciiBytes('POOLQWAL');
export const WAL_VERSION_1 = 1;
export const WAL_VERSION_2 = 2;
/** The version the writer writes. */
export const WAL_VERSION = WAL_VERSION_2;
export type WalVersion = typeof WAL_VERSION_1 | typeof WAL_VERSION_2;
export const SEGMENT_HEADER_BYTES = 32;

export const WalOp = { append: 1, delete: 2, retention: 3 } as const;
export type WalOp = (typeof WalOp)[keyof typeof WalOp];

/** Record flags (version 2). */
export const WalFlag = {
  /** More records of the same transaction follow; recovery applies a transaction only once its last record is read. */
  continues: 1,
} as const;

/** Longest idempotency key the store accepts, in UTF-8 bytes (the format has room for 255). */
export const MAX_KEY_BYTES = 64;

/** A record header as either version decodes it. */
export interface WalRecordHeader {
  /** Total bytes of the record, header included. */
  length: number;
  /** The masked CRC as stored. */
  storedCrc: number;
  /** 40 (version 1) or 48 (version 2): where the key (then the values) start. */
  headerBytes: number;
  seq: number;
  syncedSeq: number;
  poolId: number;
  op: WalOp;
  flags: number;
  keyLength: number;
  valueCount: number;
  /** When the change was accepted (ms since the epoch); null in version 1. */
  timeMs: number | null;
}

/** Bytes the key takes in a record: its length rounded up to 8, so values stay 8-byte aligned. */
export function paddedKeyBytes(keyLength: number): number {
  return (keyLength + 7) & ~7;
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

export function encodeSegmentHeader(firstSeq: number, version: WalVersion = WAL_VERSION): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = viewOf(bytes);
  bytes.set(WAL_MAGIC, 0);
  view.setUint32(8, version, true);
  view.setUint32(12, SEGMENT_HEADER_BYTES, true);
  setU64(view, 16, firstSeq);
  view.setUint32(24, 0, true);
  view.setUint32(28, maskCrc(crc32cOf(bytes.subarray(0, 28))), true);
  return bytes;
}

/** The segment's firstSeq and version, or a reason the header is not a valid one. */
export function decodeSegmentHeader(bytes: Uint8Array): { firstSeq: number; version: WalVersion } | { error: string } {
  if (bytes.length < SEGMENT_HEADER_BYTES) return { error: `header is ${bytes.length} bytes, expected ${SEGMENT_HEADER_BYTES}` };
  const view = viewOf(bytes);
  if (view.getUint32(28, true) !== maskCrc(crc32cOf(bytes.subarray(0, 28)))) return { error: 'header CRC mismatch' };
  if (!bytesEqual(bytes.subarray(0, 8), WAL_MAGIC)) return { error: 'bad magic' };
  const version = view.getUint32(8, true);
  if (version !== WAL_VERSION_1 && version !== WAL_VERSION_2) return { error: `unsupported WAL version ${version}` };
  if (view.getUint32(12, true) !== SEGMENT_HEADER_BYTES) return { error: 'bad header length' };
  const firstSeq = getU64(view, 16);
  if (firstSeq < 1) return { error: 'bad firstSeq' };
  return { firstSeq, version };
}

/** Unmasked CRC32C over a record header's length field and its fields after the CRC. */
export function headerCrc(header: Uint8Array, headerBytes: number, start = 0): number {
  return crc32cOf(header.subarray(start + 8, start + headerBytes), crc32cOf(header.subarray(start, start + 4)));
}
