// What the HTTP layer sees of durability: every state change goes through a
// PoolWriter, which logs it, applies it to the engine in log order, and answers
// once the change is as durable as the --fsync setting promises.

import type { AppendOutcome } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

/** A value now, or later when the log commit it waits for completes. */
export type Awaitable<T> = T | Promise<T>;

export interface PoolWriter {
  /**
   * Appends a sorted run to a pool. Under `always` the result arrives after the
   * record is fdatasync'ed (group commit) and the engine has applied it; under
   * `interval`/`never` it may be synchronous. Fails with PoolqError 'unavailable'
   * (disk full, I/O error, commit queue full, shutting down) and then nothing was applied.
   */
  append(poolId: number, run: SortedRun): Awaitable<AppendOutcome>;
  /** Deletes a pool; resolves false if it did not exist when the delete was applied. */
  deletePool(poolId: number): Awaitable<boolean>;
}
