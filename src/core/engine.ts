// The engine interface: the only view of pools that the HTTP, storage and
// worker layers have. `createEngine({ kind })` (create-engine.ts) picks the
// kernels; everything else is shared (pool-store.ts).

import type { HistogramBin, RankCounts } from './distribution.js';
import type { EngineKind } from './kernels.js';
import type { QuantileMethod } from './methods.js';
import type { SortedRun } from './sorted-run.js';
import type { EncodingPolicy, StoredRun } from './stored-run.js';

export type { EngineKind } from './kernels.js';

export interface AppendOutcome {
  /** true when this append created the pool ("Inserted"), false when it existed ("Appended"). */
  created: boolean;
  /** Values in the pool after the append. */
  count: number;
}

/** When a change happened. */
export interface ChangeOptions {
  /**
   * When the change happened (values arrived, a window was set), in ms since
   * the epoch. The write-ahead log keeps it, so a replay files values under
   * the same time. Absent: now, by the engine's clock (also for a log written
   * before times were kept: such values count as arriving when replayed).
   */
  atMs?: number;
}

/** Details of an append besides its values. */
export type AppendRunOptions = ChangeOptions;

export interface PoolSummary {
  poolId: number;
  /** Values in the pool (in its window, if it has one). */
  count: number;
  /** NaN when the pool holds no value (every one left its window). */
  min: number;
  max: number;
  /** The pool's retention window, null when it keeps every value. */
  windowSeconds: number | null;
}

/** Percentiles with the number of values they were computed over (one moment: one set of values). */
export interface QuantileAnswer {
  /** NaN for each percentile when there is no value (an empty window). */
  quantiles: number[];
  count: number;
}

/** Everything a snapshot needs to rebuild a pool: its window and its buckets of runs. */
export interface PoolImage {
  windowSeconds: number | null;
  buckets: readonly BucketImage[];
}

export interface BucketImage {
  /** Arrival times of the bucket's values lie in [startMs, endMs). */
  startMs: number;
  endMs: number;
  runs: readonly StoredRun[];
}

/** A pool's histogram (distribution.ts): numpy.histogram over [min, max] of the pool or of the range asked for. */
export interface PoolHistogram {
  poolId: number;
  count: number;
  /** The pool's smallest and largest value. */
  min: number;
  max: number;
  bins: HistogramBin[];
  /** Values outside the range asked for (0 for the pool's own range): below + sum(bins) + above = count. */
  below: number;
  above: number;
}

/** Where a value sits in a pool: the empirical CDF at x is (below + equal) / count. */
export interface PoolRank extends RankCounts {
  poolId: number;
  count: number;
  fraction: number;
}

export interface PoolPage {
  pools: { poolId: number; count: number }[];
  /** poolId to pass as `after` for the next page, or null on the last page. */
  next: number | null;
}

export interface EngineStats {
  pools: number;
  values: number;
  runs: number;
  /** Runs stored as distinct values plus counts (the rest are plain). */
  countedRuns: number;
  /** Pools with a retention window. */
  windowedPools: number;
  /** Bytes the stored values would take as plain float64: 8 per value. */
  valueBytes: number;
  /** Bytes of the runs' arrays as stored (values, counts; a tail's spare capacity not counted); below valueBytes when values repeat. */
  runBytes: number;
  /** The kernels' own memory on this thread (WASM linear memory; 0 for the TS engine). */
  kernelMemoryBytes: number;
  mergesInFlight: number;
}

/**
 * Merges two runs somewhere else (a piscina worker, with run-merge.ts's
 * mergeRuns) and resolves with the merged run. Runs are immutable, so queries
 * keep reading the inputs meanwhile.
 */
export type MergeOffloader = (a: StoredRun, b: StoredRun, policy: EncodingPolicy) => Promise<StoredRun>;

/** Most pools one query may span (quantilesAcross). */
export const MAX_POOLS_PER_QUERY = 1000;

export interface QuantileEngine {
  readonly kind: EngineKind;

  /** Checks every value is finite (NaN/±Infinity → invalid_request naming the index), sorts in place. */
  sortBatch(values: Float64Array): SortedRun;
  /** Copies, validates and sorts `values`, then appends them to the pool (created if new). */
  appendValues(poolId: number, values: Float64Array): AppendOutcome;
  /**
   * Appends an already sorted run (no check). The engine may keep it as one of
   * its runs, so the caller never writes to it again. The change happens at
   * `options.atMs` (default now): replaying logged changes with their times
   * rebuilds the same buckets.
   */
  appendSortedRun(poolId: number, run: SortedRun, options?: AppendRunOptions): AppendOutcome;

  hasPool(poolId: number): boolean;
  /** Values in the pool, or undefined if it does not exist. */
  countOf(poolId: number): number | undefined;
  /** numpy.percentile(values, p, method) for each p; throws pool_not_found / invalid_request. */
  quantiles(poolId: number, percentiles: readonly number[], method?: QuantileMethod): number[];
  quantile(poolId: number, percentile: number, method?: QuantileMethod): number;
  /** quantiles() and the count they were computed over, at one moment (nothing expires in between). */
  quantilesWithCount(poolId: number, percentiles: readonly number[], method?: QuantileMethod): QuantileAnswer;
  /**
   * numpy.percentile over the union of the pools' values (each pool counted
   * once), by selection across all their runs: nothing is copied or merged.
   * At most MAX_POOLS_PER_QUERY pools; an unknown one → pool_not_found naming it.
   */
  quantilesAcross(poolIds: readonly number[], percentiles: readonly number[], method?: QuantileMethod): QuantileAnswer;
  /** count, min, max, window; throws pool_not_found. */
  summary(poolId: number): PoolSummary;
  /**
   * Sets (seconds) or removes (null) the pool's retention window at
   * `options.atMs` (default now), creating an empty pool if there is none.
   * Values held keep their arrival buckets (time-window.ts); what the old
   * window had let go by then is dropped first; removing the window keeps
   * every value still held.
   */
  setRetention(poolId: number, windowSeconds: number | null, options?: ChangeOptions): { created: boolean };
  /** The pool's window in seconds, or null; throws pool_not_found. */
  retentionOf(poolId: number): number | null;
  /** Drops every expired bucket of every windowed pool now (reads drop them anyway); returns the values dropped. */
  sweepExpired(): number;
  /**
   * `bins` equal-width bins over [min, max] (the pool's own extremes where not given),
   * counted from the sorted runs in place; throws pool_not_found / invalid_request.
   */
  histogram(poolId: number, bins: number, range?: { min?: number; max?: number }): PoolHistogram;
  /** Values below and equal to `value` (finite), counted from the sorted runs in place; throws pool_not_found / invalid_request. */
  rank(poolId: number, value: number): PoolRank;
  /** true if the pool existed. */
  deletePool(poolId: number): boolean;
  /** Pools in ascending poolId order, strictly after `after` (null: from the start). */
  listPools(after: number | null, limit: number): PoolPage;

  /** The pool's values as plain immutable runs (seals the pool's tail; counted runs come back expanded); throws pool_not_found. */
  runsOf(poolId: number): readonly SortedRun[];
  /** The pool's window and buckets of runs, as stored (for snapshots; seals the tail); throws pool_not_found. */
  poolImage(poolId: number): PoolImage;
  /** Replaces (or creates) a pool from an image; the engine owns its runs from now on. Expired buckets leave at the next read. */
  restorePool(poolId: number, image: PoolImage): void;
  /** Lengths of the pool's runs, a tail last, without changing anything (benchmarks, diagnostics); throws pool_not_found. */
  runLengths(poolId: number): number[];
  /** All of the pool's values as one sorted run (a new array). */
  exportSorted(poolId: number): SortedRun;
  /** Replaces (or creates) a pool without a window from plain runs, which the engine now owns (their values count as arriving now). */
  replacePool(poolId: number, runs: readonly SortedRun[]): void;
  /** Every pool id, ascending. */
  poolIds(): readonly number[];
  stats(): EngineStats;

  /** Large merges (>= minValues combined) go to `offloader`; null merges everything inline. */
  setMergeOffloader(offloader: MergeOffloader | null, minValues?: number): void;
  /** Resolves when no offloaded merge is in flight (tests, shutdown). */
  whenMergesSettled(): Promise<void>;
}
