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
import { bestEffort, dataDirUnusable, StorageCorruptionError } from './errors.js';
import type { FileHandle, FileLayer } from './file-layer.js';
import { findProofOfDurability, readRecordAt, SegmentReader } from './segment-reader.js';
import { parseSnapshotFileName, readSnapshotFile, SnapshotInvalid, type LoadedSnapshot } from './snapshot-format.js';
import type { RecoveredState, RecoveryReport, SegmentInfo, SnapshotFileInfo, StorageLogger } from './storage-types.js';
import { decodeSegmentHeader, parseSegmentFileName, SEGMENT_HEADER_BYTES, WalOp } from './wal-format.js';

export type { RecoveredState, RecoveryReport, SegmentInfo, SnapshotFileInfo, StorageLogger } from './storage-types.js';

export interface RecoverOptions {
  files: FileLayer;
  dataDir: string;
  engine: QuantileEngine;
  logger: StorageLogger;
}

/** One recovery in progress: its inputs, its report, and whether the directory changed. */
interface Recovery extends RecoverOptions {
  report: RecoveryReport;
  dirDirty: boolean;
}

interface CorruptSnapshot {
  info: SnapshotFileInfo;
  error: SnapshotInvalid;
}

/** The data directory's contents after temporary files are gone, each list ascending. */
interface Listing {
  snapshotFiles: SnapshotFileInfo[];
  segmentFiles: SegmentInfo[];
}

const pathIn = (rec: Recovery, name: string) => `${rec.dataDir}/${name}`;

/** Fills `engine` (which must be empty) from `dataDir`; see the rules at the top of this file. */
export async function recover(options: RecoverOptions): Promise<RecoveredState> {
  const started = Date.now();
  const rec: Recovery = { ...options, report: emptyReport(), dirDirty: false };
  const { snapshotFiles, segmentFiles } = await listDataDir(rec);
  const { loaded, corrupt } = await loadNewestSnapshot(rec, snapshotFiles);
  const refuse = (why: string): never => refuseForCorruptSnapshot(rec, corrupt, why);
  const segments = await replayLog(rec, segmentFiles, loaded?.seq ?? 0, corrupt.length > 0 ? refuse : null);
  await setAsideCorruptSnapshots(rec, corrupt, refuse);
  await syncDirectoryIfChanged(rec);
  rec.report.durationMs = Date.now() - started;
  const snapshots = snapshotFiles.filter((s) => !corrupt.some((c) => c.info === s));
  return { report: rec.report, segments, snapshots };
}

function emptyReport(): RecoveryReport {
  return {
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
}

/** Phase 1: create the directory if needed, remove `*.tmp` files, list snapshots and segments. */
async function listDataDir(rec: Recovery): Promise<Listing> {
  const { files, dataDir, report, logger } = rec;
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
        await files.unlink(pathIn(rec, name));
      } catch (err) {
        throw dataDirUnusable(dataDir, `remove the leftover ${name}`, err);
      }
      report.removedTempFiles.push(name);
      rec.dirDirty = true;
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
  return { snapshotFiles, segmentFiles };
}

/** Phase 2: load the newest snapshot that verifies into the engine; note the newer ones that failed. */
async function loadNewestSnapshot(
  rec: Recovery,
  snapshotFiles: readonly SnapshotFileInfo[],
): Promise<{ loaded: LoadedSnapshot | null; corrupt: CorruptSnapshot[] }> {
  const { files, dataDir, report, logger, engine } = rec;
  let loaded: LoadedSnapshot | null = null;
  const corrupt: CorruptSnapshot[] = [];
  for (let i = snapshotFiles.length - 1; i >= 0 && loaded === null; i--) {
    const info = snapshotFiles[i];
    try {
      const snap = await readSnapshotFile(files, pathIn(rec, info.name));
      if (snap.seq !== info.seq) throw new SnapshotInvalid(16, `header seq ${snap.seq} does not match the file name`);
      loaded = snap;
      report.snapshotFile = info.name;
    } catch (err) {
      if (!(err instanceof SnapshotInvalid)) throw dataDirUnusable(dataDir, `read ${info.name}`, err);
      logger.error({ file: pathIn(rec, info.name), offset: err.offset, reason: err.reason }, 'storage: snapshot fails verification');
      corrupt.push({ info, error: err });
    }
  }
  if (loaded !== null) {
    for (const pool of loaded.pools) engine.replacePool(pool.poolId, pool.runs);
    report.snapshotSeq = loaded.seq;
    report.snapshotPools = loaded.pools.length;
    report.snapshotValues = loaded.values;
  }
  return { loaded, corrupt };
}

function refuseForCorruptSnapshot(rec: Recovery, corrupt: readonly CorruptSnapshot[], why: string): never {
  const newest = corrupt[0];
  throw new StorageCorruptionError(
    pathIn(rec, newest.info.name),
    newest.error.offset,
    `${newest.error.reason}; no older snapshot can replace it because ${why}`,
  );
}

/** Where replay stands: the next seq to apply, and the snapshot it started from. */
interface ReplayPosition {
  expected: number;
  snapshotSeq: number;
}

/**
 * Phase 3: replay every segment in firstSeq order from snapshotSeq + 1, cutting
 * a torn tail off the last one. Returns the segments still on disk. A missing
 * record is blamed on `refuse` (a skipped corrupt snapshot) when there is one.
 */
async function replayLog(
  rec: Recovery,
  segmentFiles: SegmentInfo[],
  snapshotSeq: number,
  refuse: ((why: string) => never) | null,
): Promise<SegmentInfo[]> {
  const at: ReplayPosition = { expected: snapshotSeq + 1, snapshotSeq };
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
    if (headerError !== null) {
      if (!isLast) throw new StorageCorruptionError(path, 0, `bad segment header: ${headerError}`);
      keep = !(await dropUnfinishedSegment(rec, path, reader, headerError, at.snapshotSeq));
    } else {
      await replayRecords(rec, path, seg, file, reader, isLast, neededEnd, at);
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
  const proof = await findProofOfDurability(reader, 8, 0, snapshotSeq);
  if (proof !== null)
    throw new StorageCorruptionError(path, 0, `bad segment header (${headerError}) but a valid record follows at offset ${proof}`);
  rec.logger.warn({ file: path, bytes: reader.size, reason: headerError }, 'wal: removing a segment whose creation did not finish');
  rec.report.tornBytes += reader.size;
  return true;
}

/** Applies the segment's records from `at.expected` on, up to `neededEnd`; handles a bad record as corruption or torn tail. */
async function replayRecords(
  rec: Recovery,
  path: string,
  seg: SegmentInfo,
  file: FileHandle,
  reader: SegmentReader,
  isLast: boolean,
  neededEnd: number,
  at: ReplayPosition,
): Promise<void> {
  const { engine, report } = rec;
  const size = reader.size;
  let pos = SEGMENT_HEADER_BYTES;
  let prev = seg.firstSeq - 1;
  let bad: { pos: number; reason: string } | null = null;
  while (pos < size && !(prev >= neededEnd)) {
    const read = await readRecordAt(reader, pos, (h) => h.seq === at.expected);
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
      if (h.op === WalOp.append) engine.appendSortedRun(h.poolId, read.run!);
      else engine.deletePool(h.poolId);
      at.expected++;
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
      throw new StorageCorruptionError(
        path,
        bad?.pos ?? pos,
        `${reason}, but records up to seq ${neededEnd} belong in this segment (the next starts at ${neededEnd + 1})`,
      );
    }
    return;
  }
  if (bad === null) return;
  const proof = await findProofOfDurability(reader, bad.pos + 8, prev + 1, at.snapshotSeq);
  if (proof !== null) {
    throw new StorageCorruptionError(
      path,
      bad.pos,
      `${bad.reason} (seq ${prev + 1}), and the valid record at offset ${proof} was written after that seq was fdatasync'ed`,
    );
  }
  await file.truncate(bad.pos);
  report.tornBytes += size - bad.pos;
  seg.bytes = bad.pos;
  rec.logger.warn({ file: path, offset: bad.pos, bytes: size - bad.pos, reason: bad.reason }, 'wal: cut torn tail');
}

/** Phase 4: a skipped corrupt snapshot is only harmless if the log reached its seq; then it is renamed `*.corrupt`. */
async function setAsideCorruptSnapshots(rec: Recovery, corrupt: readonly CorruptSnapshot[], refuse: (why: string) => never): Promise<void> {
  const lastSeq = rec.report.lastSeq;
  for (const { info } of corrupt) {
    if (info.seq > lastSeq) refuse(`the log ends at seq ${lastSeq}, before its seq ${info.seq}`);
  }
  for (const { info } of corrupt) {
    try {
      await rec.files.rename(pathIn(rec, info.name), pathIn(rec, `${info.name}.corrupt`));
    } catch (err) {
      throw dataDirUnusable(rec.dataDir, `set aside ${info.name}`, err);
    }
    rec.report.corruptSnapshots.push(info.name);
    rec.dirDirty = true;
  }
}

/** Phase 5: make removals and renames durable. */
async function syncDirectoryIfChanged(rec: Recovery): Promise<void> {
  if (!rec.dirDirty) return;
  try {
    await rec.files.fsyncDir(rec.dataDir);
  } catch (err) {
    throw dataDirUnusable(rec.dataDir, 'fsync it', err);
  }
}
