// Replaying the WAL into the engine (rules 3 and 4 of recovery.ts): segments
// in firstSeq order, records of either format version, transactions applied
// only once their last record is read, keys and times handed on. A torn tail,
// including an unfinished transaction, is cut off the last segment.

import type { QuantileEngine } from '../core/engine.js';
import { PoolqError } from '../core/errors.js';
import { applyChange } from './apply-change.js';
import { bestEffort, dataDirUnusable, StorageCorruptionError } from './errors.js';
import type { FileHandle, FileLayer } from './file-layer.js';
import type { IdempotencyKeys } from './idempotency-keys.js';
import { findProofOfDurability, readRecordAt, SegmentReader } from './segment-reader.js';
import type { AppendOutcome } from '../core/engine.js';
import type { RecoveryReport, SegmentInfo, StorageLogger } from './storage-types.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES, WalFlag, WalOp, type WalRecordHeader, type WalVersion } from './wal-format.js';

/** One recovery in progress: its inputs, its report, and whether the directory changed. */
export interface Recovery {
  files: FileLayer;
  dataDir: string;
  engine: QuantileEngine;
  logger: StorageLogger;
  keys: IdempotencyKeys;
  report: RecoveryReport;
  dirDirty: boolean;
}

export const pathIn = (rec: Recovery, name: string) => `${rec.dataDir}/${name}`;

/** A record of an open transaction, read but not yet applied. */
interface PendingRecord {
  header: WalRecordHeader;
  key: Uint8Array | null;
  run: Float64Array | null;
  /** Offset in its segment. */
  pos: number;
}

/** Where replay stands: the next seq to read, the records of the open transaction, and the snapshot it started from. */
interface ReplayPosition {
  expected: number;
  pending: PendingRecord[];
  snapshotSeq: number;
}

const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Applies the open transaction (its last record just read) and records its key. */
function commitPending(rec: Recovery, at: ReplayPosition): void {
  const results = at.pending.map((p) => applyChange(rec.engine, p.header.op, p.header.poolId, p.run, p.header.timeMs));
  const last = at.pending[at.pending.length - 1];
  if (last.key !== null) {
    const appends = at.pending.filter((p) => p.header.op === WalOp.append);
    const items = appends.map((p) => ({ poolId: p.header.poolId, valueCount: p.header.valueCount }));
    const outcomes = results.filter((_, i) => at.pending[i].header.op === WalOp.append) as AppendOutcome[];
    rec.keys.add(fromUtf8.decode(last.key), last.header.seq, last.header.timeMs ?? 0, items, outcomes);
  }
  rec.report.recordsReplayed += at.pending.length;
  at.pending = [];
}

/** Why a materialised record cannot be applied, or null (the CRC matched, so only a writer bug gets here). */
function unusable(read: { header: WalRecordHeader; key: Uint8Array | null; run: Float64Array | null }): string | null {
  if (read.header.op === WalOp.retention) {
    const window = read.run![0];
    if (!Number.isSafeInteger(window) || window < 0) return `retention window ${window} is not a whole number of seconds`;
  }
  if (read.key !== null) {
    try {
      fromUtf8.decode(read.key);
    } catch {
      return 'key is not UTF-8';
    }
  }
  return null;
}

/**
 * Phase 3: replay every segment in firstSeq order from snapshotSeq + 1, cutting
 * a torn tail off the last one. Returns the segments still on disk. A missing
 * record is blamed on `refuse` (a skipped corrupt snapshot) when there is one.
 */
export async function replayLog(
  rec: Recovery,
  segmentFiles: SegmentInfo[],
  snapshotSeq: number,
  refuse: ((why: string) => never) | null,
): Promise<SegmentInfo[]> {
  const at: ReplayPosition = { expected: snapshotSeq + 1, pending: [], snapshotSeq };
  const kept: SegmentInfo[] = [];
  for (let i = 0; i < segmentFiles.length; i++) {
    const seg = segmentFiles[i];
    const isLast = i === segmentFiles.length - 1;
    const neededEnd = isLast ? Number.POSITIVE_INFINITY : segmentFiles[i + 1].firstSeq - 1;
    if (neededEnd < at.expected) {
      // Every record it holds is in the snapshot or superseded: left for cleanup.
      seg.bytes = await sizeOf(rec.files, pathIn(rec, seg.name)).catch((err: unknown) => {
        throw dataDirUnusable(rec.dataDir, `open ${seg.name}`, err);
      });
      kept.push(seg);
      continue;
    }
    if (seg.firstSeq > at.expected) {
      const why = `the log resumes at seq ${seg.firstSeq} (${seg.name}) but seq ${at.expected} is missing`;
      if (refuse !== null) refuse(why);
      throw new StorageCorruptionError(pathIn(rec, seg.name), 0, `${why}; the state after seq ${at.expected - 1} cannot be rebuilt`);
    }
    if (await replaySegment(rec, seg, isLast, neededEnd, at)) kept.push(seg);
  }
  rec.report.lastSeq = at.expected - 1;
  return kept;
}

async function sizeOf(files: FileLayer, path: string): Promise<number> {
  const file = await files.open(path, 'read');
  try {
    return await file.size();
  } finally {
    await bestEffort(() => file.close());
  }
}

/** Replays one segment; returns false when the segment was an unfinished creation and has been removed. */
async function replaySegment(rec: Recovery, seg: SegmentInfo, isLast: boolean, neededEnd: number, at: ReplayPosition): Promise<boolean> {
  const path = pathIn(rec, seg.name);
  let file: FileHandle;
  try {
    file = await rec.files.open(path, isLast ? 'readwrite' : 'read');
  } catch (err) {
    throw dataDirUnusable(rec.dataDir, `open ${seg.name}`, err);
  }
  rec.report.segmentsRead++;
  let keep = true;
  try {
    const size = await file.size();
    seg.bytes = size;
    const reader = new SegmentReader(file, size);
    const headerView = await reader.view(0, SEGMENT_HEADER_BYTES);
    const header =
      headerView === null ? { error: `file is ${size} bytes, shorter than the segment header` } : decodeSegmentHeader(headerView);
    const headerError =
      'error' in header
        ? header.error
        : header.firstSeq !== seg.firstSeq
          ? `header says firstSeq ${header.firstSeq}, the name ${seg.firstSeq}`
          : null;
    if (headerError !== null || 'error' in header) {
      const why = headerError ?? 'bad header';
      if (!isLast) throw new StorageCorruptionError(path, 0, `bad segment header: ${why}`);
      keep = !(await dropUnfinishedSegment(rec, path, reader, why, at.snapshotSeq));
    } else {
      await replayRecords(rec, path, seg, file, reader, header.version, isLast, neededEnd, at);
      if (isLast) await file.datasync();
    }
  } catch (err) {
    // Corruption, and an engine refusing a replayed change (e.g. the WASM
    // engine out of memory), are reported as they are; the rest is I/O.
    if (err instanceof PoolqError) throw err;
    throw dataDirUnusable(rec.dataDir, `read or repair ${seg.name}`, err);
  } finally {
    await bestEffort(() => file.close());
  }
  if (!keep) {
    try {
      await rec.files.unlink(path);
    } catch (err) {
      throw dataDirUnusable(rec.dataDir, `remove ${seg.name}`, err);
    }
    rec.dirDirty = true;
  }
  return keep;
}

/**
 * The writer makes a segment's header durable before any record goes in, so a
 * last segment with a bad header and no valid record after it is an
 * unfinished creation: it is to be removed (returns true). A valid record in it
 * is corruption.
 */
async function dropUnfinishedSegment(
  rec: Recovery,
  path: string,
  reader: SegmentReader,
  headerError: string,
  snapshotSeq: number,
): Promise<boolean> {
  const proof = await findProofOfDurability(reader, 8, 0, snapshotSeq, null);
  if (proof !== null)
    throw new StorageCorruptionError(path, 0, `bad segment header (${headerError}) but a valid record follows at offset ${proof}`);
  rec.logger.warn({ file: path, bytes: reader.size, reason: headerError }, 'wal: removing a segment whose creation did not finish');
  rec.report.tornBytes += reader.size;
  return true;
}

/**
 * Applies the segment's records from `at.expected` on, up to `neededEnd`;
 * handles a bad record as corruption or torn tail, and cuts an unfinished
 * transaction off the end of the log.
 */
async function replayRecords(
  rec: Recovery,
  path: string,
  seg: SegmentInfo,
  file: FileHandle,
  reader: SegmentReader,
  version: WalVersion,
  isLast: boolean,
  neededEnd: number,
  at: ReplayPosition,
): Promise<void> {
  const { report } = rec;
  const size = reader.size;
  let pos = SEGMENT_HEADER_BYTES;
  let prev = seg.firstSeq - 1;
  let bad: { pos: number; reason: string } | null = null;
  while (pos < size && !(prev >= neededEnd)) {
    const read = await readRecordAt(reader, pos, version, (h) => h.seq === at.expected);
    if ('invalid' in read) {
      bad = { pos, reason: read.invalid };
      break;
    }
    const h = read.header;
    if (h.seq !== prev + 1) {
      bad = { pos, reason: `sequence jumps from ${prev} to ${h.seq}` };
      break;
    }
    if (h.seq === at.expected) {
      const why = unusable(read);
      if (why !== null) {
        bad = { pos, reason: why };
        break;
      }
      at.pending.push({ ...read, pos });
      at.expected++;
      if ((h.flags & WalFlag.continues) === 0) commitPending(rec, at);
    } else {
      report.recordsSkipped++;
    }
    prev = h.seq;
    pos += h.length;
  }

  if (!isLast) {
    if (prev < neededEnd) {
      const reason = bad?.reason ?? `the segment ends at seq ${prev}`;
      throw new StorageCorruptionError(
        path,
        bad?.pos ?? pos,
        `${reason}, but records up to seq ${neededEnd} belong in this segment (the next starts at ${neededEnd + 1})`,
      );
    }
    // The writer starts segments only between transactions.
    if (at.pending.length > 0)
      throw new StorageCorruptionError(
        path,
        pos,
        `the transaction starting at seq ${at.pending[0].header.seq} continues past the end of its segment`,
      );
    return;
  }
  if (bad !== null) {
    const proof = await findProofOfDurability(reader, bad.pos + 8, prev + 1, at.snapshotSeq, version);
    if (proof !== null) {
      throw new StorageCorruptionError(
        path,
        bad.pos,
        `${bad.reason} (seq ${prev + 1}), and the valid record at offset ${proof} was written after that seq was fdatasync'ed`,
      );
    }
  }
  // A transaction is written in one write and answered after one fdatasync,
  // so one without its last record was never acknowledged: part of the torn tail.
  let cut = bad?.pos ?? size;
  let reason = bad?.reason ?? '';
  if (at.pending.length > 0) {
    const first = at.pending[0];
    if (first.pos < cut) {
      cut = first.pos;
      reason = `the transaction starting at seq ${first.header.seq} has no last record${bad === null ? '' : ` (${bad.reason})`}`;
    }
    at.expected = first.header.seq;
    at.pending = [];
  }
  if (cut === size) return;
  await file.truncate(cut);
  report.tornBytes += size - cut;
  seg.bytes = cut;
  rec.logger.warn({ file: path, offset: cut, bytes: size - cut, reason }, 'wal: cut torn tail');
}
