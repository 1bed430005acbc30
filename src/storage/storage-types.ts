// Types that several storage modules share: what recovery hands the store,
// what the store reports, the records on their way into the log, and the
// logger every part writes to.

import type { AppendOutcome } from '../core/engine.js';
import type { FsyncPolicy } from './pool-writer.js';
import type { RecordBodyV2 } from './wal-record-v2.js';

export interface StorageLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: StorageLogger = { info() {}, warn() {}, error() {} };

/** A WAL segment file on disk. */
export interface SegmentInfo {
  name: string;
  firstSeq: number;
  /** Bytes on disk (header included). */
  bytes: number;
}

/** A snapshot file on disk. */
export interface SnapshotFileInfo {
  name: string;
  seq: number;
  /** Its key file, if it has one. */
  keysFile?: string;
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

/** What recovery leaves for the store: the report and the files still on disk. */
export interface RecoveredState {
  report: RecoveryReport;
  /** Segment files still on disk, ascending firstSeq. */
  segments: SegmentInfo[];
  /** Snapshot files still on disk (the loaded one and any older), ascending seq. */
  snapshots: SnapshotFileInfo[];
}

export interface DurableStoreStats {
  fsync: FsyncPolicy;
  status: 'ok' | 'degraded';
  state: 'open' | 'closing' | 'closed';
  /** Last write-path error (kept after recovery from it), or null. */
  lastError: string | null;
  lastErrorAt: number | null;
  /** Highest sequence number handed out. */
  seq: number;
  /** Highest sequence number applied to the engine. */
  appliedSeq: number;
  /** Highest sequence number known fdatasync'ed in the log. */
  durableSeq: number;
  walSegments: number;
  walBytes: number;
  walBytesSinceSnapshot: number;
  /** Records queued or written but not yet durable. */
  pendingRecords: number;
  pendingBytes: number;
  writes: number;
  fdatasyncs: number;
  lastSnapshotSeq: number;
  /** Epoch ms, or null if no snapshot was written by this process. */
  lastSnapshotAt: number | null;
  lastSnapshotMs: number | null;
  lastSnapshotError: string | null;
  snapshotInProgress: boolean;
  recovery: RecoveryReport;
}

/** Cheap readings for /metrics (structurally the HTTP layer's StorageGauges). */
export interface DurableStoreGauges {
  walBytes(): number;
  /** Seconds since the last snapshot was written (by this process), or since start-up if none. */
  lastSnapshotAgeSeconds(): number;
  /** Changes queued or written but not yet durable. */
  pendingCommits(): number;
  writable(): boolean;
}

/**
 * `always`: one acknowledgement for one or more records (a transaction). Each
 * applied record adds its result; the last one settles it.
 */
export interface PendingCommit {
  results: ChangeResult[];
  settle(results: ChangeResult[]): void;
  reject(error: Error): void;
}

/** What applying one record gave: an append's outcome, whether a delete found the pool, nothing for retention. */
export type ChangeResult = AppendOutcome | boolean | null;

/** One change on its way into the log (the version 2 record fields, plus its place in the write path). */
export interface LogRecord extends RecordBodyV2 {
  seq: number;
  /** Encoded size. */
  bytes: number;
  /** `always` only: the commit it belongs to, settled once its last record is applied (or refused). */
  commit: PendingCommit | null;
}
