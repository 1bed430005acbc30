// The durable store: a PoolWriter that logs every change to the write-ahead
// log before (`always`) or while (`interval`, `never`) applying it to the
// engine, snapshots the engine now and then, and rebuilds it at start-up.
// This file is the façade; the parts are:
//   store-options.ts       options, defaults, validation
//   recovery.ts            start-up: snapshot + log → engine
//   wal-writer.ts          sequence numbers, group commit, I/O error handling
//   snapshot-scheduler.ts  when snapshots are taken, and cleanup after them
//
// Every change gets the next sequence number when it is submitted, so log
// order is submission order and the order the engine applies changes in.

import type { AppendOutcome } from '../core/engine.js';
import { invalidRequest, unavailable } from '../core/errors.js';
import { isValidPoolId, poolIdRuleText } from '../core/pool-id.js';
import type { SortedRun } from '../core/sorted-run.js';
import { dataDirUnusable, describeIoError } from './errors.js';
import type { PoolWriter } from './pool-writer.js';
import { recover } from './recovery.js';
import { SnapshotScheduler } from './snapshot-scheduler.js';
import type { DurableStoreGauges, DurableStoreStats, LogRecord, RecoveredState, RecoveryReport, Waiter } from './storage-types.js';
import { resolveStoreOptions, type DurableStoreOptions, type StoreSettings } from './store-options.js';
import { MAX_RECORD_VALUES, recordLength, WalOp } from './wal-format.js';
import { WalWriter } from './wal-writer.js';

export type { DurableStoreOptions } from './store-options.js';
export type { DurableStoreGauges, DurableStoreStats } from './storage-types.js';

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

function checkPoolId(poolId: number): void {
  if (!isValidPoolId(poolId)) throw invalidRequest('poolId', `${poolIdRuleText()}, got ${poolId}.`);
}

class DurableStoreImpl implements DurableStore {
  readonly recovery: RecoveryReport;
  private readonly settings: StoreSettings;
  private readonly writer: WalWriter;
  private readonly snapshots: SnapshotScheduler;
  private closing: Promise<void> | null = null;
  private readonly startedAt = Date.now();

  constructor(settings: StoreSettings, recovered: RecoveredState) {
    this.settings = settings;
    this.recovery = recovered.report;
    this.writer = new WalWriter({
      policy: settings.fsync,
      files: settings.files,
      dataDir: settings.dataDir,
      logger: settings.logger,
      tuning: settings,
      segments: recovered.segments,
      lastSeq: recovered.report.lastSeq,
      hooks: {
        applyDurable: (records) => {
          for (const r of records) this.applyDurable(r);
        },
        snapshotSeq: () => this.snapshots.lastSnapshotSeq,
        afterWrite: () => this.snapshots.afterWrite(),
      },
    });
    this.snapshots = new SnapshotScheduler({
      files: settings.files,
      dataDir: settings.dataDir,
      engine: settings.engine,
      logger: settings.logger,
      builder: settings.buildSnapshot,
      writer: this.writer,
      snapshots: recovered.snapshots,
      snapshotSeq: recovered.report.snapshotSeq,
      intervalMs: settings.snapshotIntervalMs,
      walBytes: settings.snapshotWalBytes,
      retryBackoffMs: settings.retryBackoffMs,
    });
  }

  /** Opens the first segment (which also proves the directory is writable) and starts the timers. */
  async start(): Promise<void> {
    try {
      await this.writer.start();
    } catch (err) {
      throw dataDirUnusable(this.settings.dataDir, 'create a WAL segment in it', err);
    }
    this.snapshots.start();
  }

  // ---- PoolWriter ----------------------------------------------------------

  append(poolId: number, run: SortedRun): AppendOutcome | Promise<AppendOutcome> {
    checkPoolId(poolId);
    if (run.length === 0) throw invalidRequest('poolValues', 'poolValues must not be empty.');
    if (run.length > MAX_RECORD_VALUES) throw invalidRequest('poolValues', `at most ${MAX_RECORD_VALUES} values fit in one append.`);
    const bytes = recordLength(run.length);
    const writer = this.writer;
    const refusal = writer.admission(bytes);
    if (this.settings.fsync === 'always') {
      if (refusal !== null) return Promise.reject(refusal);
      return new Promise<AppendOutcome>((resolve, reject) => {
        writer.enqueue({
          seq: writer.nextSeq++,
          op: WalOp.append,
          poolId,
          run,
          bytes,
          waiter: { resolve: resolve as Waiter['resolve'], reject },
        });
      });
    }
    if (refusal !== null) throw refusal;
    const outcome = this.settings.engine.appendSortedRun(poolId, run);
    writer.appliedSeq = writer.nextSeq;
    writer.enqueue({ seq: writer.nextSeq++, op: WalOp.append, poolId, run, bytes, waiter: null });
    return outcome;
  }

  deletePool(poolId: number): boolean | Promise<boolean> {
    checkPoolId(poolId);
    const bytes = recordLength(0);
    const writer = this.writer;
    if (this.settings.fsync === 'always') {
      const refusal = writer.admission(bytes);
      if (refusal !== null) return Promise.reject(refusal);
      return new Promise<boolean>((resolve, reject) => {
        writer.enqueue({
          seq: writer.nextSeq++,
          op: WalOp.delete,
          poolId,
          run: null,
          bytes,
          waiter: { resolve: resolve as Waiter['resolve'], reject },
        });
      });
    }
    if (!this.settings.engine.hasPool(poolId)) return false; // nothing changes, nothing to log
    const refusal = writer.admission(bytes);
    if (refusal !== null) throw refusal;
    this.settings.engine.deletePool(poolId);
    writer.appliedSeq = writer.nextSeq;
    writer.enqueue({ seq: writer.nextSeq++, op: WalOp.delete, poolId, run: null, bytes, waiter: null });
    return true;
  }

  /** `always`: the record is durable; apply it in log order and answer. */
  private applyDurable(r: LogRecord): void {
    this.writer.appliedSeq = r.seq;
    const engine = this.settings.engine;
    try {
      const result = r.op === WalOp.append ? engine.appendSortedRun(r.poolId, r.run!) : engine.deletePool(r.poolId);
      r.waiter!.resolve(result);
    } catch (err) {
      // Validation at submit makes this unreachable; replay would hit it too.
      this.settings.logger.error({ seq: r.seq, poolId: r.poolId, err: describeIoError(err) }, 'storage: engine refused a logged change');
      r.waiter!.reject(err as Error);
    }
  }

  // ---- state and lifecycle -------------------------------------------------

  isWritable(): boolean {
    return this.writer.lifecycle === 'open' && !this.writer.inBackoff();
  }

  gauges(): DurableStoreGauges {
    return {
      walBytes: () => this.writer.segments.totalBytes(),
      lastSnapshotAgeSeconds: () => (Date.now() - (this.snapshots.lastSnapshotAt ?? this.startedAt)) / 1000,
      pendingCommits: () => this.writer.pending.records,
      writable: () => this.isWritable(),
    };
  }

  stats(): DurableStoreStats {
    const { writer, snapshots } = this;
    return {
      fsync: this.settings.fsync,
      status: writer.degraded ? 'degraded' : 'ok',
      state: writer.lifecycle,
      lastError: writer.lastError,
      lastErrorAt: writer.lastErrorAt,
      seq: writer.nextSeq - 1,
      appliedSeq: writer.appliedSeq,
      durableSeq: writer.durableSeq,
      walSegments: writer.segments.onDisk.length,
      walBytes: writer.segments.totalBytes(),
      walBytesSinceSnapshot: snapshots.walBytesSinceSnapshot(),
      pendingRecords: writer.pending.records,
      pendingBytes: writer.pending.bytes,
      writes: writer.writes,
      fdatasyncs: writer.fdatasyncs,
      lastSnapshotSeq: snapshots.lastSnapshotSeq,
      lastSnapshotAt: snapshots.lastSnapshotAt,
      lastSnapshotMs: snapshots.lastSnapshotMs,
      lastSnapshotError: snapshots.lastSnapshotError,
      snapshotInProgress: snapshots.inProgress,
      recovery: this.recovery,
    };
  }

  snapshotNow(): Promise<void> {
    if (this.writer.lifecycle === 'closed') return Promise.reject(unavailable('storage is closed.'));
    return this.snapshots.schedule();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { writer, snapshots } = this;
    writer.beginClosing();
    snapshots.stopTimer();
    await writer.drain();
    let snapshotError: unknown = null;
    try {
      await snapshots.schedule();
    } catch (err) {
      snapshotError = err;
    }
    writer.requestFinalSync();
    await writer.drain();
    const unlogged = await writer.close();
    if (unlogged > 0 && (snapshotError !== null || snapshots.lastSnapshotSeq < writer.appliedSeq)) {
      throw unavailable(
        `storage closed with ${unlogged} applied changes neither logged nor snapshotted (${writer.lastError ?? describeIoError(snapshotError)}).`,
      );
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
  const settings = resolveStoreOptions(options);
  const { files, dataDir, engine, logger } = settings;
  const recovered = await recover({ files, dataDir, engine, logger });
  logger.info({ ...recovered.report }, 'storage: recovered');
  const store = new DurableStoreImpl(settings, recovered);
  await store.start();
  return store;
}
