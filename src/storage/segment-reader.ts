// Reading one WAL segment during recovery: buffered positional reads, one
// record at a time (values materialised only for records that will be
// replayed), and the scan that tells a torn tail from corruption.

import { allocateRun, type SortedRun } from '../core/sorted-run.js';
import { bytesOf, crc32cOf, maskCrc } from './binary.js';
import type { FileHandle } from './file-layer.js';
import { decodeRecordHeader, recordCrc, RECORD_HEADER_BYTES, WalOp, type DecodedRecordHeader } from './wal-format.js';

const READ_WINDOW_BYTES = 1 << 20;

/** Buffered positional reads over one segment file. */
export class SegmentReader {
  private window = new Uint8Array(READ_WINDOW_BYTES);
  private start = 0;
  private end = 0;

  constructor(
    private readonly file: FileHandle,
    readonly size: number,
  ) {}

  /** A view of [pos, pos + len) (len <= 1 MiB), or null past the end of file. Valid until the next call. */
  async view(pos: number, len: number): Promise<Uint8Array | null> {
    if (pos + len > this.size) return null;
    if (pos < this.start || pos + len > this.end) {
      const n = await this.file.read(this.window.subarray(0, Math.min(this.window.length, this.size - pos)), pos);
      this.start = pos;
      this.end = pos + n;
      if (n < len) return null;
    }
    return this.window.subarray(pos - this.start, pos - this.start + len);
  }

  async readInto(target: Uint8Array, pos: number): Promise<boolean> {
    if (pos >= this.start && pos + target.length <= this.end) {
      target.set(this.window.subarray(pos - this.start, pos - this.start + target.length));
      return true;
    }
    if (target.length <= this.window.length / 4) {
      const v = await this.view(pos, target.length);
      if (v === null) return false;
      target.set(v);
      return true;
    }
    return (await this.file.read(target, pos)) === target.length;
  }

  /** CRC32C of [pos, pos + len), read in window-sized pieces without allocating. */
  async crcOf(pos: number, len: number, initial: number): Promise<number | null> {
    let crc = initial;
    for (let at = pos; at < pos + len;) {
      const n = Math.min(READ_WINDOW_BYTES, pos + len - at);
      const v = await this.view(at, n);
      if (v === null) return null;
      crc = crc32cOf(v, crc);
      at += n;
    }
    return crc;
  }
}

export type RecordRead = { header: DecodedRecordHeader; run: SortedRun | null } | { invalid: string };

/** Reads the record at `pos`; values are only materialised when `materialise` says so. */
export async function readRecordAt(
  reader: SegmentReader,
  pos: number,
  materialise: (h: DecodedRecordHeader) => boolean,
): Promise<RecordRead> {
  const view = await reader.view(pos, RECORD_HEADER_BYTES);
  if (view === null) return { invalid: `${reader.size - pos} bytes at the end, too short for a record header` };
  const header = decodeRecordHeader(view);
  if (header === null) return { invalid: 'not a record header (zero-filled or garbage)' };
  if (pos + header.length > reader.size) return { invalid: `a ${header.length}-byte record runs past the end of the file` };
  const headerBytes = view.slice();
  if (header.op === WalOp.append && materialise(header)) {
    const run = allocateRun(header.valueCount);
    const bytes = bytesOf(run);
    if (!(await reader.readInto(bytes, pos + RECORD_HEADER_BYTES))) return { invalid: 'record truncated' };
    if (recordCrc(headerBytes, bytes) !== header.storedCrc) return { invalid: 'record CRC mismatch' };
    return { header, run: run as SortedRun }; // written from a SortedRun, CRC-verified
  }
  if (!(await crcMatches(reader, pos, headerBytes, header))) return { invalid: 'record CRC mismatch' };
  return { header, run: null };
}

async function crcMatches(reader: SegmentReader, pos: number, headerBytes: Uint8Array, header: DecodedRecordHeader): Promise<boolean> {
  let crc = crc32cOf(headerBytes.subarray(0, 4));
  crc = crc32cOf(headerBytes.subarray(8, RECORD_HEADER_BYTES), crc);
  const full = await reader.crcOf(pos + RECORD_HEADER_BYTES, header.valueCount * 8, crc);
  return full !== null && maskCrc(full) === header.storedCrc;
}

/**
 * Looks past a bad spot for a valid record that proves the log was durable
 * beyond it: syncedSeq >= `badSeq` (the writer had fdatasync'ed the bad
 * record before writing this one) and not covered by the snapshot. Returns its
 * offset, or null when everything after the bad spot is a torn tail.
 */
export async function findProofOfDurability(
  reader: SegmentReader,
  from: number,
  badSeq: number,
  snapshotSeq: number,
): Promise<number | null> {
  for (let p = Math.ceil(from / 8) * 8; p + RECORD_HEADER_BYTES <= reader.size; p += 8) {
    const view = await reader.view(p, RECORD_HEADER_BYTES);
    if (view === null) break;
    const header = decodeRecordHeader(view);
    if (header === null || header.syncedSeq < badSeq || header.seq <= snapshotSeq) continue;
    if (p + header.length > reader.size) continue;
    if (await crcMatches(reader, p, view.slice(), header)) return p;
  }
  return null;
}
