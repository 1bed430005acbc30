// PoolStore: the pools themselves, shared by both engines, which differ only in
// their Kernels (sort, merge, quantile arithmetic).
//
// A pool is a list of immutable sorted runs (LSM style). An append sorts its
// batch into a new run; adjacent runs merge while the older one is at most
// MERGE_RATIO times the newer one, so a pool of n values has O(log n) runs and
// each value is merged O(log n) times. A query selects the order statistics it
// needs across the runs (select-rank.ts) and never sorts the pool. Results are
// cached per pool until the pool changes. Merges of MergeOffloader-size go to a
// worker; the inputs stay readable until the merged run is swapped in.
//
// Small appends do not make runs of their own: they go into the pool's tail,
// one mutable buffer of at most DEFAULT_TAIL.maxValues values that is sealed
// into an ordinary immutable run when full (or when someone outside the engine
// asks for the runs, e.g. a snapshot). Before the tail, every 10-value append
// allocated ~2 typed arrays (its run and merge outputs), and allocation + GC +
// merge calls were ~25 % of the server's CPU on 10-value appends (bench:http
// --cpu-prof). The tail is settled lazily: an append copies its sorted batch
// behind the tail's sorted part, and the first reader after it (a query, a
// seal) merges the pending batches in. Merging every batch on append was the
// largest JS frame of an append (6.6 % of the server's CPU, perf, 10-value
// appends into 1000 pools); a query after each append pays the same merge as
// before. Only the event loop ever touches a tail: offloaded merges and
// snapshots see sealed runs only.

import type {
  AppendOutcome,
  EngineStats,
  MergeOffloader,
  PoolHistogram,
  PoolPage,
  PoolRank,
  PoolSummary,
  QuantileEngine,
} from './engine.js';
import { histogramOf, rankCounts } from './distribution.js';
import { invalidOption, invalidRequest, nonFiniteValue, poolNotFound } from './errors.js';
import type { EngineKind, Kernels, QuantilePlan } from './kernels.js';
import { isQuantileMethod, METHOD_ID, type QuantileMethod } from './methods.js';
import { extremes, nextRankValue, selectRank } from './select-rank.js';
import { allocateRun, totalLess, trustSorted, type SortedRun } from './sorted-run.js';

/** Merge runs i, i+1 while runs[i].length <= MERGE_RATIO * runs[i+1].length. */
const MERGE_RATIO = 2;
const QUERY_CACHE_LIMIT = 64;
const DEFAULT_OFFLOAD_MIN_VALUES = 1 << 20;
const TAIL_MIN_CAPACITY = 16;

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

/** Whether `values` is in the engine's order (totalLess: -0 before +0; NaN never occurs). */
function isSorted(values: Float64Array): boolean {
  for (let i = 1; i < values.length; i++) if (totalLess(values[i], values[i - 1])) return false;
  return true;
}

/** One reusable buffer for settleTail's pending copy (the event loop is the only caller). */
let scratch = new Float64Array(DEFAULT_TAIL.maxValues);
function scratchFor(length: number): Float64Array {
  if (scratch.length < length) scratch = new Float64Array(length);
  return scratch;
}

class Pool {
  /** Sealed, immutable runs (oldest first). */
  runs: SortedRun[] = [];
  /**
   * The mutable tail, null when there is none: values [0, tailSorted) sorted,
   * then [tailSorted, tailLength) appended batches (each sorted) not yet
   * merged in. settleTail() makes all of [0, tailLength) sorted.
   */
  tail: Float64Array | null = null;
  tailLength = 0;
  tailSorted = 0;
  /** runs plus a view of the settled tail, for readers on the event loop; null = rebuild. */
  private view: SortedRun[] | null = null;
  count = 0;
  /** Runs promised to an in-flight offloaded merge. */
  readonly merging = new Set<SortedRun>();

  constructor(private readonly kernels: Kernels) {}

  /** Every value as sorted runs, for synchronous readers only (the tail view changes with the next append). */
  allRuns(): readonly SortedRun[] {
    if (this.tailLength === 0) return this.runs;
    if (this.view === null) {
      this.settleTail();
      this.view = [...this.runs, trustSorted(this.tail!.subarray(0, this.tailLength))];
    }
    return this.view;
  }

  /** Call after any change to runs or the tail. */
  changed(): void {
    this.view = null;
  }

  /** Turns the tail into an immutable run (no copy: the buffer is never written again). */
  sealTail(): void {
    if (this.tail === null) return;
    this.settleTail();
    if (this.tailLength > 0) this.runs.push(trustSorted(this.tail.subarray(0, this.tailLength)));
    this.tail = null;
    this.tailLength = 0;
    this.tailSorted = 0;
    this.view = null;
  }

  /** Copies the sorted `run` behind the tail, unmerged; false if it would grow past `maxValues`. */
  appendToTail(run: SortedRun, maxValues: number): boolean {
    const n = this.tailLength;
    const need = n + run.length;
    if (need > maxValues) return false;
    let tail = this.tail;
    if (tail === null || need > tail.length) {
      let capacity = Math.max(TAIL_MIN_CAPACITY, tail === null ? 0 : tail.length);
      while (capacity < need) capacity *= 2;
      const grown = new Float64Array(Math.min(capacity, maxValues));
      if (tail !== null) grown.set(tail.subarray(0, n));
      this.tail = tail = grown;
    }
    tail.set(run, n);
    this.tailLength = need;
    this.view = null;
    return true;
  }

  /** Merges the tail's pending batches into its sorted part. */
  private settleTail(): void {
    const tail = this.tail;
    const n = this.tailSorted;
    const end = this.tailLength;
    if (tail === null || n === end) return;
    // The pending part is one sorted batch (a query after each append) or
    // several (appends only): sort it unless it already is. Then merge it into
    // [0, n) from the back, reading it from a scratch copy, since the merge
    // writes over the pending part's own slots before it has read them.
    let pending = tail.subarray(n, end);
    if (!isSorted(pending)) pending = this.kernels.sortInPlace(pending);
    if (n === 0) {
      this.tailSorted = end;
      return;
    }
    const m = end - n;
    const run = scratchFor(m);
    run.set(pending);
    // Ties keep the sorted part's value first (the same multiset either way);
    // -0 sorts before +0 (1/x tells them apart). A plain loop: for 10-value
    // batches into 512-value tails it was as fast as m binary searches + m
    // copyWithin calls (1.0 vs 0.9–1.4 µs), and 3× faster for 100-value batches.
    let i = n - 1;
    let j = m - 1;
    let k = end - 1;
    let x = run[j];
    while (j >= 0) {
      if (i >= 0) {
        const y = tail[i];
        if (x < y || (x === y && x === 0 && 1 / x < 0 && 1 / y > 0)) {
          tail[k--] = y;
          i--;
          continue;
        }
      }
      tail[k--] = x;
      x = run[--j];
    }
    this.tailSorted = end;
  }

  /**
   * Answers since the last change: (method id, percentile) → value, scanned
   * linearly (a pool is asked few distinct percentiles; at most
   * QUERY_CACHE_LIMIT). -0 and 0 match, as they are one answer. A Map keyed by
   * the string `${method}:${p}` cost a number-to-string, a concat and a hash
   * per query, and Maps keyed by the number still showed as ~4 % of the
   * server's CPU on bench:http queries (perf: hash-map lookups); forgetting is
   * setting the count to 0, with no allocation.
   */
  private answerKeys: number[] | null = null;
  private answerValues: number[] | null = null;
  private cachedAnswers = 0;

  cachedAnswer(methodId: number, p: number): number | undefined {
    const keys = this.answerKeys;
    for (let i = 0; i < this.cachedAnswers; i++) {
      if (keys![2 * i] === p && keys![2 * i + 1] === methodId) return this.answerValues![i];
    }
    return undefined;
  }

  rememberAnswer(methodId: number, p: number, value: number): void {
    if (this.cachedAnswers >= QUERY_CACHE_LIMIT) this.cachedAnswers = 0;
    const i = this.cachedAnswers++;
    this.answerKeys ??= [];
    this.answerValues ??= [];
    this.answerKeys[2 * i] = p;
    this.answerKeys[2 * i + 1] = methodId;
    this.answerValues[i] = value;
  }

  forgetAnswers(): void {
    this.cachedAnswers = 0;
  }
}

export class PoolStore implements QuantileEngine {
  readonly kind: EngineKind;
  private readonly kernels: Kernels;
  private readonly pools = new Map<number, Pool>();
  private sortedIds: number[] | null = [];
  private totalValues = 0;
  private offloader: MergeOffloader | null = null;
  private offloadMinValues = DEFAULT_OFFLOAD_MIN_VALUES;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly plan: QuantilePlan = { lo: 0, hi: 0, gamma: 0, take: false };
  private readonly tail: TailPolicy;

  constructor(kernels: Kernels, tail: TailPolicy = DEFAULT_TAIL) {
    if (!(
      Number.isSafeInteger(tail.appendMaxValues) &&
      Number.isSafeInteger(tail.maxValues) &&
      tail.appendMaxValues >= 0 &&
      tail.maxValues >= tail.appendMaxValues
    )) {
      throw invalidOption('tail', 'integers 0 <= appendMaxValues <= maxValues', JSON.stringify(tail));
    }
    this.kernels = kernels;
    this.kind = kernels.kind;
    this.tail = tail;
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

  appendSortedRun(poolId: number, run: SortedRun): AppendOutcome {
    if (run.length === 0) throw invalidRequest('poolValues', 'poolValues must not be empty.');
    let pool = this.pools.get(poolId);
    const created = pool === undefined;
    if (pool === undefined) {
      pool = new Pool(this.kernels);
      this.pools.set(poolId, pool);
      this.sortedIds = null;
    }
    pool.count += run.length;
    this.totalValues += run.length;
    pool.forgetAnswers();
    const { appendMaxValues, maxValues } = this.tail;
    if (run.length <= appendMaxValues && pool.appendToTail(run, maxValues)) return { created, count: pool.count };
    if (run.length <= appendMaxValues) {
      pool.sealTail(); // full: it becomes a run and the batch starts a new tail
      pool.appendToTail(run, maxValues);
    } else {
      pool.runs.push(run);
    }
    pool.changed();
    this.compact(poolId, pool);
    return { created, count: pool.count };
  }

  hasPool(poolId: number): boolean {
    return this.pools.has(poolId);
  }

  countOf(poolId: number): number | undefined {
    return this.pools.get(poolId)?.count;
  }

  quantile(poolId: number, percentile: number, method: QuantileMethod = 'linear'): number {
    return this.quantiles(poolId, [percentile], method)[0];
  }

  quantiles(poolId: number, percentiles: readonly number[], method: QuantileMethod = 'linear'): number[] {
    const pool = this.requirePool(poolId);
    if (!isQuantileMethod(method)) throw invalidRequest('method', `Unknown method ${JSON.stringify(method)}.`);
    const methodId = METHOD_ID[method];
    const out = new Array<number>(percentiles.length);
    for (let i = 0; i < percentiles.length; i++) {
      const p = percentiles[i];
      if (typeof p !== 'number' || !(p >= 0 && p <= 100)) {
        throw invalidRequest('percentile', `percentile must be a number between 0 and 100, got ${p}.`);
      }
      let value = pool.cachedAnswer(methodId, p);
      if (value === undefined) {
        value = this.computeQuantile(pool, p, methodId);
        pool.rememberAnswer(methodId, p, value);
      }
      out[i] = value;
    }
    return out;
  }

  summary(poolId: number): PoolSummary {
    const pool = this.requirePool(poolId);
    const { min, max } = extremes(pool.allRuns());
    return { poolId, count: pool.count, min, max };
  }

  histogram(poolId: number, bins: number, range: { min?: number; max?: number } = {}): PoolHistogram {
    const pool = this.requirePool(poolId);
    const runs = pool.allRuns();
    const { min, max } = extremes(runs);
    const counts = histogramOf(runs, bins, range.min ?? min, range.max ?? max);
    return { poolId, count: pool.count, min, max, ...counts };
  }

  rank(poolId: number, value: number): PoolRank {
    const pool = this.requirePool(poolId);
    if (!Number.isFinite(value)) throw invalidRequest('value', `value must be a finite number, got ${value}.`);
    const { below, equal } = rankCounts(pool.allRuns(), value);
    return { poolId, count: pool.count, below, equal, fraction: (below + equal) / pool.count };
  }

  deletePool(poolId: number): boolean {
    const pool = this.pools.get(poolId);
    if (pool === undefined) return false;
    this.pools.delete(poolId);
    this.totalValues -= pool.count;
    this.sortedIds = null;
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
    const pools = slice.map((poolId) => ({ poolId, count: this.pools.get(poolId)!.count }));
    const next = start + limit < ids.length && slice.length > 0 ? slice[slice.length - 1] : null;
    return { pools, next };
  }

  runsOf(poolId: number): readonly SortedRun[] {
    const pool = this.requirePool(poolId);
    if (pool.tail !== null) {
      pool.sealTail(); // callers may hold the runs across turns (snapshots): no mutable tail escapes
      this.compact(poolId, pool); // or frequent callers would pile up sealed small runs
    }
    return pool.runs.slice();
  }

  runLengths(poolId: number): number[] {
    return this.requirePool(poolId)
      .allRuns()
      .map((run) => run.length);
  }

  exportSorted(poolId: number): SortedRun {
    const runs = this.requirePool(poolId).allRuns();
    let merged = runs[0];
    for (let i = 1; i < runs.length; i++) merged = this.mergeNow(merged, runs[i]);
    if (runs.length === 1) {
      const copy = allocateRun(merged.length);
      copy.set(merged);
      return copy as SortedRun;
    }
    return merged;
  }

  replacePool(poolId: number, runs: readonly SortedRun[]): void {
    this.deletePool(poolId);
    const kept = runs.filter((run) => run.length > 0);
    if (kept.length === 0) return;
    const pool = new Pool(this.kernels);
    pool.runs = kept.slice().sort((a, b) => b.length - a.length);
    for (const run of kept) pool.count += run.length;
    this.pools.set(poolId, pool);
    this.totalValues += pool.count;
    this.sortedIds = null;
    this.compact(poolId, pool);
  }

  poolIds(): readonly number[] {
    if (this.sortedIds === null) this.sortedIds = [...this.pools.keys()].sort((a, b) => a - b);
    return this.sortedIds;
  }

  stats(): EngineStats {
    let runs = 0;
    for (const pool of this.pools.values()) runs += pool.allRuns().length;
    return {
      pools: this.pools.size,
      values: this.totalValues,
      runs,
      valueBytes: this.totalValues * 8,
      mergesInFlight: this.inFlight.size,
    };
  }

  setMergeOffloader(offloader: MergeOffloader | null, minValues = DEFAULT_OFFLOAD_MIN_VALUES): void {
    this.offloader = offloader;
    this.offloadMinValues = minValues;
  }

  async whenMergesSettled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private requirePool(poolId: number): Pool {
    const pool = this.pools.get(poolId);
    if (pool === undefined) throw poolNotFound(poolId);
    return pool;
  }

  private computeQuantile(pool: Pool, percentile: number, methodId: number): number {
    const plan = this.plan;
    this.kernels.planQuantile(pool.count, percentile, methodId, plan);
    const runs = pool.allRuns();
    const a = selectRank(runs, plan.lo);
    if (plan.take) return a;
    let b = a;
    if (plan.hi === plan.lo + 1) b = runs.length === 1 ? runs[0][plan.hi] : nextRankValue(runs, plan.lo, a);
    else if (plan.hi !== plan.lo) b = selectRank(runs, plan.hi);
    return this.kernels.interpolate(a, b, plan.gamma);
  }

  private mergeNow(a: SortedRun, b: SortedRun): SortedRun {
    return this.kernels.mergeInto(a, b, allocateRun(a.length + b.length));
  }

  /** Applies the merge policy until no adjacent pair qualifies. */
  private compact(poolId: number, pool: Pool): void {
    const runs = pool.runs;
    for (let i = runs.length - 2; i >= 0;) {
      const a = runs[i];
      const b = runs[i + 1];
      if (a.length > MERGE_RATIO * b.length || pool.merging.has(a) || pool.merging.has(b)) {
        i--;
        continue;
      }
      if (this.offloader !== null && a.length + b.length >= this.offloadMinValues) {
        this.startOffloadedMerge(poolId, pool, a, b, this.offloader);
        i--;
        continue;
      }
      runs.splice(i, 2, this.mergeNow(a, b));
      pool.changed();
      i = Math.min(i, runs.length - 2);
    }
  }

  private startOffloadedMerge(poolId: number, pool: Pool, a: SortedRun, b: SortedRun, offloader: MergeOffloader): void {
    pool.merging.add(a);
    pool.merging.add(b);
    const task = offloader(a, b)
      .catch(() => this.mergeNow(a, b)) // a failed worker task is redone inline, never lost
      .then((merged) => this.swapInMerged(poolId, pool, a, b, merged))
      .finally(() => this.inFlight.delete(task));
    this.inFlight.add(task);
  }

  private swapInMerged(poolId: number, pool: Pool, a: SortedRun, b: SortedRun, merged: SortedRun): void {
    pool.merging.delete(a);
    pool.merging.delete(b);
    if (this.pools.get(poolId) !== pool) return; // deleted or replaced meanwhile
    const ia = pool.runs.indexOf(a);
    const ib = pool.runs.indexOf(b);
    if (ia < 0 || ib < 0 || merged.length !== a.length + b.length) return;
    pool.runs.splice(Math.max(ia, ib), 1);
    pool.runs.splice(Math.min(ia, ib), 1, merged); // same values: cached answers stay valid
    pool.changed();
    this.compact(poolId, pool);
  }
}
