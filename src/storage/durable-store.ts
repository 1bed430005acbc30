// The durable store: a PoolWriter that logs every change to a write-ahead log
// before (`always`) or while (`interval`, `never`) applying it to the engine,
// snapshots the engine now and then, and rebuilds it at start-up (recovery.ts).
//
// Write path. Every change gets the next sequence number when it is submitted,
// so log order is submission order. One flusher per log file (overlapping
// writes to one file are unsafe in Node) takes everything queued, writes it in
// one write, and:
//   - `always`: fdatasyncs, then applies the records to the engine in log order
//     and resolves their promises. Everything submitted while a write+fdatasync
//     is in flight goes into the next one (group commit, as Redis does with
//     `appendfsync always`). Reads only ever see durable data.
//   - `interval`: the change is applied and answered at submit time; the batch is
//     written on the next event-loop turn and fdatasync'ed every fsyncIntervalMs.
//   - `never`: like interval, but no periodic fdatasync.
// Records written but not yet fdatasync'ed stay in memory until they are (to be
// re-written after an error), so interval/never also fdatasync when those reach
// half of maxPendingBytes, at log rotation and at close.
//
// Errors (durability.md: "never trust a retried fsync"). If a write or an
// fdatasync fails, the segment is abandoned: a new segment starts at the first
// sequence number not known durable and every record from there is re-written
// into it (recovery lets a segment's firstSeq supersede the previous segment, so
// nothing is applied twice). ENOSPC from a write instead truncates the segment
// back to its last durable offset and keeps it, since no fsync failed. The
// store retries once at once; if that fails too it is 'degraded':
//   - `always`: the waiting changes are rejected with 'unavailable' (never
//     applied), their sequence numbers are reused, and an empty segment
//     starting at them is made durable so that whatever of them reached the
//     disk is superseded;
//   - `interval`/`never`: the changes were applied already, so they stay queued
//     and are retried after retryBackoffMs.
// While degraded, new changes are refused with 'unavailable' until the backoff
// has passed; then the next attempt decides. Reads never stop.
//
// Snapshots capture the engine's pool → runs lists synchronously (runs are
// immutable, so that is a consistent point at `appliedSeq`), ask the flusher to
// rotate the log, and write the file asynchronously through a pluggable builder;
// then rename + directory fsync, and delete older snapshots and the segments
// the new snapshot covers.

import type { AppendOutcome, QuantileEngine } from '../core/engine.js';
import { invalidOption, invalidRequest, unavailable, type PoolqError } from '../core/errors.js';
import type { SortedRun } from '../core/sorted-run.js';
import { bytesOf, viewOf } from './binary.js';
import { dataDirUnusable, describeIoError, ioErrorCode } from './errors.js';
import { nodeFileLayer, type FileHandle, type FileLayer } from './file-layer.js';
import type { FsyncPolicy, PoolWriter } from './pool-writer.js';
import { recover, type RecoveredState, type RecoveryReport, type SegmentInfo, type SnapshotFileInfo, type StorageLogger } from './recovery.js';
import { snapshotFileName, writeSnapshotFile, type SnapshotBuilder, type SnapshotPool } from './snapshot-format.js';
import {
  encodeRecordInto,
  encodeSegmentHeader,
  MAX_RECORD_VALUES,
  recordLength,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
  WalOp,
  writeRecordHeader,
} from './wal-format.js';

export interface DurableStoreOptions {
  /** Directory for WAL segments and snapshots; created if missing. */
  dataDir: string;
  fsync: FsyncPolicy;
  /** `interval` only: fdatasync at most this long after a write. Default 200 ms. */
  fsyncIntervalMs?: number;
  /** Must be empty: recovery fills it. */
  engine: QuantileEngine;
  /** Default: node:fs. Tests pass a power-cut / fault-injecting double. */
  files?: FileLayer;
  logger?: StorageLogger;
  /** Snapshot when this long has passed since the last one and something changed. Default 60 s; 0 disables. */
  snapshotIntervalMs?: number;
  /** Snapshot when this many WAL bytes were written since the last one. Default 256 MiB; 0 disables. */
  snapshotWalBytes?: number;
  /** Bound on bytes of records queued or held for re-writing; past it, changes get 'unavailable'. Default 64 MiB. */
  maxPendingBytes?: number;
  /** Bound on records queued or held for re-writing. Default 100 000. */
  maxPendingRecords?: number;
  /** After a failed retry, refuse changes this long before trying the disk again. Default 1000 ms. */
  retryBackoffMs?: number;
  /** `always`: how long a commit may wait to gather as many appends as the last one held (see "Commit gathering"). Default 0.5 ms; 0 turns it off. */
  commitGatherMs?: number;
  /**
   * Writes and fdatasyncs a snapshot file (default: writeSnapshotFile through
   * `files`). A piscina worker can run writeSnapshotFileSync instead; it then
   * bypasses `files`, so only use it with the real file layer.
   */
  buildSnapshot?: SnapshotBuilder;
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

export interface DurableStore extends PoolWriter {
  /** Writes a snapshot of the state as of now (or later) and deletes what it covers; nothing if nothing changed since the last. */
  snapshotNow(): Promise<void>;
  /** Stops taking changes, writes and syncs what is queued, takes a final snapshot, closes files. */
  close(): Promise<void>;
  stats(): DurableStoreStats;
  /** Whether a change submitted now would be attempted (for /readyz). */
  isWritable(): boolean;
  gauges(): DurableStoreGauges;
  /** What start-up recovery found. */
  readonly recovery: RecoveryReport;
}

const DEFAULTS = {
  fsyncIntervalMs: 200,
  snapshotIntervalMs: 60_000,
  snapshotWalBytes: 256 << 20,
  maxPendingBytes: 64 << 20,
  maxPendingRecords: 100_000,
  retryBackoffMs: 1000,
  commitGatherMs: 0.5,
};

/** Values up to this size are copied into the batch buffer; larger runs are written from place. */
const INLINE_VALUE_BYTES = 64 << 10;
/*
 * Commit gathering (`commitGatherMs`, default 0.5 ms). `always`: before a
 * commit, wait (at most that long, yielding to the event loop) until as many
 * appends are queued as the previous commit acknowledged.
 * Without it, clients that resubmit as soon as they are answered split into
 * two groups that alternate fdatasyncs, each waiting ~2 of them: under
 * bench:http's 32 connections a commit held 13.5 appends on average (p50 9)
 * with fdatasync at 0.76 ms p50. With it a commit held all 32 and appends/s
 * went up 1.26× (alternating builds under the same wrk load; fdatasync 0.84 ms
 * p50 either way). PostgreSQL's commit_delay, made adaptive: a lone append
 * after a lone append never waits.
 */
/** Keep each write chunk well below Node's 2 GiB single-I/O limit. */
const MAX_CHUNK_BYTES = 256 << 20;

const silentLogger: StorageLogger = { info() {}, warn() {}, error() {} };

interface Waiter {
  resolve(value: AppendOutcome | boolean): void;
  reject(error: Error): void;
}

interface LogRecord {
  seq: number;
  op: WalOp;
  poolId: number;
  run: SortedRun | null;
  /** Encoded size. */
  bytes: number;
  /** `always` only: settled when the record is applied (or refused). */
  waiter: Waiter | null;
}

interface ActiveSegment {
  info: SegmentInfo;
  file: FileHandle;
  /** End of the last successful write. */
  writeOffset: number;
  /** End of the last successful fdatasync. */
  durableOffset: number;
  /** An I/O error makes the file untrustworthy; the next flush opens a new segment. */
  poisoned: boolean;
}

type IoStage = 'write' | 'sync' | 'create';

function checkPoolId(poolId: number): void {
  if (!Number.isSafeInteger(poolId) || poolId < 0) {
    throw invalidRequest('poolId', `poolId must be an integer between 0 and ${Number.MAX_SAFE_INTEGER}, got ${poolId}.`);
  }
}

function optionalNumber(options: object, name: string, fallback: number, min: number): number {
  const value = (options as Record<string, unknown>)[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw invalidOption(name, `an integer >= ${min}`, value);
  return value;
}

interface Tuning {
  commitGatherMs: number;
  fsyncIntervalMs: number;
  snapshotIntervalMs: number;
  snapshotWalBytes: number;
  maxPendingBytes: number;
  maxPendingRecords: number;
  retryBackoffMs: number;
}

function resolveTuning(options: DurableStoreOptions): Tuning {
  return {
    fsyncIntervalMs: optionalNumber(options, 'fsyncIntervalMs', DEFAULTS.fsyncIntervalMs, 1),
    snapshotIntervalMs: optionalNumber(options, 'snapshotIntervalMs', DEFAULTS.snapshotIntervalMs, 0),
    snapshotWalBytes: optionalNumber(options, 'snapshotWalBytes', DEFAULTS.snapshotWalBytes, 0),
    maxPendingBytes: optionalNumber(options, 'maxPendingBytes', DEFAULTS.maxPendingBytes, 1),
    maxPendingRecords: optionalNumber(options, 'maxPendingRecords', DEFAULTS.maxPendingRecords, 1),
    retryBackoffMs: optionalNumber(options, 'retryBackoffMs', DEFAULTS.retryBackoffMs, 0),
    commitGatherMs: optionalNumber(options, 'commitGatherMs', DEFAULTS.commitGatherMs, 0),
  };
}

async function bestEffort(action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch {
    // the error that led here is the one reported
  }
}

class DurableStoreImpl implements DurableStore {
  readonly recovery: RecoveryReport;

  private readonly policy: FsyncPolicy;
  private readonly files: FileLayer;
  private readonly dataDir: string;
  private readonly engine: QuantileEngine;
  private readonly logger: StorageLogger;
  private readonly builder: SnapshotBuilder;
  private readonly fsyncIntervalMs: number;
  private readonly snapshotIntervalMs: number;
  private readonly snapshotWalBytes: number;
  private readonly maxPendingBytes: number;
  private readonly maxPendingRecords: number;
  private readonly retryBackoffMs: number;
  /** `interval`/`never`: also fdatasync once this many bytes are held for re-writing. */
  private readonly syncAtBytes: number;
  /** Likewise once this many records are held. */
  private readonly syncAtRecords: number;

  private nextSeq: number;
  private appliedSeq: number;
  private durableSeq: number;
  /** Submitted, not yet written (in seq order). */
  private queue: LogRecord[] = [];
  /** Written to the current segment, not yet fdatasync'ed (in seq order, before `queue`). */
  private unsynced: LogRecord[] = [];
  private unsyncedBytes = 0;
  private pendingBytes = 0;

  private segment: ActiveSegment | null = null;
  private readonly segments: SegmentInfo[];
  private snapshots: SnapshotFileInfo[];

  private flushScheduled = false;
  private flushing: Promise<void> | null = null;
  /** `always`: appends the last fdatasync acknowledged (the next commit gathers up to as many). */
  private lastCommitSize = 0;
  private readonly commitGatherMs: number;
  private syncRequested = false;
  private rotateWaiters: ((rotated: boolean) => void)[] | null = null;
  private ioStage: IoStage = 'write';

  private degraded = false;
  private retryAt = 0;
  private consecutiveFailures = 0;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private lifecycle: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | null = null;

  private walBytesWritten = 0;
  private walBytesAtSnapshot = 0;
  private writes = 0;
  private fdatasyncs = 0;

  private snapshotRunning: Promise<void> | null = null;
  private snapshotQueued: Promise<void> | null = null;
  private lastSnapshotSeq: number;
  private lastSnapshotAt: number | null = null;
  private lastSnapshotMs: number | null = null;
  private lastSnapshotError: string | null = null;
  private autoSnapshotNotBefore = 0;

  private readonly timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();

  constructor(options: DurableStoreOptions, tuning: Tuning, files: FileLayer, recovered: RecoveredState) {
    this.policy = options.fsync;
    this.files = files;
    this.dataDir = options.dataDir;
    this.engine = options.engine;
    this.logger = options.logger ?? silentLogger;
    this.builder = options.buildSnapshot ?? ((path, seq, pools) => writeSnapshotFile(files, path, seq, pools));
    this.fsyncIntervalMs = tuning.fsyncIntervalMs;
    this.snapshotIntervalMs = tuning.snapshotIntervalMs;
    this.snapshotWalBytes = tuning.snapshotWalBytes;
    this.maxPendingBytes = tuning.maxPendingBytes;
    this.maxPendingRecords = tuning.maxPendingRecords;
    this.retryBackoffMs = tuning.retryBackoffMs;
    this.commitGatherMs = tuning.commitGatherMs;
    this.syncAtBytes = Math.max(1, Math.floor(this.maxPendingBytes / 2));
    this.syncAtRecords = Math.max(1, Math.floor(this.maxPendingRecords / 2));

    this.recovery = recovered.report;
    this.segments = recovered.segments;
    this.snapshots = recovered.snapshots;
    const lastSeq = recovered.report.lastSeq;
    this.nextSeq = lastSeq + 1;
    this.appliedSeq = lastSeq;
    this.durableSeq = lastSeq;
    this.lastSnapshotSeq = recovered.report.snapshotSeq;
  }

  /** Opens the first segment (which also proves the directory is writable) and starts the timers. */
  async start(): Promise<void> {
    try {
      this.segment = await this.createSegment(this.nextSeq);
    } catch (err) {
      throw dataDirUnusable(this.dataDir, 'create a WAL segment in it', err);
    }
    if (this.policy === 'interval') {
      this.timers.push(
        setInterval(() => {
          if (this.unsynced.length > 0) {
            this.syncRequested = true;
            this.kick();
          }
        }, this.fsyncIntervalMs),
      );
    }
    if (this.snapshotIntervalMs > 0) {
      this.timers.push(setInterval(() => this.maybeAutoSnapshot(), this.snapshotIntervalMs));
    }
    for (const timer of this.timers) timer.unref();
  }

  // ---- PoolWriter ----------------------------------------------------------

  append(poolId: number, run: SortedRun): AppendOutcome | Promise<AppendOutcome> {
    checkPoolId(poolId);
    if (run.length === 0) throw invalidRequest('poolValues', 'poolValues must not be empty.');
    if (run.length > MAX_RECORD_VALUES) throw invalidRequest('poolValues', `at most ${MAX_RECORD_VALUES} values fit in one append.`);
    const bytes = recordLength(run.length);
    const refusal = this.admission(bytes);
    if (this.policy === 'always') {
      if (refusal !== null) return Promise.reject(refusal);
      return new Promise<AppendOutcome>((resolve, reject) => {
        this.enqueue({ seq: this.nextSeq++, op: WalOp.append, poolId, run, bytes, waiter: { resolve: resolve as Waiter['resolve'], reject } });
      });
    }
    if (refusal !== null) throw refusal;
    const outcome = this.engine.appendSortedRun(poolId, run);
    this.appliedSeq = this.nextSeq;
    this.enqueue({ seq: this.nextSeq++, op: WalOp.append, poolId, run, bytes, waiter: null });
    return outcome;
  }

  deletePool(poolId: number): boolean | Promise<boolean> {
    checkPoolId(poolId);
    const bytes = recordLength(0);
    if (this.policy === 'always') {
      const refusal = this.admission(bytes);
      if (refusal !== null) return Promise.reject(refusal);
      return new Promise<boolean>((resolve, reject) => {
        this.enqueue({ seq: this.nextSeq++, op: WalOp.delete, poolId, run: null, bytes, waiter: { resolve: resolve as Waiter['resolve'], reject } });
      });
    }
    if (!this.engine.hasPool(poolId)) return false; // nothing changes, nothing to log
    const refusal = this.admission(bytes);
    if (refusal !== null) throw refusal;
    this.engine.deletePool(poolId);
    this.appliedSeq = this.nextSeq;
    this.enqueue({ seq: this.nextSeq++, op: WalOp.delete, poolId, run: null, bytes, waiter: null });
    return true;
  }

  // ---- public extras -------------------------------------------------------

  isWritable(): boolean {
    return this.lifecycle === 'open' && !this.inBackoff();
  }

  gauges(): DurableStoreGauges {
    return {
      walBytes: () => this.walBytes(),
      lastSnapshotAgeSeconds: () => (Date.now() - (this.lastSnapshotAt ?? this.startedAt)) / 1000,
      pendingCommits: () => this.queue.length + this.unsynced.length,
      writable: () => this.isWritable(),
    };
  }

  private walBytes(): number {
    let bytes = 0;
    for (const seg of this.segments) bytes += seg.bytes;
    return bytes;
  }

  stats(): DurableStoreStats {
    const walBytes = this.walBytes();
    return {
      fsync: this.policy,
      status: this.degraded ? 'degraded' : 'ok',
      state: this.lifecycle,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      seq: this.nextSeq - 1,
      appliedSeq: this.appliedSeq,
      durableSeq: this.durableSeq,
      walSegments: this.segments.length,
      walBytes,
      walBytesSinceSnapshot: this.walBytesWritten - this.walBytesAtSnapshot,
      pendingRecords: this.queue.length + this.unsynced.length,
      pendingBytes: this.pendingBytes,
      writes: this.writes,
      fdatasyncs: this.fdatasyncs,
      lastSnapshotSeq: this.lastSnapshotSeq,
      lastSnapshotAt: this.lastSnapshotAt,
      lastSnapshotMs: this.lastSnapshotMs,
      lastSnapshotError: this.lastSnapshotError,
      snapshotInProgress: this.snapshotRunning !== null,
      recovery: this.recovery,
    };
  }

  snapshotNow(): Promise<void> {
    if (this.lifecycle === 'closed') return Promise.reject(unavailable('storage is closed.'));
    return this.scheduleSnapshot();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- submission ------------------------------------------------------------

  private inBackoff(): boolean {
    return this.degraded && Date.now() < this.retryAt;
  }

  /** Why a change cannot be taken now, or null. Refusals are quick and apply nothing. */
  private admission(bytes: number): PoolqError | null {
    if (this.lifecycle !== 'open') return unavailable('storage is shutting down; the change was not applied.');
    if (this.inBackoff()) {
      return unavailable(`storage cannot write (${this.lastError}); the change was not applied. Retrying in ${this.retryAt - Date.now()} ms.`);
    }
    const records = this.queue.length + this.unsynced.length;
    if (records >= this.maxPendingRecords || (records > 0 && this.pendingBytes + bytes > this.maxPendingBytes)) {
      return unavailable('the commit queue is full (the disk is not keeping up); the change was not applied.');
    }
    return null;
  }

  private enqueue(record: LogRecord): void {
    this.queue.push(record);
    this.pendingBytes += record.bytes;
    this.kick();
  }

  // ---- the flusher -----------------------------------------------------------

  private syncDue(): boolean {
    // `interval`/`never` hold unsynced records for re-writing; sync before they
    // fill the admission bound (by bytes or by count), or small appends at
    // ~25k/s hit 100 000 records in 4 s and got 503 (bench:http, fsync=never).
    return (
      this.policy === 'always' ||
      this.syncRequested ||
      this.unsyncedBytes >= this.syncAtBytes ||
      this.unsynced.length >= this.syncAtRecords
    );
  }

  private hasWork(): boolean {
    return this.queue.length > 0 || (this.unsynced.length > 0 && this.syncDue()) || this.rotateWaiters !== null;
  }

  /** Runs the flusher on the next event-loop turn, so one turn's changes share a write. */
  private kick(): void {
    if (this.flushing !== null || this.flushScheduled || this.lifecycle === 'closed') return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const run = this.flushLoop()
        .catch((err: unknown) => {
          // flushLoop handles I/O errors itself; this is a bug, but never an unhandled rejection.
          this.logger.error({ err: describeIoError(err) }, 'wal: flusher failed');
        })
        .finally(() => {
          this.flushing = null;
          if (!this.hasWork()) return;
          if (this.inBackoff()) this.scheduleRetry();
          else this.kick();
        });
      this.flushing = run;
    });
  }

  /** Kicks the flusher once the backoff has passed (timers may fire early by Date.now()'s clock: re-check). */
  private scheduleRetry(): void {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.inBackoff()) this.scheduleRetry();
      else this.kick();
    }, Math.max(1, this.retryAt - Date.now()));
    this.retryTimer.unref();
  }

  private async flushLoop(): Promise<void> {
    while (this.hasWork() && !this.inBackoff()) {
      try {
        await this.gatherCommit();
        await this.flushStep();
        this.consecutiveFailures = 0;
        if (this.degraded) {
          this.degraded = false;
          this.logger.info({ segment: this.segment?.info.name }, 'storage: writes succeed again');
        }
      } catch (err) {
        await this.onWriteFailure(err);
      }
    }
  }

  /** See "Commit gathering" at the top of this file. */
  private async gatherCommit(): Promise<void> {
    if (this.policy !== 'always' || this.commitGatherMs === 0) return;
    const want = Math.min(this.lastCommitSize, this.maxPendingRecords);
    if (this.queue.length >= want) return;
    const until = performance.now() + this.commitGatherMs;
    while (this.queue.length < want && this.lifecycle === 'open' && performance.now() < until) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private async flushStep(): Promise<void> {
    let seg = this.segment;
    if (seg === null || seg.poisoned) seg = await this.replaceSegment(seg);
    if (this.rotateWaiters !== null) seg = await this.rotate(seg);
    if (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const record of batch) {
        this.unsynced.push(record);
        this.unsyncedBytes += record.bytes;
      }
      await this.writeBatch(seg, batch);
    }
    if (this.unsynced.length > 0 && this.syncDue()) await this.sync(seg);
  }

  private async writeBatch(seg: ActiveSegment, batch: LogRecord[]): Promise<void> {
    let inlineBytes = 0;
    for (const r of batch) inlineBytes += r.run !== null && r.run.length * 8 > INLINE_VALUE_BYTES ? RECORD_HEADER_BYTES : r.bytes;
    const buffer = new Uint8Array(inlineBytes);
    const view = viewOf(buffer);
    const chunks: Uint8Array[] = [];
    let at = 0;
    let sliceStart = 0;
    let total = 0;
    for (const r of batch) {
      const values = r.run;
      if (values !== null && values.length * 8 > INLINE_VALUE_BYTES) {
        const header = { seq: r.seq, syncedSeq: this.durableSeq, poolId: r.poolId, op: r.op, valueCount: values.length };
        writeRecordHeader(buffer.subarray(at, at + RECORD_HEADER_BYTES), header, values);
        at += RECORD_HEADER_BYTES;
        chunks.push(buffer.subarray(sliceStart, at));
        const bytes = bytesOf(values);
        for (let o = 0; o < bytes.length; o += MAX_CHUNK_BYTES) chunks.push(bytes.subarray(o, Math.min(bytes.length, o + MAX_CHUNK_BYTES)));
        sliceStart = at;
      } else {
        encodeRecordInto(buffer, view, at, r.seq, this.durableSeq, r.poolId, r.op, values);
        at += r.bytes;
      }
      total += r.bytes;
    }
    if (at > sliceStart) chunks.push(buffer.subarray(sliceStart, at));

    this.ioStage = 'write';
    await seg.file.write(chunks, seg.writeOffset);
    seg.writeOffset += total;
    seg.info.bytes = seg.writeOffset;
    this.walBytesWritten += total;
    this.writes++;
    if (this.snapshotWalBytes > 0 && this.walBytesWritten - this.walBytesAtSnapshot >= this.snapshotWalBytes) this.maybeAutoSnapshot();
  }

  private async sync(seg: ActiveSegment): Promise<void> {
    const count = this.unsynced.length;
    const upTo = seg.writeOffset;
    this.ioStage = 'sync';
    await seg.file.datasync();
    this.fdatasyncs++;
    seg.durableOffset = upTo;
    this.syncRequested = false;
    const done = this.unsynced.splice(0, count);
    let bytes = 0;
    for (const r of done) bytes += r.bytes;
    this.unsyncedBytes -= bytes;
    this.pendingBytes -= bytes;
    if (done.length === 0) return;
    this.durableSeq = done[done.length - 1].seq;
    if (this.policy === 'always') {
      this.lastCommitSize = done.length;
      for (const r of done) this.applyDurable(r);
    }
  }

  /** `always`: the record is durable; apply it in log order and answer. */
  private applyDurable(r: LogRecord): void {
    this.appliedSeq = r.seq;
    try {
      const result = r.op === WalOp.append ? this.engine.appendSortedRun(r.poolId, r.run!) : this.engine.deletePool(r.poolId);
      r.waiter!.resolve(result);
    } catch (err) {
      // Validation at submit makes this unreachable; replay would hit it too.
      this.logger.error({ seq: r.seq, poolId: r.poolId, err: describeIoError(err) }, 'storage: engine refused a logged change');
      r.waiter!.reject(err as Error);
    }
  }

  /** A segment whose header is durable under its final name (write temp, fdatasync, rename, fsync dir). */
  private async createSegment(firstSeq: number): Promise<ActiveSegment> {
    const name = segmentFileName(firstSeq);
    const tmpPath = `${this.dataDir}/${name}.tmp`;
    this.ioStage = 'create';
    const file = await this.files.open(tmpPath, 'create');
    try {
      await file.write([encodeSegmentHeader(firstSeq)], 0);
      await file.datasync();
      this.fdatasyncs++;
      await this.files.rename(tmpPath, `${this.dataDir}/${name}`);
      await this.files.fsyncDir(this.dataDir);
    } catch (err) {
      await bestEffort(() => file.close());
      await bestEffort(() => this.files.unlink(tmpPath));
      throw err;
    }
    const info: SegmentInfo = { name, firstSeq, bytes: SEGMENT_HEADER_BYTES };
    // A segment abandoned before anything in it became durable has the same
    // name; the rename just replaced it.
    const same = this.segments.findIndex((s) => s.name === name);
    if (same >= 0) this.segments[same] = info;
    else this.segments.push(info);
    return { info, file, writeOffset: SEGMENT_HEADER_BYTES, durableOffset: SEGMENT_HEADER_BYTES, poisoned: false };
  }

  /** After an I/O error: continue in a new segment from the first record not known durable. */
  private async replaceSegment(old: ActiveSegment | null): Promise<ActiveSegment> {
    const firstSeq = this.queue.length > 0 ? this.queue[0].seq : this.nextSeq;
    const seg = await this.createSegment(firstSeq);
    this.segment = seg;
    this.logger.warn({ abandoned: old?.info.name, segment: seg.info.name, rewriting: this.queue.length }, 'wal: abandoned a segment after an I/O error');
    return seg;
  }

  /** Starts a new segment at the next record to write (after a snapshot), once the current one is durable. */
  private async rotate(seg: ActiveSegment): Promise<ActiveSegment> {
    if (this.unsynced.length > 0) await this.sync(seg);
    const waiters = this.rotateWaiters ?? [];
    this.rotateWaiters = null;
    const firstSeq = this.queue.length > 0 ? this.queue[0].seq : this.nextSeq;
    if (firstSeq === seg.info.firstSeq) {
      for (const w of waiters) w(true);
      return seg;
    }
    try {
      const next = await this.createSegment(firstSeq);
      await bestEffort(() => seg.file.close());
      this.segment = next;
      for (const w of waiters) w(true);
      return next;
    } catch (err) {
      // Rotation only lets cleanup delete more; keep writing where we are.
      this.logger.warn({ err: describeIoError(err) }, 'wal: rotation failed; continuing in the current segment');
      for (const w of waiters) w(false);
      return seg;
    }
  }

  private async onWriteFailure(err: unknown): Promise<void> {
    const stage = this.ioStage;
    this.consecutiveFailures++;
    this.lastError = describeIoError(err);
    this.lastErrorAt = Date.now();
    this.logger.error({ err: this.lastError, stage, segment: this.segment?.info.name, attempt: this.consecutiveFailures }, 'wal: write failed');

    // Everything not known durable goes back to the front of the queue, in order.
    if (this.unsynced.length > 0) {
      this.queue = this.unsynced.concat(this.queue);
      this.unsynced = [];
      this.unsyncedBytes = 0;
    }
    const seg = this.segment;
    if (seg !== null && !seg.poisoned && stage !== 'create') {
      let kept = false;
      if (stage === 'write' && ioErrorCode(err) === 'ENOSPC') {
        // No fsync failed, so the file is still trustworthy: cut back to the
        // durable end (frees the space the partial write took) and keep it.
        try {
          await seg.file.truncate(seg.durableOffset);
          kept = true;
        } catch {
          kept = false;
        }
      }
      if (kept) {
        seg.writeOffset = seg.durableOffset;
        seg.info.bytes = seg.durableOffset;
      } else {
        seg.poisoned = true;
        await bestEffort(() => seg.file.truncate(seg.durableOffset));
        await bestEffort(() => seg.file.close());
      }
    }
    if (this.policy !== 'always' && (this.segment === null || this.segment.poisoned)) {
      // interval/never apply before logging, so a snapshot may already hold
      // records the log never synced; the fresh segment need not repeat them.
      let covered = 0;
      while (covered < this.queue.length && this.queue[covered].seq <= this.lastSnapshotSeq) this.pendingBytes -= this.queue[covered++].bytes;
      if (covered > 0) this.queue = this.queue.slice(covered);
    }

    if (this.consecutiveFailures < 2) return; // one immediate retry (in a new segment if poisoned)
    this.consecutiveFailures = 0;
    this.degraded = true;
    this.retryAt = Date.now() + this.retryBackoffMs;
    if (this.rotateWaiters !== null) {
      for (const w of this.rotateWaiters) w(false);
      this.rotateWaiters = null;
    }
    if (this.policy === 'always') {
      // Nothing here was applied; refusing it loses nothing. The sequence
      // numbers are handed out again, and the next segment (firstSeq =
      // durableSeq + 1) supersedes whatever of these reached the old one.
      const refused = this.queue;
      this.queue = [];
      for (const r of refused) this.pendingBytes -= r.bytes;
      this.nextSeq = this.durableSeq + 1;
      const error = unavailable(`storage write failed (${this.lastError}); the change was not applied.`);
      for (const r of refused) r.waiter!.reject(error);
      // Their bytes may still sit in a segment whose fdatasync failed. An empty
      // durable segment starting at durableSeq + 1 supersedes them for good;
      // if even that fails, the next successful write does it (until then a
      // crash could bring them back: their outcome is unknown, as after any
      // failed fsync).
      if (this.segment === null || this.segment.poisoned) {
        try {
          this.segment = await this.createSegment(this.nextSeq);
        } catch {
          // still poisoned; retried with the next write
        }
      }
    }
    if (this.queue.length > 0) this.scheduleRetry();
  }

  // ---- snapshots ---------------------------------------------------------------

  private maybeAutoSnapshot(): void {
    if (this.lifecycle !== 'open' || this.snapshotRunning !== null || this.snapshotQueued !== null) return;
    if (Date.now() < this.autoSnapshotNotBefore || this.appliedSeq === this.lastSnapshotSeq) return;
    this.scheduleSnapshot().catch(() => {
      // logged in takeSnapshot; try again later
      this.autoSnapshotNotBefore = Date.now() + Math.max(1000, this.retryBackoffMs);
    });
  }

  /** Serialises snapshots: a request made while one runs gets the next one (which sees its state). */
  private scheduleSnapshot(): Promise<void> {
    if (this.snapshotQueued !== null) return this.snapshotQueued;
    const before = this.snapshotRunning ?? Promise.resolve();
    const queued = before
      .catch(() => {})
      .then(() => {
        this.snapshotQueued = null;
        const running = this.takeSnapshot();
        this.snapshotRunning = running;
        return running.finally(() => {
          if (this.snapshotRunning === running) this.snapshotRunning = null;
        });
      });
    this.snapshotQueued = queued;
    return queued;
  }

  private capturePools(): SnapshotPool[] {
    return this.engine.poolIds().map((poolId) => ({ poolId, runs: this.engine.runsOf(poolId) }));
  }

  private requestRotation(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      (this.rotateWaiters ??= []).push(resolve);
      if (this.inBackoff()) {
        this.rotateWaiters = null;
        resolve(false);
        return;
      }
      this.kick();
    });
  }

  private async takeSnapshot(): Promise<void> {
    const seq = this.appliedSeq;
    if (seq === this.lastSnapshotSeq) return;
    const started = Date.now();
    const pools = this.capturePools(); // synchronous: one consistent point at `seq`
    const walBytesAtCapture = this.walBytesWritten;
    const rotated = this.requestRotation();
    const name = snapshotFileName(seq);
    const tmpPath = `${this.dataDir}/${name}.tmp`;
    try {
      await this.builder(tmpPath, seq, pools);
      await this.files.rename(tmpPath, `${this.dataDir}/${name}`);
      await this.files.fsyncDir(this.dataDir);
    } catch (err) {
      await bestEffort(() => this.files.unlink(tmpPath));
      this.lastSnapshotError = describeIoError(err);
      this.logger.error({ seq, err: this.lastSnapshotError }, 'snapshot: failed');
      await rotated;
      throw unavailable(`snapshot at seq ${seq} failed: ${this.lastSnapshotError}`);
    }
    this.lastSnapshotSeq = seq;
    this.lastSnapshotAt = Date.now();
    this.lastSnapshotMs = this.lastSnapshotAt - started;
    this.lastSnapshotError = null;
    this.walBytesAtSnapshot = walBytesAtCapture;
    this.snapshots = this.snapshots.filter((s) => s.name !== name);
    this.snapshots.push({ name, seq });
    await rotated;
    await this.cleanup(seq);
    this.logger.info({ seq, pools: pools.length, ms: this.lastSnapshotMs }, 'snapshot: written');
  }

  /** Deletes older snapshots and every segment whose records are all <= `seq`. */
  private async cleanup(seq: number): Promise<void> {
    const doomed: string[] = [];
    for (let i = 0; i + 1 < this.segments.length; i++) {
      const seg = this.segments[i];
      if (this.segments[i + 1].firstSeq - 1 <= seq && seg !== this.segment?.info) doomed.push(seg.name);
    }
    for (const snap of this.snapshots) if (snap.seq < seq) doomed.push(snap.name);
    let removed = 0;
    for (const name of doomed) {
      try {
        await this.files.unlink(`${this.dataDir}/${name}`);
        removed++;
      } catch (err) {
        if (ioErrorCode(err) !== 'ENOENT') {
          this.logger.warn({ file: name, err: describeIoError(err) }, 'snapshot: could not delete a covered file');
          continue;
        }
      }
      const seg = this.segments.findIndex((s) => s.name === name);
      if (seg >= 0) this.segments.splice(seg, 1);
      this.snapshots = this.snapshots.filter((s) => s.name !== name);
    }
    if (removed > 0) {
      await this.files.fsyncDir(this.dataDir).catch((err: unknown) => {
        this.logger.warn({ err: describeIoError(err) }, 'snapshot: directory fsync after cleanup failed');
      });
    }
  }

  // ---- shutdown ----------------------------------------------------------------

  /** Runs the flusher until nothing is left to do or it is backing off. */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.flushing !== null) {
        await this.flushing;
        continue;
      }
      if (this.flushScheduled) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (!this.hasWork() || this.inBackoff()) return;
      this.kick();
    }
  }

  private async shutdown(): Promise<void> {
    this.lifecycle = 'closing';
    for (const timer of this.timers) clearInterval(timer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = 0; // one last attempt, whatever the backoff says
    this.syncRequested = true;
    await this.drain();
    let snapshotError: unknown = null;
    try {
      await this.scheduleSnapshot();
    } catch (err) {
      snapshotError = err;
    }
    this.retryAt = 0;
    this.syncRequested = true;
    await this.drain();
    const unlogged = this.queue.length + this.unsynced.length;
    const seg = this.segment;
    if (seg !== null && !seg.poisoned) await bestEffort(() => seg.file.close());
    this.lifecycle = 'closed';
    if (unlogged > 0 && (snapshotError !== null || this.lastSnapshotSeq < this.appliedSeq)) {
      throw unavailable(`storage closed with ${unlogged} applied changes neither logged nor snapshotted (${this.lastError ?? describeIoError(snapshotError)}).`);
    }
  }
}

/**
 * Recovers `options.engine` from `options.dataDir` (creating it if missing),
 * then returns the store, ready for writes. Throws StorageCorruptionError if
 * the directory holds damage a crash cannot explain, and PoolqError
 * 'unavailable' if the directory cannot be created, read or written.
 */
export async function openDurableStore(options: DurableStoreOptions): Promise<DurableStore> {
  if (typeof options !== 'object' || options === null) throw invalidOption('', 'an object', options);
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) throw invalidOption('dataDir', 'a non-empty string', options.dataDir);
  if (options.fsync !== 'always' && options.fsync !== 'interval' && options.fsync !== 'never') {
    throw invalidOption('fsync', "'always', 'interval' or 'never'", options.fsync);
  }
  const engine = options.engine;
  if (typeof engine !== 'object' || engine === null || typeof engine.appendSortedRun !== 'function') throw invalidOption('engine', 'a QuantileEngine', typeof engine);
  if (engine.poolIds().length > 0) throw invalidOption('engine', 'an empty engine (recovery fills it)', `${engine.poolIds().length} pools`);
  const tuning = resolveTuning(options);
  const files = options.files ?? nodeFileLayer;
  const dataDir = options.dataDir.length > 1 ? options.dataDir.replace(/\/+$/, '') : options.dataDir;
  const logger = options.logger ?? silentLogger;

  const recovered = await recover({ files, dataDir, engine, logger });
  logger.info({ ...recovered.report }, 'storage: recovered');
  const store = new DurableStoreImpl({ ...options, dataDir }, tuning, files, recovered);
  await store.start();
  return store;
}
