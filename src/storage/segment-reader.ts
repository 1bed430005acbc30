// Reading one WAL segment during recovery: buffered positional reads, one
// record at a time of either format version (values materialised only for
// records that will be replayed), and the scan that tells a torn tail from
// corruption.

import { allocateRun } from '../core/sorted-run.js';
import { bytesOf, crc32cOf, maskCrc } from './binary.js';
import type { FileHandle } from './file-layer.js';
import { headerCrc, paddedKeyBytes, type WalRecordHeader, type WalVersion } from './wal-format.js';
import { decodeRecordHeaderV1, V1_RECORD_HEADER_BYTES } from './wal-record-v1.js';
import { decodeRecordHeaderV2, V2_RECORD_HEADER_BYTES } from './wal-record-v2.js';

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

/** A record as read: its header, and when materialised its key and values (retention: the window as one value). */
export type RecordRead = { header: WalRecordHeader; key: Uint8Array | null; run: Float64Array | null } | { invalid: string };

const HEADER_BYTES: Record<WalVersion, number> = { 1: V1_RECORD_HEADER_BYTES, 2: V2_RECORD_HEADER_BYTES };
const DECODERS: Record<WalVersion, (bytes: Uint8Array) => WalRecordHeader | null> = { 1: decodeRecordHeaderV1, 2: decodeRecordHeaderV2 };

/**
 * Reads the record at `pos` of a segment of `version`; key and values are only
 * materialised when `materialise` says so (the others are CRC-checked as they
 * stream past).
 */
export async function readRecordAt(
  reader: SegmentReader,
  pos: number,
  version: WalVersion,
  materialise: (h: WalRecordHeader) => boolean,
): Promise<RecordRead> {
  const headerLength = HEADER_BYTES[version];
  const view = await reader.view(pos, headerLength);
  if (view === null) return { invalid: `${reader.size - pos} bytes at the end, too short for a record header` };
  const header = DECODERS[version](view);
  if (header === null) return { invalid: 'not a record header (zero-filled or garbage)' };
  if (pos + header.length > reader.size) return { invalid: `a ${header.length}-byte record runs past the end of the file` };
  const headerBytes = view.slice();
  if (!materialise(header)) {
    return (await crcMatches(reader, pos, headerBytes, header)) ? { header, key: null, run: null } : { invalid: 'record CRC mismatch' };
  }
  let crc = headerCrc(headerBytes, headerLength);
  let key: Uint8Array | null = null;
  const keyRegion = paddedKeyBytes(header.keyLength);
  if (keyRegion > 0) {
    const padded = new Uint8Array(keyRegion);
    if (!(await reader.readInto(padded, pos + headerLength))) return { invalid: 'record truncated' };
    crc = crc32cOf(padded, crc);
    if (padded.subarray(header.keyLength).some((b) => b !== 0)) return { invalid: 'key padding is not zero' };
    key = padded.subarray(0, header.keyLength);
  }
  let run: Float64Array | null = null;
  if (header.valueCount > 0) {
    run = allocateRun(header.valueCount);
    const bytes = bytesOf(run);
    if (!(await reader.readInto(bytes, pos + headerLength + keyRegion))) return { invalid: 'record truncated' };
    crc = crc32cOf(bytes, crc);
  }
  if (maskCrc(crc) !== header.storedCrc) return { invalid: 'record CRC mismatch' };
  return { header, key, run };
}

async function crcMatches(reader: SegmentReader, pos: number, headerBytes: Uint8Array, header: WalRecordHeader): Promise<boolean> {
  const rest = header.length - header.headerBytes;
  const full = await reader.crcOf(pos + header.headerBytes, rest, headerCrc(headerBytes, header.headerBytes));
  return full !== null && maskCrc(full) === header.storedCrc;
}

/** The valid record header at `p` of a segment of `version` (null: either version), or null. */
async function headerAt(
  reader: SegmentReader,
  p: number,
  version: WalVersion | null,
): Promise<{ header: WalRecordHeader; bytes: Uint8Array } | null> {
  for (const v of version === null ? ([2, 1] as const) : [version]) {
    const view = await reader.view(p, HEADER_BYTES[v]);
    if (view === null) continue;
    const header = DECODERS[v](view);
    if (header !== null) return { header, bytes: view.slice() };
  }
  return null;
}

/**
 * Looks past a bad spot for a valid record that proves the log was durable
 * beyond it: syncedSeq >= `badSeq` (the writer had fdatasync'ed the bad
 * record before writing this one) and not covered by the snapshot. Returns its
 * offset, or null when everything after the bad spot is a torn tail. With a
 * null `version` (the segment header itself is bad) records of either are recognised.
 */
export async function findProofOfDurability(
  reader: SegmentReader,
  from: number,
  badSeq: number,
  snapshotSeq: number,
  version: WalVersion | null,
): Promise<number | null> {
  for (let p = Math.ceil(from / 8) * 8; p + V1_RECORD_HEADER_BYTES <= reader.size; p += 8) {
    const found = await headerAt(reader, p, version);
    if (found === null) continue;
    const { header, bytes } = found;
    if (header.syncedSeq < badSeq || header.seq <= snapshotSeq || p + header.length > reader.size) continue;
    if (await crcMatches(reader, p, bytes, header)) return p;
  }
  return null;
}
