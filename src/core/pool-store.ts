// PoolStore: the pools themselves, shared by both engines, which differ only in
// their Kernels (sort, merge, quantile arithmetic).
//
// A pool is a list of arrival-time buckets (time-window.ts; one bucket for a
// pool without a window), each a list of immutable sorted runs (LSM style),
// stored plain or counted, whichever is smaller (stored-run.ts). An append
// sorts its batch into a new run of the newest bucket; runs of a bucket merge
// by the policy of run-compactor.ts (O(log n) runs per bucket), and a bucket
// that stops taking values is merged into one run. A query
// selects the order statistics it needs across the runs (select-rank.ts) and
// never sorts the pool. Results are cached per pool until the pool changes or
// a bucket expires. Merges of MergeOffloader-size go to a worker; the inputs
// stay readable until the merged run is swapped in. Small appends go to the
// pool's tail (pool.ts).

import type {
  AppendRunOptions,
  ChangeOptions,
  AppendOutcome,
  EngineStats,
  MergeOffloader,
  PoolImage,
  PoolHistogram,
  PoolPage,
  PoolRank,
  PoolSummary,
  QuantileAnswer,
  QuantileEngine,
} from './engine.js';
import { MAX_POOLS_PER_QUERY } from './engine.js';
import { histogramOf, rankCounts } from './distribution.js';
import { invalidOption, invalidRequest, nonFiniteValue, poolNotFound } from './errors.js';
import type { EngineKind, Kernels } from './kernels.js';
import type { QuantileMethod } from './methods.js';
import { Bucket, Pool } from './pool.js';
import { checkPercentiles, methodIdOf, quantileOfRuns } from './quantile-of-runs.js';
import { DEFAULT_OFFLOAD_MIN_VALUES, RunCompactor } from './run-compactor.js';
import { extremes } from './select-rank.js';
import { allocateRun, trustSorted, type SortedRun } from './sorted-run.js';
import { encodeSorted, encodingOf, expandRun, runBytes, type EncodingPolicy, type RankedRun } from './stored-run.js';
import { bucketStartMs, bucketWidthMs, isValidWindowSeconds, systemClock, windowRuleText, type Clock } from './time-window.js';

/** Which appends go through a pool's tail. */
export interface TailPolicy {
  /** Batches up to this many values merge into the tail instead of becoming runs (0: no tail). */
  appendMaxValues: number;
  /** A tail is sealed into a run once the next batch would take it past this. */
  maxValues: number;
}

/**
 * 512 values (4 KiB): merging a 10-value batch moves about half the tail
 * (~1 µs with 1000 pools' tails out of cache; 1024 measured 1.5 µs), and the
 * merge policy above it runs once per ~50 such appends.
 */
export const DEFAULT_TAIL: TailPolicy = { appendMaxValues: 128, maxValues: 512 };

export interface PoolStoreOptions {
  /** How small appends go through each pool's tail (default DEFAULT_TAIL). */
  tail?: TailPolicy;
  /** Run encodings: 'auto' (the smaller per run, the default) or one forced (tests, benchmarks). */
  encoding?: EncodingPolicy;
  /** Time for arrival buckets and windows (default Date.now). */
  clock?: Clock;
  /** Told the bytes of run buffers the engine lets go (merge inputs, expired or deleted pools): a GC pacer's cue. */
  onRelease?: (bytes: number) => void;
}

export class PoolStore implements QuantileEngine {
  readonly kind: EngineKind;
  private readonly kernels: Kernels;
  private readonly pools = new Map<number, Pool>();
  private readonly windowed = new Set<number>();
  private sortedIds: number[] | null = [];
  private totalValues = 0;
  private readonly compactor: RunCompactor;
  private readonly tail: TailPolicy;
  private readonly encoding: EncodingPolicy;
  private readonly clock: Clock;
  private readonly onRelease: (bytes: number) => void;

  constructor(kernels: Kernels, options: PoolStoreOptions = {}) {
    const tail = options.tail ?? DEFAULT_TAIL;
    if (!(
      Number.isSafeInteger(tail.appendMaxValues) &&
      Number.isSafeInteger(tail.maxValues) &&
      tail.appendMaxValues >= 0 &&
      tail.maxValues >= tail.appendMaxValues
    )) {
      throw invalidOption('tail', 'integers 0 <= appendMaxValues <= maxValues', JSON.stringify(tail));
    }
    const encoding = options.encoding ?? 'auto';
    if (encoding !== 'auto' && encoding !== 'plain' && encoding !== 'counted')
      throw invalidOption('encoding', "'auto', 'plain' or 'counted'", encoding);
    this.kernels = kernels;
    this.kind = kernels.kind;
    this.tail = tail;
    this.encoding = encoding;
    this.clock = options.clock ?? systemClock;
    this.onRelease = options.onRelease ?? (() => {});
    this.compactor = new RunCompactor(kernels, encoding, (bytes) => this.released(bytes));
  }

  sortBatch(values: Float64Array): SortedRun {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v - v !== 0) throw nonFiniteValue(i, v); // NaN and ±Infinity
    }
    return this.kernels.sortInPlace(values);
  }

  appendValues(poolId: number, values: Float64Array): AppendOutcome {
    if (values.length === 0) throw invalidRequest('poolValues', 'poolValues must not be empty.');
    const copy = allocateRun(values.length);
    copy.set(values);
    return this.appendSortedRun(poolId, this.sortBatch(copy));
  }

  appendSortedRun(poolId: number, run: SortedRun, options?: AppendRunOptions): AppendOutcome {
    if (run.length === 0) throw invalidRequest('poolValues', 'poolValues must not be empty.');
    // A change happens at its own time, the logged one on replay: so replaying
    // the log rebuilds exactly the buckets the live changes built.
    const atMs = options?.atMs ?? this.clock();
    if (!Number.isFinite(atMs)) throw invalidOption('atMs', 'a finite time in ms', atMs);
    let pool = this.pools.get(poolId);
    const created = pool === undefined;
    if (pool === undefined) pool = this.createPool(poolId);
    else this.expire(pool, atMs);
    const bucket = this.bucketFor(poolId, pool, atMs);
    bucket.count += run.length;
    pool.count += run.length;
    this.totalValues += run.length;
    pool.forgetAnswers();
    const { appendMaxValues, maxValues } = this.tail;
    if (run.length <= appendMaxValues && pool.appendToTail(run, maxValues)) return { created, count: pool.count };
    if (run.length <= appendMaxValues) {
      this.released(pool.sealTail(this.encoding)); // full: it becomes a run and the batch starts a new tail
      pool.appendToTail(run, maxValues);
    } else {
      bucket.runs.push(encodeSorted(run, this.encoding));
    }
    pool.changed();
    this.compact(poolId, pool, bucket);
    return { created, count: pool.count };
  }

  hasPool(poolId: number): boolean {
    return this.pools.has(poolId);
  }

  countOf(poolId: number): number | undefined {
    const pool = this.pools.get(poolId);
    if (pool === undefined) return undefined;
    this.expire(pool, this.clock());
    return pool.count;
  }

  quantile(poolId: number, percentile: number, method: QuantileMethod = 'linear'): number {
    return this.quantilesWithCount(poolId, [percentile], method).quantiles[0];
  }

  quantiles(poolId: number, percentiles: readonly number[], method: QuantileMethod = 'linear'): number[] {
    return this.quantilesWithCount(poolId, percentiles, method).quantiles;
  }

  quantilesWithCount(poolId: number, percentiles: readonly number[], method: QuantileMethod = 'linear'): QuantileAnswer {
    const pool = this.requirePool(poolId);
    const methodId = methodIdOf(method);
    checkPercentiles(percentiles);
    this.expire(pool, this.clock());
    const out = new Array<number>(percentiles.length);
    for (let i = 0; i < percentiles.length; i++) {
      const p = percentiles[i];
      let value = pool.cachedAnswer(methodId, p);
      if (value === undefined) {
        value = pool.count === 0 ? Number.NaN : quantileOfRuns(this.kernels, pool.allRuns(), pool.count, p, methodId);
        pool.rememberAnswer(methodId, p, value);
      }
      out[i] = value;
    }
    return { quantiles: out, count: pool.count };
  }

  quantilesAcross(poolIds: readonly number[], percentiles: readonly number[], method: QuantileMethod = 'linear'): QuantileAnswer {
    if (poolIds.length === 0 || poolIds.length > MAX_POOLS_PER_QUERY) {
      throw invalidRequest('poolIds', `poolIds must list between 1 and ${MAX_POOLS_PER_QUERY} pools, got ${poolIds.length}.`);
    }
    const methodId = methodIdOf(method);
    checkPercentiles(percentiles);
    const now = this.clock();
    const seen = new Set<number>();
    const runs: RankedRun[] = [];
    let count = 0;
    for (const poolId of poolIds) {
      if (seen.has(poolId)) continue;
      seen.add(poolId);
      const pool = this.requirePool(poolId);
      this.expire(pool, now);
      for (const run of pool.allRuns()) runs.push(run);
      count += pool.count;
    }
    const quantiles = percentiles.map((p) => (count === 0 ? Number.NaN : quantileOfRuns(this.kernels, runs, count, p, methodId)));
    return { quantiles, count };
  }

  summary(poolId: number): PoolSummary {
    const pool = this.requirePool(poolId);
    this.expire(pool, this.clock());
    const windowSeconds = pool.windowMs === null ? null : pool.windowMs / 1000;
    if (pool.count === 0) return { poolId, count: 0, min: Number.NaN, max: Number.NaN, windowSeconds };
    const { min, max } = extremes(pool.allRuns());
    return { poolId, count: pool.count, min, max, windowSeconds };
  }

  setRetention(poolId: number, windowSeconds: number | null, options?: ChangeOptions): { created: boolean } {
    if (windowSeconds !== null && !isValidWindowSeconds(windowSeconds)) {
      throw invalidRequest('windowSeconds', `${windowRuleText()}, got ${String(windowSeconds)}.`);
    }
    const atMs = options?.atMs ?? this.clock();
    if (!Number.isFinite(atMs)) throw invalidOption('atMs', 'a finite time in ms', atMs);
    let pool = this.pools.get(poolId);
    const created = pool === undefined;
    if (pool === undefined) pool = this.createPool(poolId);
    // What the old window let go by now is gone, whether or not anyone looked (expiry is otherwise lazy).
    this.expire(pool, atMs);
    if (windowSeconds === null) {
      pool.windowMs = null;
      this.windowed.delete(poolId);
      this.coalesceBuckets(poolId, pool);
    } else {
      pool.windowMs = windowSeconds * 1000;
      this.windowed.add(poolId);
      this.expire(pool, atMs);
    }
    pool.forgetAnswers();
    return { created };
  }

  retentionOf(poolId: number): number | null {
    const windowMs = this.requirePool(poolId).windowMs;
    return windowMs === null ? null : windowMs / 1000;
  }

  sweepExpired(): number {
    const now = this.clock();
    let dropped = 0;
    for (const poolId of this.windowed) dropped += this.expire(this.pools.get(poolId)!, now);
    return dropped;
  }

  histogram(poolId: number, bins: number, range: { min?: number; max?: number } = {}): PoolHistogram {
    const pool = this.requirePool(poolId);
    this.expire(pool, this.clock());
    const runs = pool.allRuns();
    if (pool.count === 0 && (range.min === undefined || range.max === undefined)) {
      // An emptied window: no values, and no range of their own to cut into bins.
      return { poolId, count: 0, min: Number.NaN, max: Number.NaN, bins: [], below: 0, above: 0 };
    }
    const { min, max } = pool.count === 0 ? { min: Number.NaN, max: Number.NaN } : extremes(runs);
    const counts = histogramOf(runs, bins, range.min ?? min, range.max ?? max);
    return { poolId, count: pool.count, min, max, ...counts };
  }

  rank(poolId: number, value: number): PoolRank {
    const pool = this.requirePool(poolId);
    if (!Number.isFinite(value)) throw invalidRequest('value', `value must be a finite number, got ${value}.`);
    this.expire(pool, this.clock());
    const { below, equal } = rankCounts(pool.allRuns(), value);
    return { poolId, count: pool.count, below, equal, fraction: (below + equal) / pool.count };
  }

  deletePool(poolId: number): boolean {
    const pool = this.pools.get(poolId);
    if (pool === undefined) return false;
    this.pools.delete(poolId);
    this.windowed.delete(poolId);
    this.totalValues -= pool.count;
    this.sortedIds = null;
    this.released(pool.bytes());
    return true;
  }

  listPools(after: number | null, limit: number): PoolPage {
    const ids = this.poolIds();
    let start = 0;
    if (after !== null) {
      let lo = 0;
      let hi = ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ids[mid] <= after) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const slice = ids.slice(start, start + limit);
    const now = this.clock();
    const pools = slice.map((poolId) => {
      const pool = this.pools.get(poolId)!;
      this.expire(pool, now);
      return { poolId, count: pool.count };
    });
    const next = start + limit < ids.length && slice.length > 0 ? slice[slice.length - 1] : null;
    return { pools, next };
  }

  runsOf(poolId: number): readonly SortedRun[] {
    const image = this.poolImage(poolId);
    const runs: SortedRun[] = [];
    for (const bucket of image.buckets) for (const run of bucket.runs) runs.push(expandRun(run));
    return runs;
  }

  poolImage(poolId: number): PoolImage {
    const pool = this.requirePool(poolId);
    this.expire(pool, this.clock());
    if (pool.tail !== null) {
      // Callers may hold the runs across turns (snapshots): no mutable tail escapes.
      this.released(pool.sealTail(this.encoding));
      pool.changed();
      this.compact(poolId, pool, pool.newestBucket()!); // or frequent callers would pile up sealed small runs
    }
    return {
      windowSeconds: pool.windowMs === null ? null : pool.windowMs / 1000,
      buckets: pool.buckets.map((bucket) => ({ startMs: bucket.startMs, endMs: bucket.endMs, runs: bucket.runs.slice() })),
    };
  }

  restorePool(poolId: number, image: PoolImage): void {
    const windowSeconds = image.windowSeconds;
    if (windowSeconds !== null && !isValidWindowSeconds(windowSeconds))
      throw invalidOption('windowSeconds', windowRuleText('a window'), windowSeconds);
    this.deletePool(poolId);
    const pool = this.createPool(poolId);
    pool.windowMs = windowSeconds === null ? null : windowSeconds * 1000;
    if (windowSeconds !== null) this.windowed.add(poolId);
    for (const saved of image.buckets) {
      const runs = saved.runs.filter((run) => run.count > 0);
      if (runs.length === 0) continue;
      const bucket = new Bucket(saved.startMs, saved.endMs);
      bucket.runs = runs.slice();
      for (const run of runs) bucket.count += run.count;
      pool.buckets.push(bucket);
      pool.count += bucket.count;
      this.totalValues += bucket.count;
    }
    pool.changed();
    // Nothing expires here: a replayed change after the snapshot (removing the
    // window) may keep what a read at this moment would drop. Reads drop it.
    for (const bucket of pool.buckets.slice()) this.compact(poolId, pool, bucket);
  }

  runLengths(poolId: number): number[] {
    const pool = this.requirePool(poolId);
    this.expire(pool, this.clock());
    return pool.allRuns().map((run) => run.count);
  }

  exportSorted(poolId: number): SortedRun {
    const pool = this.requirePool(poolId);
    this.expire(pool, this.clock());
    const runs = pool.allRuns();
    if (runs.length === 0) return trustSorted(new Float64Array(0));
    let merged = expandRun(runs[0]);
    if (merged === runs[0].values) merged = trustSorted(Float64Array.from(merged));
    for (let i = 1; i < runs.length; i++) {
      const next = expandRun(runs[i]);
      const out = allocateRun(merged.length + next.length);
      this.kernels.mergeInto(merged, next, out);
      merged = trustSorted(out);
    }
    return merged;
  }

  replacePool(poolId: number, runs: readonly SortedRun[]): void {
    const now = this.clock();
    const kept = runs.filter((run) => run.length > 0).sort((a, b) => b.length - a.length);
    this.restorePool(poolId, {
      windowSeconds: null,
      buckets: kept.length === 0 ? [] : [{ startMs: now, endMs: now + 1, runs: kept.map((run) => encodeSorted(run, this.encoding)) }],
    });
  }

  poolIds(): readonly number[] {
    if (this.sortedIds === null) this.sortedIds = [...this.pools.keys()].sort((a, b) => a - b);
    return this.sortedIds;
  }

  stats(): EngineStats {
    this.sweepExpired();
    let runs = 0;
    let countedRuns = 0;
    let runBytesTotal = 0;
    for (const pool of this.pools.values()) {
      for (const bucket of pool.buckets) {
        for (const run of bucket.runs) {
          runs++;
          if (encodingOf(run) === 'counted') countedRuns++;
          runBytesTotal += runBytes(run);
        }
      }
      if (pool.tailLength > 0) {
        runs++;
        runBytesTotal += pool.tailLength * 8;
      }
    }
    return {
      pools: this.pools.size,
      values: this.totalValues,
      runs,
      countedRuns,
      windowedPools: this.windowed.size,
      valueBytes: this.totalValues * 8,
      runBytes: runBytesTotal,
      kernelMemoryBytes: this.kernels.memoryBytes(),
      mergesInFlight: this.compactor.mergesInFlight,
    };
  }

  setMergeOffloader(offloader: MergeOffloader | null, minValues = DEFAULT_OFFLOAD_MIN_VALUES): void {
    this.compactor.setOffloader(offloader, minValues);
  }

  async whenMergesSettled(): Promise<void> {
    await this.compactor.whenSettled();
  }

  private requirePool(poolId: number): Pool {
    const pool = this.pools.get(poolId);
    if (pool === undefined) throw poolNotFound(poolId);
    return pool;
  }

  private createPool(poolId: number): Pool {
    const pool = new Pool(this.kernels);
    this.pools.set(poolId, pool);
    this.sortedIds = null;
    return pool;
  }

  private released(bytes: number): void {
    if (bytes > 0) this.onRelease(bytes);
  }

  /** Drops the pool's expired buckets at `now`; returns the values dropped. */
  private expire(pool: Pool, now: number): number {
    if (pool.windowMs === null) return 0;
    const { values, bytes } = pool.expire(now);
    this.totalValues -= values;
    this.released(bytes);
    return values;
  }

  /** The bucket a value arriving at `atMs` joins: the newest one, or a new one after closing it. */
  private bucketFor(poolId: number, pool: Pool, atMs: number): Bucket {
    const newest = pool.newestBucket();
    if (pool.windowMs === null) {
      if (newest === undefined) {
        const bucket = new Bucket(atMs, atMs + 1);
        pool.buckets.push(bucket);
        return bucket;
      }
      newest.startMs = Math.min(newest.startMs, atMs);
      newest.endMs = Math.max(newest.endMs, atMs + 1);
      return newest;
    }
    // A value older than the newest bucket's end (a clock step back, a replay) joins it.
    if (newest !== undefined && atMs < newest.endMs) {
      newest.startMs = Math.min(newest.startMs, atMs);
      return newest;
    }
    const width = bucketWidthMs(pool.windowMs);
    const start = bucketStartMs(atMs, width);
    if (newest !== undefined) this.closeBucket(poolId, pool, newest);
    const bucket = new Bucket(start, start + width);
    pool.buckets.push(bucket);
    pool.changed();
    return bucket;
  }

  /** The newest bucket stops taking values: its tail becomes a run and its runs merge into one. */
  private closeBucket(poolId: number, pool: Pool, bucket: Bucket): void {
    this.released(pool.sealTail(this.encoding));
    pool.changed();
    this.compact(poolId, pool, bucket, true);
  }

  /** A pool that loses its window keeps one bucket spanning every arrival time. */
  private coalesceBuckets(poolId: number, pool: Pool): void {
    if (pool.buckets.length <= 1) return;
    const all = new Bucket(Infinity, -Infinity);
    for (const bucket of pool.buckets) {
      all.startMs = Math.min(all.startMs, bucket.startMs);
      all.endMs = Math.max(all.endMs, bucket.endMs);
      all.runs.push(...bucket.runs);
      all.count += bucket.count;
    }
    pool.buckets = [all];
    pool.changed();
    this.compact(poolId, pool, all);
  }

  /** The merge policy over one bucket (run-compactor.ts). */
  private compact(poolId: number, pool: Pool, bucket: Bucket, closed?: boolean): void {
    this.compactor.compact(() => this.pools.get(poolId) === pool, pool, bucket, closed);
  }
}
