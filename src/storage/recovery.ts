// Crash recovery: rebuilds the engine from the data directory before the
// server listens. Rules (docs/storage-format.md, "Recovery"):
//
// 1. Leftover `*.tmp` files are half-written snapshots or segments: removed.
// 2. The newest snapshot whose header, index and per-pool CRCs verify is loaded.
//    A newer one that fails is only skipped if the log still holds every record
//    it covered; otherwise start-up is refused naming it. Skipped ones are
//    renamed `*.corrupt` for the operator.
// 3. Segments are replayed in firstSeq order. Records with seq <= the snapshot's
//    are skipped. A segment's first sequence number supersedes the previous
//    segment from there on: the writer opens a new segment after an I/O error
//    and re-writes the records it could not make durable with the same seqs, so
//    replay never applies a record twice.
// 4. In the last segment, the first bad record starts the torn tail (a crash in
//    mid-write): it is cut off (truncate + fdatasync) and the byte count logged,
//    unless a valid record after it carries syncedSeq >= the bad record's seq,
//    which proves the bad record had been fdatasync'ed: that is corruption, and
//    start-up is refused naming file and offset. A bad record inside any
//    earlier segment, or a gap in the sequence, is corruption too.
// 5. The last segment is fdatasync'ed (after a SIGKILL its tail may exist only
//    in the page cache), and the directory fsync'ed if anything was removed.

import type { QuantileEngine } from '../core/engine.js';
import { PoolqError } from '../core/errors.js';
import { allocateRun, type SortedRun } from '../core/sorted-run.js';
import { bytesOf, crc32cOf, maskCrc } from './binary.js';
import { dataDirUnusable, StorageCorruptionError } from './errors.js';
import type { FileHandle, FileLayer } from './file-layer.js';
import { parseSnapshotFileName, readSnapshotFile, SnapshotInvalid, type LoadedSnapshot } from './snapshot-format.js';
import {
  decodeRecordHeader,
  decodeSegmentHeader,
  parseSegmentFileName,
  recordCrc,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  WalOp,
  type DecodedRecordHeader,
} from './wal-format.js';

export interface StorageLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SegmentInfo {
  name: string;
  firstSeq: number;
  /** Bytes on disk (header included). */
  bytes: number;
}

export interface SnapshotFileInfo {
  name: string;
  seq: number;
}

export interface RecoveryReport {
  /** Snapshot loaded, or null when recovery started from an empty state. */
  snapshotFile: string | null;
  snapshotSeq: number;
  snapshotPools: number;
  snapshotValues: number;
  /** Newer snapshots that failed verification, renamed `*.corrupt`. */
  corruptSnapshots: string[];
  segmentsRead: number;
  recordsReplayed: number;
  /** Records already covered by the snapshot (or superseded). */
  recordsSkipped: number;
  /** Bytes cut from torn tails. */
  tornBytes: number;
  /** Highest sequence number in the recovered state. */
  lastSeq: number;
  removedTempFiles: string[];
  durationMs: number;
}

export interface RecoveredState {
  report: RecoveryReport;
  /** Segment files still on disk, ascending firstSeq. */
  segments: SegmentInfo[];
  /** Snapshot files still on disk (the loaded one and any older), ascending seq. */
  snapshots: SnapshotFileInfo[];
}

const READ_WINDOW_BYTES = 1 << 20;

/** Buffered positional reads over one segment file. */
class SegmentReader {
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
    for (let at = pos; at < pos + len; ) {
      const n = Math.min(READ_WINDOW_BYTES, pos + len - at);
      const v = await this.view(at, n);
      if (v === null) return null;
      crc = crc32cOf(v, crc);
      at += n;
    }
    return crc;
  }
}

type RecordRead = { header: DecodedRecordHeader; run: SortedRun | null } | { invalid: string };

/** Reads the record at `pos`; values are only materialised when `materialise` says so. */
async function readRecordAt(reader: SegmentReader, pos: number, materialise: (h: DecodedRecordHeader) => boolean): Promise<RecordRead> {
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
async function findProofOfDurability(reader: SegmentReader, from: number, badSeq: number, snapshotSeq: number): Promise<number | null> {
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

async function sizeOf(files: FileLayer, path: string): Promise<number> {
  const file = await files.open(path, 'read');
  try {
    return await file.size();
  } finally {
    await bestEffort(() => file.close());
  }
}

async function bestEffort(action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch {
    // already failing; the original error is the one worth reporting
  }
}

export interface RecoverOptions {
  files: FileLayer;
  dataDir: string;
  engine: QuantileEngine;
  logger: StorageLogger;
}

/** Fills `engine` (which must be empty) from `dataDir`; see the rules at the top of this file. */
export async function recover({ files, dataDir, engine, logger }: RecoverOptions): Promise<RecoveredState> {
  const started = Date.now();
  const pathOf = (name: string) => `${dataDir}/${name}`;
  const report: RecoveryReport = {
    snapshotFile: null,
    snapshotSeq: 0,
    snapshotPools: 0,
    snapshotValues: 0,
    corruptSnapshots: [],
    segmentsRead: 0,
    recordsReplayed: 0,
    recordsSkipped: 0,
    tornBytes: 0,
    lastSeq: 0,
    removedTempFiles: [],
    durationMs: 0,
  };
  let dirDirty = false;

  try {
    await files.mkdir(dataDir);
  } catch (err) {
    throw dataDirUnusable(dataDir, 'create it', err);
  }
  let names: string[];
  try {
    names = await files.readdir(dataDir);
  } catch (err) {
    throw dataDirUnusable(dataDir, 'list it', err);
  }

  const snapshotFiles: SnapshotFileInfo[] = [];
  const segmentFiles: SegmentInfo[] = [];
  for (const name of names) {
    if (name.endsWith('.tmp')) {
      try {
        await files.unlink(pathOf(name));
      } catch (err) {
        throw dataDirUnusable(dataDir, `remove the leftover ${name}`, err);
      }
      report.removedTempFiles.push(name);
      dirDirty = true;
      continue;
    }
    const snapSeq = parseSnapshotFileName(name);
    if (snapSeq !== null) snapshotFiles.push({ name, seq: snapSeq });
    const firstSeq = parseSegmentFileName(name);
    if (firstSeq !== null) segmentFiles.push({ name, firstSeq, bytes: 0 });
  }
  if (report.removedTempFiles.length > 0) logger.info({ files: report.removedTempFiles }, 'storage: removed leftover temporary files');
  snapshotFiles.sort((a, b) => a.seq - b.seq);
  segmentFiles.sort((a, b) => a.firstSeq - b.firstSeq);

  // 2. Newest snapshot that verifies.
  let loaded: LoadedSnapshot | null = null;
  const corrupt: { info: SnapshotFileInfo; error: SnapshotInvalid }[] = [];
  for (let i = snapshotFiles.length - 1; i >= 0 && loaded === null; i--) {
    const info = snapshotFiles[i];
    try {
      const snap = await readSnapshotFile(files, pathOf(info.name));
      if (snap.seq !== info.seq) throw new SnapshotInvalid(16, `header seq ${snap.seq} does not match the file name`);
      loaded = snap;
      report.snapshotFile = info.name;
    } catch (err) {
      if (!(err instanceof SnapshotInvalid)) throw dataDirUnusable(dataDir, `read ${info.name}`, err);
      logger.error({ file: pathOf(info.name), offset: err.offset, reason: err.reason }, 'storage: snapshot fails verification');
      corrupt.push({ info, error: err });
    }
  }
  const snapshotSeq = loaded?.seq ?? 0;
  const refuseForCorruptSnapshot = (why: string): never => {
    const newest = corrupt[0];
    throw new StorageCorruptionError(pathOf(newest.info.name), newest.error.offset, `${newest.error.reason}; no older snapshot can replace it because ${why}`);
  };

  if (loaded !== null) {
    for (const pool of loaded.pools) engine.replacePool(pool.poolId, pool.runs);
    report.snapshotSeq = loaded.seq;
    report.snapshotPools = loaded.pools.length;
    report.snapshotValues = loaded.values;
  }

  // 3.–4. Replay.
  let expected = snapshotSeq + 1;
  const kept: SegmentInfo[] = [];
  for (let i = 0; i < segmentFiles.length; i++) {
    const seg = segmentFiles[i];
    const path = pathOf(seg.name);
    const isLast = i === segmentFiles.length - 1;
    const neededEnd = isLast ? Number.POSITIVE_INFINITY : segmentFiles[i + 1].firstSeq - 1;
    if (neededEnd < expected) {
      // Every record it holds is in the snapshot or superseded: left for cleanup.
      seg.bytes = await sizeOf(files, path).catch((err: unknown) => {
        throw dataDirUnusable(dataDir, `open ${seg.name}`, err);
      });
      kept.push(seg);
      continue;
    }
    if (seg.firstSeq > expected) {
      const why = `the log resumes at seq ${seg.firstSeq} (${seg.name}) but seq ${expected} is missing`;
      if (corrupt.length > 0) refuseForCorruptSnapshot(why);
      throw new StorageCorruptionError(path, 0, `${why}; the state after seq ${expected - 1} cannot be rebuilt`);
    }
    let file: FileHandle;
    try {
      file = await files.open(path, isLast ? 'readwrite' : 'read');
    } catch (err) {
      throw dataDirUnusable(dataDir, `open ${seg.name}`, err);
    }
    report.segmentsRead++;
    let removeFile = false;
    try {
      const size = await file.size();
      seg.bytes = size;
      const reader = new SegmentReader(file, size);
      const headerView = await reader.view(0, SEGMENT_HEADER_BYTES);
      const header = headerView === null ? { error: `file is ${size} bytes, shorter than the segment header` } : decodeSegmentHeader(headerView);
      const headerError = 'error' in header ? header.error : header.firstSeq !== seg.firstSeq ? `header says firstSeq ${header.firstSeq}, the name ${seg.firstSeq}` : null;
      if (headerError !== null) {
        if (!isLast) throw new StorageCorruptionError(path, 0, `bad segment header: ${headerError}`);
        // The writer makes a segment's header durable before any record goes in,
        // so a bad header with no valid record after it is an unfinished creation.
        const proof = await findProofOfDurability(reader, 8, 0, snapshotSeq);
        if (proof !== null) throw new StorageCorruptionError(path, 0, `bad segment header (${headerError}) but a valid record follows at offset ${proof}`);
        logger.warn({ file: path, bytes: size, reason: headerError }, 'wal: removing a segment whose creation did not finish');
        report.tornBytes += size;
        removeFile = true;
      } else {
        let pos = SEGMENT_HEADER_BYTES;
        let prev = seg.firstSeq - 1;
        let bad: { pos: number; reason: string } | null = null;
        while (pos < size && !(prev >= neededEnd)) {
          const read = await readRecordAt(reader, pos, (h) => h.seq === expected);
          if ('invalid' in read) {
            bad = { pos, reason: read.invalid };
            break;
          }
          const h = read.header;
          if (h.seq !== prev + 1) {
            bad = { pos, reason: `sequence jumps from ${prev} to ${h.seq}` };
            break;
          }
          if (h.seq === expected) {
            if (h.op === WalOp.append) engine.appendSortedRun(h.poolId, read.run!);
            else engine.deletePool(h.poolId);
            expected++;
            report.recordsReplayed++;
          } else {
            report.recordsSkipped++;
          }
          prev = h.seq;
          pos += h.length;
        }

        if (!isLast) {
          if (prev < neededEnd) {
            const reason = bad?.reason ?? `the segment ends at seq ${prev}`;
            throw new StorageCorruptionError(path, bad?.pos ?? pos, `${reason}, but records up to seq ${neededEnd} belong in this segment (the next starts at ${neededEnd + 1})`);
          }
        } else if (bad !== null) {
          const proof = await findProofOfDurability(reader, bad.pos + 8, prev + 1, snapshotSeq);
          if (proof !== null) {
            throw new StorageCorruptionError(path, bad.pos, `${bad.reason} (seq ${prev + 1}), and the valid record at offset ${proof} was written after that seq was fdatasync'ed`);
          }
          await file.truncate(bad.pos);
          report.tornBytes += size - bad.pos;
          seg.bytes = bad.pos;
          logger.warn({ file: path, offset: bad.pos, bytes: size - bad.pos, reason: bad.reason }, 'wal: cut torn tail');
        }
        if (isLast) await file.datasync();
      }
    } catch (err) {
      // Corruption, and an engine refusing a replayed change (e.g. the WASM
      // engine out of memory), are reported as they are; the rest is I/O.
      if (err instanceof PoolqError) throw err;
      throw dataDirUnusable(dataDir, `read or repair ${seg.name}`, err);
    } finally {
      await bestEffort(() => file.close());
    }
    if (removeFile) {
      try {
        await files.unlink(path);
      } catch (err) {
        throw dataDirUnusable(dataDir, `remove ${seg.name}`, err);
      }
      dirDirty = true;
    } else {
      kept.push(seg);
    }
  }
  report.lastSeq = expected - 1;

  // A skipped corrupt snapshot is only harmless if the log reached its seq.
  for (const { info } of corrupt) {
    if (info.seq > report.lastSeq) refuseForCorruptSnapshot(`the log ends at seq ${report.lastSeq}, before its seq ${info.seq}`);
  }
  for (const { info } of corrupt) {
    try {
      await files.rename(pathOf(info.name), pathOf(`${info.name}.corrupt`));
    } catch (err) {
      throw dataDirUnusable(dataDir, `set aside ${info.name}`, err);
    }
    report.corruptSnapshots.push(info.name);
    dirDirty = true;
  }
  if (dirDirty) {
    try {
      await files.fsyncDir(dataDir);
    } catch (err) {
      throw dataDirUnusable(dataDir, 'fsync it', err);
    }
  }

  report.durationMs = Date.now() - started;
  const snapshots = snapshotFiles.filter((s) => !corrupt.some((c) => c.info === s));
  return { report, segments: kept, snapshots };
}
