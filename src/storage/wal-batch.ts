// One group commit as the chunks of one write: small records are encoded in
// place, back to back, in one buffer; a large record's values are written from
// the run itself, so a 10⁶-value append is never copied.

import { bytesOf, viewOf } from './binary.js';
import type { LogRecord } from './storage-types.js';
import { paddedKeyBytes } from './wal-format.js';
import { encodeRecordIntoV2, V2_RECORD_HEADER_BYTES, writeRecordHeaderV2 } from './wal-record-v2.js';

/** Values up to this size are copied into the batch buffer; larger runs are written from place. */
const INLINE_VALUE_BYTES = 64 << 10;
/** Keep each write chunk well below Node's 2 GiB single-I/O limit. */
const MAX_CHUNK_BYTES = 256 << 20;

export interface EncodedBatch {
  chunks: Uint8Array[];
  /** Bytes over all chunks. */
  bytes: number;
}

const writtenFromPlace = (r: LogRecord) => r.run !== null && r.run.length * 8 > INLINE_VALUE_BYTES;

/** Encodes `batch` in order (format version 2), every record carrying `syncedSeq`. */
export function encodeBatch(batch: readonly LogRecord[], syncedSeq: number): EncodedBatch {
  let inlineBytes = 0;
  for (const r of batch) inlineBytes += writtenFromPlace(r) ? V2_RECORD_HEADER_BYTES + paddedKeyBytes(r.key?.length ?? 0) : r.bytes;
  const buffer = new Uint8Array(inlineBytes);
  const view = viewOf(buffer);
  const chunks: Uint8Array[] = [];
  let at = 0;
  let sliceStart = 0;
  let total = 0;
  for (const r of batch) {
    if (writtenFromPlace(r)) {
      at = writeRecordHeaderV2(buffer, view, at, r.seq, syncedSeq, r);
      chunks.push(buffer.subarray(sliceStart, at));
      const bytes = bytesOf(r.run!);
      for (let o = 0; o < bytes.length; o += MAX_CHUNK_BYTES) chunks.push(bytes.subarray(o, Math.min(bytes.length, o + MAX_CHUNK_BYTES)));
      sliceStart = at;
    } else {
      at += encodeRecordIntoV2(buffer, view, at, r.seq, syncedSeq, r);
    }
    total += r.bytes;
  }
  if (at > sliceStart) chunks.push(buffer.subarray(sliceStart, at));
  return { chunks, bytes: total };
}
