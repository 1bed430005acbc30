// When and how the store writes snapshots. A snapshot captures the engine's
// pool → runs lists synchronously (runs are immutable, so that is a consistent
// point at the writer's appliedSeq), asks the writer to rotate the log, and
// writes the file asynchronously through the pluggable builder; then rename +
// directory fsync, and delete older snapshots and the segments the new one
// covers (docs/storage-format.md, "Snapshot"). The idempotency keys as of the
// same point go into a key file beside it (keys-file.ts).

import type { QuantileEngine } from '../core/engine.js';
import { unavailable } from '../core/errors.js';
import { runBytes } from '../core/stored-run.js';
import { bestEffort, describeIoError, ioErrorCode } from './errors.js';
import type { FileLayer } from './file-layer.js';
import type { IdempotencyKeys } from './idempotency-keys.js';
import { writeKeysFile } from './keys-file.js';
import { snapshotFileName, type SnapshotBuilder, type SnapshotPool } from './snapshot-format.js';
import type { SnapshotFileInfo, StorageLogger } from './storage-types.js';
import type { WalWriter } from './wal-writer.js';

export interface SnapshotSchedulerConfig {
  files: FileLayer;
  dataDir: string;
  engine: QuantileEngine;
  logger: StorageLogger;
  builder: SnapshotBuilder;
  writer: WalWriter;
  keys: IdempotencyKeys;
  /** Snapshot files recovery left on disk, ascending seq. */
  snapshots: SnapshotFileInfo[];
  /** Seq of the snapshot recovery loaded (0: none). */
  snapshotSeq: number;
  intervalMs: number;
  walBytes: number;
  retryBackoffMs: number;
}

/** Bytes of the run arrays a snapshot of `pools` holds: nearly all of its file. */
function runArrayBytes(pools: readonly SnapshotPool[]): number {
  let bytes = 0;
  for (const pool of pools) for (const bucket of pool.buckets) for (const run of bucket.runs) bytes += runBytes(run);
  return bytes;
}

export class SnapshotScheduler {
  lastSnapshotSeq: number;
  lastSnapshotAt: number | null = null;
  lastSnapshotMs: number | null = null;
  lastSnapshotError: string | null = null;
  /** The writer's bytesWritten when the last snapshot captured its state. */
  private walBytesAtSnapshot = 0;
  /** Run bytes of the last snapshot this process wrote (0: none yet). */
  private lastSnapshotBytes = 0;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private autoNotBefore = 0;
  private timer: NodeJS.Timeout | null = null;
  private snapshots: SnapshotFileInfo[];

  constructor(private readonly config: SnapshotSchedulerConfig) {
    this.lastSnapshotSeq = config.snapshotSeq;
    this.snapshots = config.snapshots;
  }

  start(): void {
    if (this.config.intervalMs <= 0) return;
    this.timer = setInterval(() => this.maybeAuto(), this.config.intervalMs);
    this.timer.unref();
  }

  stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  get inProgress(): boolean {
    return this.running !== null;
  }

  walBytesSinceSnapshot(): number {
    return this.config.writer.bytesWritten - this.walBytesAtSnapshot;
  }

  /**
   * After each WAL write: snapshot once the log has grown by `walBytes`, or by
   * as much as the last snapshot file if that is larger. A fixed trigger would
   * rewrite the whole data set every `walBytes` of appends: with 10^8 values
   * (800 MB) and 256 MiB, each logged byte would cost four more bytes of
   * snapshot; this way it costs at most one, and replay stays within one
   * snapshot's worth of log.
   */
  afterWrite(): void {
    const walBytes = this.config.walBytes;
    if (walBytes > 0 && this.walBytesSinceSnapshot() >= Math.max(walBytes, this.lastSnapshotBytes)) this.maybeAuto();
  }

  /** Starts a snapshot unless one is running or waiting, nothing changed, or an earlier one failed recently. */
  maybeAuto(): void {
    const writer = this.config.writer;
    if (writer.lifecycle !== 'open' || this.running !== null || this.queued !== null) return;
    if (Date.now() < this.autoNotBefore || writer.appliedSeq === this.lastSnapshotSeq) return;
    this.schedule().catch(() => {
      // logged in take(); try again later
      this.autoNotBefore = Date.now() + Math.max(1000, this.config.retryBackoffMs);
    });
  }

  /** Serialises snapshots: a request made while one runs gets the next one (which sees its state). */
  schedule(): Promise<void> {
    if (this.queued !== null) return this.queued;
    const before = this.running ?? Promise.resolve();
    const queued = before
      .catch(() => {})
      .then(() => {
        this.queued = null;
        const running = this.take();
        this.running = running;
        return running.finally(() => {
          if (this.running === running) this.running = null;
        });
      });
    this.queued = queued;
    return queued;
  }

  private capturePools(): SnapshotPool[] {
    const engine = this.config.engine;
    // poolImage drops what expired by now, so a snapshot never holds it.
    return engine.poolIds().map((poolId) => ({ poolId, ...engine.poolImage(poolId) }));
  }

  private async take(): Promise<void> {
    const { files, dataDir, writer, logger } = this.config;
    const seq = writer.appliedSeq;
    if (seq === this.lastSnapshotSeq) return;
    const started = Date.now();
    const pools = this.capturePools(); // synchronous: one consistent point at `seq`
    const keys = this.config.keys.capture(seq);
    const walBytesAtCapture = writer.bytesWritten;
    const rotated = writer.requestRotation();
    const name = snapshotFileName(seq);
    const tmpPath = `${dataDir}/${name}.tmp`;
    let keysFile: string | undefined;
    try {
      await this.config.builder(tmpPath, seq, pools);
      // The keys go first: a snapshot on disk always has its keys beside it.
      if (keys.entries.length > 0 || keys.latestMs > 0) keysFile = await writeKeysFile(files, dataDir, { seq, ...keys });
      await files.rename(tmpPath, `${dataDir}/${name}`);
      await files.fsyncDir(dataDir);
    } catch (err) {
      await bestEffort(() => files.unlink(tmpPath));
      if (keysFile !== undefined) await bestEffort(() => files.unlink(`${dataDir}/${keysFile}`));
      this.lastSnapshotError = describeIoError(err);
      logger.error({ seq, err: this.lastSnapshotError }, 'snapshot: failed');
      await rotated;
      throw unavailable(`snapshot at seq ${seq} failed: ${this.lastSnapshotError}`);
    }
    this.lastSnapshotSeq = seq;
    this.lastSnapshotAt = Date.now();
    this.lastSnapshotMs = this.lastSnapshotAt - started;
    this.lastSnapshotError = null;
    this.walBytesAtSnapshot = walBytesAtCapture;
    this.lastSnapshotBytes = runArrayBytes(pools);
    this.snapshots = this.snapshots.filter((s) => s.name !== name);
    this.snapshots.push({ name, seq, keysFile });
    await rotated;
    await this.cleanup(seq);
    logger.info({ seq, pools: pools.length, ms: this.lastSnapshotMs }, 'snapshot: written');
  }

  /** Deletes older snapshots and every segment whose records are all <= `seq`. */
  private async cleanup(seq: number): Promise<void> {
    const { files, dataDir, writer, logger } = this.config;
    const doomed = writer.segments.coveredBy(seq);
    for (const snap of this.snapshots) {
      if (snap.seq < seq) doomed.push(snap.name);
      if (snap.seq < seq && snap.keysFile !== undefined) doomed.push(snap.keysFile);
    }
    let removed = 0;
    for (const name of doomed) {
      try {
        await files.unlink(`${dataDir}/${name}`);
        removed++;
      } catch (err) {
        if (ioErrorCode(err) !== 'ENOENT') {
          logger.warn({ file: name, err: describeIoError(err) }, 'snapshot: could not delete a covered file');
          continue;
        }
      }
      writer.segments.forget(name);
      this.snapshots = this.snapshots.filter((s) => s.name !== name);
    }
    if (removed > 0) {
      await files.fsyncDir(dataDir).catch((err: unknown) => {
        logger.warn({ err: describeIoError(err) }, 'snapshot: directory fsync after cleanup failed');
      });
    }
  }
}
