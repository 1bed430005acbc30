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
import { dataDirUnusable, StorageCorruptionError } from './errors.js';
import type { FileLayer } from './file-layer.js';
import { IdempotencyKeys, KEY_DEFAULTS } from './idempotency-keys.js';
import { keysFileName, KeysFileInvalid, parseKeysFileName, readKeysFile } from './keys-file.js';
import { pathIn, replayLog, type Recovery } from './log-replay.js';
import { parseSnapshotFileName, readSnapshotFile, SnapshotInvalid, type LoadedSnapshot } from './snapshot-format.js';
import type { RecoveredState, RecoveryReport, SegmentInfo, SnapshotFileInfo, StorageLogger } from './storage-types.js';
import { parseSegmentFileName } from './wal-format.js';

export type { RecoveredState, RecoveryReport, SegmentInfo, SnapshotFileInfo, StorageLogger } from './storage-types.js';

export interface RecoverOptions {
  files: FileLayer;
  dataDir: string;
  engine: QuantileEngine;
  logger: StorageLogger;
  /** Filled with the idempotency keys of the snapshot's key file and the replayed log. Default: a table with the default window. */
  keys?: IdempotencyKeys;
}

interface CorruptSnapshot {
  info: SnapshotFileInfo;
  error: SnapshotInvalid;
}

/** The data directory's contents after temporary files are gone, each list ascending. */
interface Listing {
  snapshotFiles: SnapshotFileInfo[];
  segmentFiles: SegmentInfo[];
  /** Key files by snapshot seq. */
  keyFiles: Map<number, string>;
}

/** Fills `engine` (which must be empty) from `dataDir`; see the rules at the top of this file. */
export async function recover(options: RecoverOptions): Promise<RecoveredState> {
  const started = Date.now();
  const keys = options.keys ?? new IdempotencyKeys({ ...KEY_DEFAULTS, clock: Date.now });
  const rec: Recovery = { ...options, keys, report: emptyReport(), dirDirty: false };
  const { snapshotFiles, segmentFiles, keyFiles } = await listDataDir(rec);
  await removeOrphanKeyFiles(rec, keyFiles, snapshotFiles);
  const { loaded, corrupt } = await loadNewestSnapshot(rec, snapshotFiles, keyFiles);
  const refuse = (why: string): never => refuseForCorruptSnapshot(rec, corrupt, why);
  const segments = await replayLog(rec, segmentFiles, loaded?.seq ?? 0, corrupt.length > 0 ? refuse : null);
  await setAsideCorruptSnapshots(rec, corrupt, refuse);
  await syncDirectoryIfChanged(rec);
  rec.report.durationMs = Date.now() - started;
  const snapshots = snapshotFiles.filter((s) => !corrupt.some((c) => c.info === s)).map((s) => ({ ...s, keysFile: keyFiles.get(s.seq) }));
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

/** Phase 1: create the directory if needed, remove `*.tmp` files, list snapshots, key files and segments. */
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
  const keyFiles = new Map<number, string>();
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
    const keysSeq = parseKeysFileName(name);
    if (keysSeq !== null) keyFiles.set(keysSeq, name);
  }
  if (report.removedTempFiles.length > 0) logger.info({ files: report.removedTempFiles }, 'storage: removed leftover temporary files');
  snapshotFiles.sort((a, b) => a.seq - b.seq);
  segmentFiles.sort((a, b) => a.firstSeq - b.firstSeq);
  return { snapshotFiles, segmentFiles, keyFiles };
}

/**
 * A key file is written before its snapshot is renamed into place; one whose
 * snapshot never arrived (or was cleaned up) belongs to nothing: removed.
 */
async function removeOrphanKeyFiles(
  rec: Recovery,
  keyFiles: Map<number, string>,
  snapshotFiles: readonly SnapshotFileInfo[],
): Promise<void> {
  for (const [seq, name] of keyFiles) {
    if (snapshotFiles.some((s) => s.seq === seq)) continue;
    try {
      await rec.files.unlink(pathIn(rec, name));
    } catch (err) {
      throw dataDirUnusable(rec.dataDir, `remove the orphaned ${name}`, err);
    }
    keyFiles.delete(seq);
    rec.dirDirty = true;
  }
}

/** Phase 2: load the newest snapshot that verifies into the engine, and its idempotency keys; note the newer ones that failed. */
async function loadNewestSnapshot(
  rec: Recovery,
  snapshotFiles: readonly SnapshotFileInfo[],
  keyFiles: ReadonlyMap<number, string>,
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
    // Version 1 pools have no arrival times: their values count as arriving now.
    if (loaded.version === 1) for (const pool of loaded.pools) engine.replacePool(pool.poolId, pool.runs);
    else for (const pool of loaded.pools) engine.restorePool(pool.poolId, pool);
    report.snapshotSeq = loaded.seq;
    report.snapshotPools = loaded.pools.length;
    report.snapshotValues = loaded.values;
    const keysName = keyFiles.get(loaded.seq);
    if (keysName !== undefined) await loadKeyFile(rec, keysName);
  }
  return { loaded, corrupt };
}

/** A snapshot written before keys were logged has no key file: its keys are simply none. A damaged one refuses start-up. */
async function loadKeyFile(rec: Recovery, name: string): Promise<void> {
  try {
    const contents = await readKeysFile(rec.files, pathIn(rec, name));
    if (keysFileName(contents.seq) !== name) throw new KeysFileInvalid(16, `header seq ${contents.seq} does not match the file name`);
    rec.keys.load(contents.entries, contents.latestMs);
  } catch (err) {
    if (err instanceof KeysFileInvalid) throw new StorageCorruptionError(pathIn(rec, name), err.offset, err.reason);
    throw dataDirUnusable(rec.dataDir, `read ${name}`, err);
  }
}

function refuseForCorruptSnapshot(rec: Recovery, corrupt: readonly CorruptSnapshot[], why: string): never {
  const newest = corrupt[0];
  throw new StorageCorruptionError(
    pathIn(rec, newest.info.name),
    newest.error.offset,
    `${newest.error.reason}; no older snapshot can replace it because ${why}`,
  );
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
