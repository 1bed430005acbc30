// The durable store: a PoolWriter that logs every change to the write-ahead
// log before (`always`) or while (`interval`, `never`) applying it to the
// engine, snapshots the engine now and then, and rebuilds it at start-up.
// This file is the façade: it checks what callers pass (change-input.ts),
// turns each call into one commit of one or more records, and answers it.
// The parts:
//   store-options.ts       options, defaults, validation
//   recovery.ts            start-up: snapshot + key file + log → engine (log-replay.ts)
//   wal-writer.ts          sequence numbers, group commit, I/O error handling
//   snapshot-scheduler.ts  when snapshots are taken, and cleanup after them
//   idempotency-keys.ts    keyed changes and their first outcomes
//   apply-change.ts        the one place a logged change reaches the engine
//
// Every change gets the next sequence number when it is submitted, so log
// order is submission order and the order the engine applies changes in.

import type { AppendOutcome } from '../core/engine.js';
import { unavailable } from '../core/errors.js';
import type { SortedRun } from '../core/sorted-run.js';
import { applyChange } from './apply-change.js';
import { checkItems, checkPoolId, checkRun, checkWindow, keyBytesOf, timeOf } from './change-input.js';
import { dataDirUnusable, describeIoError } from './errors.js';
import { IdempotencyKeys, type KeyedItem } from './idempotency-keys.js';
import type { AppendItem, AppendOptions, AppendResult, Awaitable, PoolWriter } from './pool-writer.js';
import { recover } from './recovery.js';
import { SnapshotScheduler } from './snapshot-scheduler.js';
import type {
  ChangeResult,
  DurableStoreGauges,
  DurableStoreStats,
  LogRecord,
  PendingCommit,
  RecoveredState,
  RecoveryReport,
} from './storage-types.js';
import { resolveStoreOptions, type DurableStoreOptions, type StoreSettings } from './store-options.js';
import { WalFlag, WalOp } from './wal-format.js';
import { recordLengthV2 } from './wal-record-v2.js';
import { WalWriter } from './wal-writer.js';

export type { DurableStoreOptions } from './store-options.js';
export type { DurableStoreGauges, DurableStoreStats } from './storage-types.js';

export interface DurableStore extends PoolWriter {
  /** append(poolId, run, { key }). */
  appendKeyed(poolId: number, run: SortedRun, key: string): Awaitable<AppendResult>;
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

/** One change of a commit, before it becomes a LogRecord. */
interface Change {
  op: WalOp;
  poolId: number;
  run: Float64Array | null;
}

/** A commit's idempotency key: as given, as logged, and what it names. */
interface CommitKey {
  text: string;
  bytes: Uint8Array;
  items: KeyedItem[];
}

function then<T, U>(value: Awaitable<T>, fn: (v: T) => U): Awaitable<U> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

class DurableStoreImpl implements DurableStore {
  readonly recovery: RecoveryReport;
  private readonly settings: StoreSettings;
  private readonly writer: WalWriter;
  private readonly snapshots: SnapshotScheduler;
  private readonly keys: IdempotencyKeys;
  private closing: Promise<void> | null = null;
  private readonly startedAt = Date.now();

  constructor(settings: StoreSettings, recovered: RecoveredState, keys: IdempotencyKeys) {
    this.settings = settings;
    this.keys = keys;
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
        applyDurable: (records) => this.applyDurable(records),
        snapshotSeq: () => this.snapshots.lastSnapshotSeq,
        afterWrite: () => this.snapshots.afterWrite(),
        released: settings.onRelease,
      },
    });
    this.snapshots = new SnapshotScheduler({
      files: settings.files,
      dataDir: settings.dataDir,
      engine: settings.engine,
      logger: settings.logger,
      builder: settings.buildSnapshot,
      writer: this.writer,
      keys,
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

  append(poolId: number, run: SortedRun, options?: AppendOptions): Awaitable<AppendResult> {
    checkPoolId(poolId);
    checkRun(run);
    return then(this.submitAppends([{ poolId, run }], options), (outcomes) => outcomes[0]);
  }

  /** append(poolId, run, { key }). */
  appendKeyed(poolId: number, run: SortedRun, key: string): Awaitable<AppendResult> {
    return this.append(poolId, run, { key });
  }

  appendAll(items: readonly AppendItem[], options?: AppendOptions): Awaitable<AppendResult[]> {
    checkItems(items);
    return this.submitAppends(items, options);
  }

  deletePool(poolId: number): Awaitable<boolean> {
    checkPoolId(poolId);
    const atMs = timeOf(undefined, this.settings.clock);
    // interval/never: nothing changes, nothing to log
    if (this.settings.fsync !== 'always' && !this.settings.engine.hasPool(poolId)) return false;
    return then(this.submit([{ op: WalOp.delete, poolId, run: null }], atMs, null), (results) => results[0] as boolean);
  }

  setRetention(poolId: number, windowSeconds: number | null, options?: Pick<AppendOptions, 'atMs'>): Awaitable<void> {
    checkPoolId(poolId);
    const window = checkWindow(windowSeconds);
    const atMs = timeOf(options, this.settings.clock);
    return then(this.submit([{ op: WalOp.retention, poolId, run: Float64Array.of(window) }], atMs, null), () => undefined);
  }

  /** Appends as one commit; with a key, a repeat gets the first outcomes instead. */
  private submitAppends(items: readonly AppendItem[], options: AppendOptions | undefined): Awaitable<AppendResult[]> {
    const keyBytes = keyBytesOf(options);
    const atMs = timeOf(options, this.settings.clock);
    const changes = items.map((item) => ({ op: WalOp.append, poolId: item.poolId, run: item.run }));
    if (keyBytes === null) return this.submit(changes, atMs, null) as Awaitable<AppendOutcome[]>;
    const key = options!.key!;
    const keyed = items.map((item) => ({ poolId: item.poolId, valueCount: item.run.length }));
    const seen = this.keys.find(key, keyed);
    if (seen !== undefined) return then(seen, (outcomes) => outcomes.map((o): AppendResult => ({ ...o, replayed: true })));
    const result = this.submit(changes, atMs, { text: key, bytes: keyBytes, items: keyed }) as Awaitable<AppendOutcome[]>;
    if (result instanceof Promise) {
      this.keys.addInFlight(key, keyed, result);
      result.catch(() => this.keys.dropInFlight(key));
    } else {
      this.keys.add(key, this.writer.nextSeq - 1, atMs, keyed, result);
    }
    return result;
  }

  /**
   * Logs `changes` as one commit (a transaction when there are several: all
   * records but the last carry the `continues` flag, the last one the key).
   * `always`: resolves once durable and applied. interval/never: applies now.
   */
  private submit(changes: readonly Change[], atMs: number, key: CommitKey | null): Awaitable<ChangeResult[]> {
    const last = changes.length - 1;
    let bytes = 0;
    const records = changes.map((c, i): LogRecord => {
      const recordKey = i === last && key !== null ? key.bytes : null;
      const size = recordLengthV2(c.run === null ? 0 : c.run.length, recordKey?.length ?? 0);
      bytes += size;
      return { seq: 0, ...c, flags: i < last ? WalFlag.continues : 0, atMs, key: recordKey, bytes: size, commit: null };
    });
    const writer = this.writer;
    const refusal = writer.admission(bytes, records.length);
    if (this.settings.fsync === 'always') {
      if (refusal !== null) return Promise.reject(refusal);
      return new Promise<ChangeResult[]>((resolve, reject) => {
        const commit: PendingCommit = {
          results: [],
          settle: (results) => {
            if (key !== null) this.keys.add(key.text, records[last].seq, atMs, key.items, results as AppendOutcome[]);
            resolve(results);
          },
          reject,
        };
        for (const r of records) r.commit = commit;
        writer.assignSeqs(records);
        writer.enqueue(records);
      });
    }
    if (refusal !== null) throw refusal;
    writer.assignSeqs(records);
    const engine = this.settings.engine;
    const results = records.map((r) => applyChange(engine, r.op, r.poolId, r.run, r.atMs));
    writer.appliedSeq = records[last].seq;
    writer.enqueue(records);
    return results;
  }

  /** `always`: the records are durable; apply them in log order and answer each commit after its last record. */
  private applyDurable(records: readonly LogRecord[]): void {
    const engine = this.settings.engine;
    for (const r of records) {
      this.writer.appliedSeq = r.seq;
      const commit = r.commit!;
      try {
        commit.results.push(applyChange(engine, r.op, r.poolId, r.run, r.atMs));
        if ((r.flags & WalFlag.continues) === 0) commit.settle(commit.results);
      } catch (err) {
        // Validation at submit makes this unreachable; replay would hit it too.
        this.settings.logger.error({ seq: r.seq, poolId: r.poolId, err: describeIoError(err) }, 'storage: engine refused a logged change');
        commit.reject(err as Error);
      }
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
  const keys = new IdempotencyKeys({
    windowMs: settings.idempotencyWindowMs,
    maxEntries: settings.maxIdempotencyKeys,
    clock: settings.clock,
  });
  const recovered = await recover({ files, dataDir, engine, logger, keys });
  logger.info({ ...recovered.report }, 'storage: recovered');
  const store = new DurableStoreImpl(settings, recovered, keys);
  await store.start();
  return store;
}
