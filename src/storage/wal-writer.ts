// The WAL writer: hands out sequence numbers, queues records, and runs the one
// flusher per log file (overlapping writes to one file are unsafe in Node).
// The flusher takes everything queued and writes it in one write. Under
// `always` it then fdatasyncs and hands the records to `applyDurable` in log
// order; whatever is submitted meanwhile goes into the next commit (group
// commit), which first waits briefly for as many records as the last one held
// (docs/durability.md, "Commit gathering"). Under `interval`/`never` changes
// were applied at submit time; the batch is written on the next event-loop
// turn and fdatasync'ed every fsyncIntervalMs (`interval`), when unsynced
// records reach half a queue bound, at rotation and at close; under `never`
// also once writes pause for idleSyncMs, so a quiet server does not keep the
// last burst's values twice (engine and re-write queue: ~1.25 B per stored
// value at 10^7 values).
//
// I/O errors (docs/storage-format.md, "I/O errors"): a failed fsync is never
// retried on the same file. The segment is abandoned and a new one starts at
// the first seq not known durable, every record from there re-written into it
// (a segment's firstSeq supersedes the previous segment at recovery). One
// immediate retry; if that fails too the writer is degraded: under `always`
// the waiting changes are refused with 'unavailable' (never applied) and their
// seqs reused; under `interval`/`never` they were applied, so they stay queued.
// New changes are refused until retryBackoffMs has passed. Reads never stop.

import { unavailable, type PoolqError } from '../core/errors.js';
import { bestEffort, describeIoError, ioErrorCode } from './errors.js';
import type { FileLayer } from './file-layer.js';
import type { FsyncPolicy } from './pool-writer.js';
import type { LogRecord, SegmentInfo, StorageLogger } from './storage-types.js';
import type { StoreTuning } from './store-options.js';
import { CommitQueue } from './commit-queue.js';
import { encodeBatch } from './wal-batch.js';
import { WalSegments, type ActiveSegment } from './wal-segments.js';

type IoStage = 'write' | 'sync' | 'create';
export type Lifecycle = 'open' | 'closing' | 'closed';

export interface WalWriterHooks {
  /** `always`: the records are durable; apply them in log order and settle their waiters. */
  applyDurable(records: readonly LogRecord[]): void;
  /** Highest sequence number covered by a snapshot. */
  snapshotSeq(): number;
  /** After each successful write (the store may start a snapshot). */
  afterWrite(): void;
  /** `interval`/`never`: bytes of records (already applied) the log just stopped holding. */
  released(bytes: number): void;
}

export interface WalWriterConfig {
  policy: FsyncPolicy;
  files: FileLayer;
  dataDir: string;
  logger: StorageLogger;
  tuning: StoreTuning;
  /** Segment files recovery left on disk. */
  segments: SegmentInfo[];
  /** Highest sequence number recovery rebuilt. */
  lastSeq: number;
  hooks: WalWriterHooks;
}

export class WalWriter {
  nextSeq: number;
  appliedSeq: number;
  durableSeq: number;
  lifecycle: Lifecycle = 'open';
  degraded = false;
  lastError: string | null = null;
  lastErrorAt: number | null = null;
  bytesWritten = 0;
  writes = 0;
  private syncs = 0;
  readonly segments: WalSegments;
  readonly pending: CommitQueue;

  private readonly policy: FsyncPolicy;
  private readonly logger: StorageLogger;
  private readonly tuning: StoreTuning;
  private readonly hooks: WalWriterHooks;
  private flushScheduled = false;
  private flushing: Promise<void> | null = null;
  /** `always`: records the last fdatasync acknowledged (the next commit gathers up to as many). */
  private lastCommitSize = 0;
  private syncRequested = false;
  private rotateWaiters: ((rotated: boolean) => void)[] | null = null;
  private ioStage: IoStage = 'write';
  private retryAt = 0;
  private consecutiveFailures = 0;
  private intervalTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private idleSyncTimer: NodeJS.Timeout | null = null;
  private lastWriteAt = 0;

  constructor(config: WalWriterConfig) {
    this.policy = config.policy;
    this.logger = config.logger;
    this.tuning = config.tuning;
    this.hooks = config.hooks;
    this.pending = new CommitQueue(config.tuning.maxPendingRecords, config.tuning.maxPendingBytes);
    this.segments = new WalSegments(config.files, config.dataDir, config.segments);
    this.nextSeq = config.lastSeq + 1;
    this.appliedSeq = config.lastSeq;
    this.durableSeq = config.lastSeq;
  }

  /** Opens the first segment (which also proves the directory is writable) and, under `interval`, the sync timer. */
  async start(): Promise<void> {
    this.ioStage = 'create';
    this.segments.current = await this.segments.create(this.nextSeq);
    if (this.policy === 'interval') {
      this.intervalTimer = setInterval(() => {
        if (this.pending.unsyncedCount > 0) {
          this.syncRequested = true;
          this.kick();
        }
      }, this.tuning.fsyncIntervalMs);
      this.intervalTimer.unref();
    }
  }

  get fdatasyncs(): number {
    return this.syncs + this.segments.fdatasyncs;
  }

  inBackoff(): boolean {
    return this.degraded && Date.now() < this.retryAt;
  }

  /** Why `records` records of `bytes` in all cannot be taken now, or null. Refusals are quick and apply nothing. */
  admission(bytes: number, records = 1): PoolqError | null {
    if (this.lifecycle !== 'open') return unavailable('storage is shutting down; the change was not applied.');
    if (this.inBackoff()) {
      return unavailable(
        `storage cannot write (${this.lastError}); the change was not applied. Retrying in ${this.retryAt - Date.now()} ms.`,
      );
    }
    if (this.pending.isFull(bytes, records)) {
      return unavailable('the commit queue is full (the disk is not keeping up); the change was not applied.');
    }
    return null;
  }

  /** Gives `records` the next sequence numbers, in order. */
  assignSeqs(records: readonly LogRecord[]): void {
    for (const r of records) r.seq = this.nextSeq++;
  }

  /** Queues records (seqs assigned) for the next write; they are written together, in one write and one segment. */
  enqueue(records: readonly LogRecord[]): void {
    for (const r of records) this.pending.push(r);
    this.kick();
  }

  /** Asks the flusher to start a new segment at the next record to write; resolves whether it did. */
  requestRotation(): Promise<boolean> {
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

  /** Stops the timers and makes the next flush attempt (and sync) happen whatever the backoff says. */
  beginClosing(): void {
    this.lifecycle = 'closing';
    if (this.intervalTimer !== null) clearInterval(this.intervalTimer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.idleSyncTimer !== null) clearTimeout(this.idleSyncTimer);
    this.retryTimer = null;
    this.idleSyncTimer = null;
    this.requestFinalSync();
  }

  /** One last attempt to write and fdatasync everything, backoff or not. */
  requestFinalSync(): void {
    this.retryAt = 0;
    this.syncRequested = true;
  }

  /** Runs the flusher until nothing is left to do or it is backing off. */
  async drain(): Promise<void> {
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

  /** Closes the current segment; returns how many records never became durable. */
  async close(): Promise<number> {
    const seg = this.segments.current;
    if (seg !== null && !seg.poisoned) await bestEffort(() => seg.file.close());
    this.lifecycle = 'closed';
    return this.pending.records;
  }

  // ---- the flusher -----------------------------------------------------------

  private syncDue(): boolean {
    // `interval`/`never` hold unsynced records for re-writing; sync before they
    // fill the admission bound (by bytes or by count), or a steady stream of
    // small appends fills it within seconds and gets 503.
    return this.policy === 'always' || this.syncRequested || this.pending.holdsTooMuchUnsynced();
  }

  private hasWork(): boolean {
    return this.pending.queuedCount > 0 || (this.pending.unsyncedCount > 0 && this.syncDue()) || this.rotateWaiters !== null;
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
          this.armIdleSync();
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
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        if (this.inBackoff()) this.scheduleRetry();
        else this.kick();
      },
      Math.max(1, this.retryAt - Date.now()),
    );
    this.retryTimer.unref();
  }

  /** `never`: requests a sync once no write has come for idleSyncMs (re-armed while writes keep coming). */
  private armIdleSync(): void {
    const idleMs = this.tuning.idleSyncMs;
    if (this.policy !== 'never' || idleMs === 0 || this.idleSyncTimer !== null || this.lifecycle !== 'open') return;
    if (this.pending.unsyncedCount === 0) return;
    const wait = Math.max(1, this.lastWriteAt + idleMs - performance.now());
    this.idleSyncTimer = setTimeout(() => {
      this.idleSyncTimer = null;
      if (this.pending.unsyncedCount === 0 || this.lifecycle !== 'open') return;
      if (performance.now() - this.lastWriteAt < idleMs) return this.armIdleSync();
      this.syncRequested = true;
      this.kick();
    }, wait);
    this.idleSyncTimer.unref();
  }

  private async flushLoop(): Promise<void> {
    while (this.hasWork() && !this.inBackoff()) {
      try {
        await this.gatherCommit();
        await this.flushStep();
        this.consecutiveFailures = 0;
        if (this.degraded) {
          this.degraded = false;
          this.logger.info({ segment: this.segments.current?.info.name }, 'storage: writes succeed again');
        }
      } catch (err) {
        await this.onWriteFailure(err);
      }
    }
  }

  /** `always`: wait (at most commitGatherMs, yielding) until as many records are queued as the last commit held. */
  private async gatherCommit(): Promise<void> {
    if (this.policy !== 'always' || this.tuning.commitGatherMs === 0) return;
    const want = Math.min(this.lastCommitSize, this.tuning.maxPendingRecords);
    if (this.pending.queuedCount >= want) return;
    const until = performance.now() + this.tuning.commitGatherMs;
    while (this.pending.queuedCount < want && this.lifecycle === 'open' && performance.now() < until) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private async flushStep(): Promise<void> {
    let seg = this.segments.current;
    if (seg === null || seg.poisoned) seg = await this.replaceSegment(seg);
    if (this.rotateWaiters !== null) seg = await this.rotate(seg);
    if (this.pending.queuedCount > 0) await this.writeBatch(seg, this.pending.takeForWrite());
    if (this.pending.unsyncedCount > 0 && this.syncDue()) await this.sync(seg);
  }

  private async writeBatch(seg: ActiveSegment, batch: LogRecord[]): Promise<void> {
    const { chunks, bytes } = encodeBatch(batch, this.durableSeq);
    this.ioStage = 'write';
    await seg.file.write(chunks, seg.writeOffset);
    seg.writeOffset += bytes;
    seg.info.bytes = seg.writeOffset;
    this.bytesWritten += bytes;
    this.writes++;
    this.lastWriteAt = performance.now();
    this.hooks.afterWrite();
  }

  private async sync(seg: ActiveSegment): Promise<void> {
    const count = this.pending.unsyncedCount;
    const upTo = seg.writeOffset;
    this.ioStage = 'sync';
    await seg.file.datasync();
    this.syncs++;
    seg.durableOffset = upTo;
    this.syncRequested = false;
    const { done, bytes } = this.pending.markDurable(count);
    if (done.length === 0) return;
    this.durableSeq = done[done.length - 1].seq;
    if (this.policy === 'always') {
      this.lastCommitSize = done.length;
      this.hooks.applyDurable(done);
    } else {
      this.hooks.released(bytes);
    }
  }

  private async createSegment(firstSeq: number): Promise<ActiveSegment> {
    this.ioStage = 'create';
    return this.segments.create(firstSeq);
  }

  /** After an I/O error: continue in a new segment from the first record not known durable. */
  private async replaceSegment(old: ActiveSegment | null): Promise<ActiveSegment> {
    const seg = await this.createSegment(this.pending.firstQueuedSeq() ?? this.nextSeq);
    this.segments.current = seg;
    this.logger.warn(
      { abandoned: old?.info.name, segment: seg.info.name, rewriting: this.pending.queuedCount },
      'wal: abandoned a segment after an I/O error',
    );
    return seg;
  }

  /** Starts a new segment at the next record to write (after a snapshot), once the current one is durable. */
  private async rotate(seg: ActiveSegment): Promise<ActiveSegment> {
    if (this.pending.unsyncedCount > 0) await this.sync(seg);
    const waiters = this.rotateWaiters ?? [];
    this.rotateWaiters = null;
    const firstSeq = this.pending.firstQueuedSeq() ?? this.nextSeq;
    if (firstSeq === seg.info.firstSeq) {
      for (const w of waiters) w(true);
      return seg;
    }
    try {
      const next = await this.createSegment(firstSeq);
      await bestEffort(() => seg.file.close());
      this.segments.current = next;
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
    this.logger.error(
      { err: this.lastError, stage, segment: this.segments.current?.info.name, attempt: this.consecutiveFailures },
      'wal: write failed',
    );

    this.pending.requeueUnsynced();
    const seg = this.segments.current;
    if (seg !== null && !seg.poisoned && stage !== 'create')
      await this.segments.keepOrPoison(seg, stage === 'write' && ioErrorCode(err) === 'ENOSPC');
    const current = this.segments.current;
    // interval/never apply before logging, so a snapshot may already hold
    // records the log never synced; the fresh segment need not repeat them.
    if (this.policy !== 'always' && (current === null || current.poisoned)) this.pending.dropQueuedThrough(this.hooks.snapshotSeq());

    if (this.consecutiveFailures < 2) return; // one immediate retry (in a new segment if poisoned)
    this.consecutiveFailures = 0;
    this.degraded = true;
    this.retryAt = Date.now() + this.tuning.retryBackoffMs;
    if (this.rotateWaiters !== null) {
      for (const w of this.rotateWaiters) w(false);
      this.rotateWaiters = null;
    }
    if (this.policy === 'always') await this.refuseWaiting();
    if (this.pending.queuedCount > 0) this.scheduleRetry();
  }

  /**
   * `always`, degraded: nothing queued was applied, so refusing it loses
   * nothing. The sequence numbers are handed out again, and the next segment
   * (firstSeq = durableSeq + 1) supersedes whatever of them reached the old one.
   */
  private async refuseWaiting(): Promise<void> {
    const refused = this.pending.takeAllQueued();
    this.nextSeq = this.durableSeq + 1;
    const error = unavailable(`storage write failed (${this.lastError}); the change was not applied.`);
    for (const r of refused) r.commit!.reject(error);
    // Their bytes may still sit in a segment whose fdatasync failed. An empty
    // durable segment starting at durableSeq + 1 supersedes them for good; if
    // even that fails, the next successful write does it (until then a crash
    // could bring them back: their outcome is unknown, as after any failed
    // fsync).
    const current = this.segments.current;
    if (current === null || current.poisoned) {
      try {
        this.segments.current = await this.createSegment(this.nextSeq);
      } catch {
        // still poisoned; retried with the next write
      }
    }
  }
}
