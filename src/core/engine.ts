// The engine interface: the only view of pools that the HTTP, storage and
// worker layers have. `createEngine({ kind })` (create-engine.ts) picks the
// kernels; everything else is shared (pool-store.ts).

import type { EngineKind } from './kernels.js';
import type { QuantileMethod } from './methods.js';
import type { SortedRun } from './sorted-run.js';

export type { EngineKind } from './kernels.js';

export interface AppendOutcome {
  /** true when this append created the pool ("Inserted"), false when it existed ("Appended"). */
  created: boolean;
  /** Values in the pool after the append. */
  count: number;
}

/** Details of an append besides its values. */
export interface AppendRunOptions {
  /** When the append was accepted, ms since the epoch (absent: not known, e.g. a log written before times were kept). */
  atMs?: number;
}

export interface PoolSummary {
  poolId: number;
  count: number;
  min: number;
  max: number;
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
  /** Bytes held by run storage (8 per value plus typed-array headers are not counted). */
  valueBytes: number;
  mergesInFlight: number;
}

/**
 * Merges two sorted runs somewhere else (a piscina worker) and resolves with the
 * merged run. Runs are immutable, so queries keep reading the inputs meanwhile.
 */
export type MergeOffloader = (a: SortedRun, b: SortedRun) => Promise<SortedRun>;

export interface QuantileEngine {
  readonly kind: EngineKind;

  /** Checks every value is finite (NaN/±Infinity → invalid_request naming the index), sorts in place. */
  sortBatch(values: Float64Array): SortedRun;
  /** Copies, validates and sorts `values`, then appends them to the pool (created if new). */
  appendValues(poolId: number, values: Float64Array): AppendOutcome;
  /** Appends an already sorted run (no check). The engine may keep it as one of its runs, so the caller never writes to it again. */
  appendSortedRun(poolId: number, run: SortedRun, options?: AppendRunOptions): AppendOutcome;
  /** Keeps only the values appended within the last `windowSeconds` (null: all of them). Engines without windows leave it out. */
  setRetention?(poolId: number, windowSeconds: number | null): void;

  hasPool(poolId: number): boolean;
  /** Values in the pool, or undefined if it does not exist. */
  countOf(poolId: number): number | undefined;
  /** numpy.percentile(values, p, method) for each p; throws pool_not_found / invalid_request. */
  quantiles(poolId: number, percentiles: readonly number[], method?: QuantileMethod): number[];
  quantile(poolId: number, percentile: number, method?: QuantileMethod): number;
  /** count, min, max; throws pool_not_found. */
  summary(poolId: number): PoolSummary;
  /** true if the pool existed. */
  deletePool(poolId: number): boolean;
  /** Pools in ascending poolId order, strictly after `after` (null: from the start). */
  listPools(after: number | null, limit: number): PoolPage;

  /** The pool's current immutable runs (for snapshots; seals the pool's tail into a run); throws pool_not_found. */
  runsOf(poolId: number): readonly SortedRun[];
  /** Lengths of the pool's runs, a tail last, without changing anything (benchmarks, diagnostics); throws pool_not_found. */
  runLengths(poolId: number): number[];
  /** All of the pool's values as one sorted run (a new array). */
  exportSorted(poolId: number): SortedRun;
  /** Replaces (or creates) a pool with the given runs, which the engine now owns. */
  replacePool(poolId: number, runs: readonly SortedRun[]): void;
  /** Every pool id, ascending. */
  poolIds(): readonly number[];
  stats(): EngineStats;

  /** Large merges (>= minValues combined) go to `offloader`; null merges everything inline. */
  setMergeOffloader(offloader: MergeOffloader | null, minValues?: number): void;
  /** Resolves when no offloaded merge is in flight (tests, shutdown). */
  whenMergesSettled(): Promise<void>;
}
