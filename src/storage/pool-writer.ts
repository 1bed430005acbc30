// What the layers above see of durability: every state change goes through a
// PoolWriter, which logs it, applies it to the engine in log order, and answers
// once the change is as durable as the --fsync setting promises.

import type { AppendOutcome } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

/** A value now, or later when the log commit it waits for completes. */
export type Awaitable<T> = T | Promise<T>;

export interface AppendOptions {
  /**
   * Idempotency key, 1–64 bytes of UTF-8. A retry with the same key and the
   * same pools and value counts gets the first outcome (marked `replayed`)
   * and appends nothing; the same key for a different change is refused with
   * IdempotencyConflictError. Keys are logged, so they survive restarts;
   * they are remembered for 24 hours (idempotencyWindowMs).
   */
  key?: string;
  /** When the change was accepted, ms since the epoch (an integer). Default: the store's clock. */
  atMs?: number;
}

/** An append's outcome; `replayed` when it is the answer to an earlier append with the same key. */
export interface AppendResult extends AppendOutcome {
  replayed?: true;
}

export interface AppendItem {
  poolId: number;
  run: SortedRun;
}

export interface PoolWriter {
  /**
   * Appends a sorted run to a pool. Under `always` the result arrives after the
   * record is fdatasync'ed (group commit) and the engine has applied it; under
   * `interval`/`never` it may be synchronous. Fails with PoolqError 'unavailable'
   * (disk full, I/O error, commit queue full, shutting down) and then nothing was applied.
   */
  append(poolId: number, run: SortedRun, options?: AppendOptions): Awaitable<AppendResult>;
  /**
   * Appends to several pools as one transaction: one group commit, one
   * answer, one outcome per item in order. After a crash either every item is
   * there or none. The key, if any, names the whole transaction.
   */
  appendAll(items: readonly AppendItem[], options?: AppendOptions): Awaitable<AppendResult[]>;
  /** Deletes a pool; resolves false if it did not exist when the delete was applied. */
  deletePool(poolId: number): Awaitable<boolean>;
  /**
   * Logs a pool's retention window in seconds (null or 0: keep everything) and
   * hands it to the engine (QuantileEngine.setRetention, when it has one).
   */
  setRetention(poolId: number, windowSeconds: number | null, options?: Pick<AppendOptions, 'atMs'>): Awaitable<void>;
}
