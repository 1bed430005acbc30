// One pool's data: its arrival-time buckets (time-window.ts), each a list of
// immutable stored runs (stored-run.ts), and one mutable tail for small
// appends, which belongs to the newest bucket. PoolStore (pool-store.ts)
// decides what goes where and when runs merge; this file keeps the pieces
// consistent: counts, the tail, the view readers see, cached answers, expiry.
//
// The tail: small appends do not make runs of their own; they are copied into
// one buffer of at most TailPolicy.maxValues values that becomes an ordinary
// run when full (or when someone outside the engine asks for the runs, e.g. a
// snapshot). Before the tail, every 10-value append allocated ~2 typed arrays
// (its run and merge outputs), and allocation + GC + merge calls were ~25 % of
// the server's CPU on 10-value appends (bench:http --cpu-prof). The tail is
// settled lazily: an append copies its sorted batch behind the tail's sorted
// part, and the first reader after it (a query, a seal) merges the pending
// batches in. Merging every batch on append was the largest JS frame of an
// append (6.6 % of the server's CPU, perf, 10-value appends into 1000 pools);
// a query after each append pays the same merge as before. Only the event loop
// ever touches a tail: offloaded merges and snapshots see sealed runs only.

import type { Kernels } from './kernels.js';
import { totalLess, trustSorted, type SortedRun } from './sorted-run.js';
import { encodeSorted, runBytes, type EncodingPolicy, type RankedRun, type StoredRun } from './stored-run.js';

const QUERY_CACHE_LIMIT = 64;
const TAIL_MIN_CAPACITY = 16;

/** Values that arrived in [startMs, endMs), as sealed runs (oldest first). */
export class Bucket {
  runs: StoredRun[] = [];
  /** Values in this bucket, the tail's included when this is the newest bucket. */
  count = 0;

  constructor(
    public startMs: number,
    public endMs: number,
  ) {}

  bytes(): number {
    let bytes = 0;
    for (const run of this.runs) bytes += runBytes(run);
    return bytes;
  }
}

/** Whether `values` is in the engine's order (totalLess: -0 before +0; NaN never occurs). */
function isSorted(values: Float64Array): boolean {
  for (let i = 1; i < values.length; i++) if (totalLess(values[i], values[i - 1])) return false;
  return true;
}

/** One reusable buffer for settleTail's pending copy (the event loop is the only caller). */
let scratch = new Float64Array(512);
function scratchFor(length: number): Float64Array {
  if (scratch.length < length) scratch = new Float64Array(length);
  return scratch;
}

export class Pool {
  /** Retention window in ms; null keeps every value. */
  windowMs: number | null = null;
  /** Oldest first; their endMs never decrease. Empty when every value expired (or none came yet). */
  buckets: Bucket[] = [];
  /**
   * The mutable tail (part of the newest bucket), null when there is none:
   * values [0, tailSorted) sorted, then [tailSorted, tailLength) appended
   * batches (each sorted) not yet merged in. settleTail() makes all of
   * [0, tailLength) sorted.
   */
  tail: Float64Array | null = null;
  tailLength = 0;
  tailSorted = 0;
  /** Every run plus a view of the settled tail, for readers on the event loop; null = rebuild. */
  private view: RankedRun[] | null = null;
  count = 0;
  /** Runs promised to an in-flight offloaded merge. */
  readonly merging = new Set<StoredRun>();

  constructor(private readonly kernels: Kernels) {}

  newestBucket(): Bucket | undefined {
    return this.buckets[this.buckets.length - 1];
  }

  /** Every value as sorted runs, for synchronous readers only (the tail view changes with the next append). */
  allRuns(): readonly RankedRun[] {
    if (this.view === null) {
      const view: RankedRun[] = [];
      for (const bucket of this.buckets) for (const run of bucket.runs) view.push(run);
      if (this.tailLength > 0) {
        this.settleTail();
        view.push({ values: trustSorted(this.tail!.subarray(0, this.tailLength)), ends: null, count: this.tailLength });
      }
      this.view = view;
    }
    return this.view;
  }

  /** Call after any change to runs, buckets or the tail. */
  changed(): void {
    this.view = null;
  }

  /** Turns the tail into a run of the newest bucket; returns the bytes it let go (a compressed tail's buffer). */
  sealTail(policy: EncodingPolicy): number {
    if (this.tail === null) return 0;
    this.settleTail();
    let released = 0;
    if (this.tailLength > 0) {
      // No copy when it stays plain: the buffer is never written again.
      const run = encodeSorted(trustSorted(this.tail.subarray(0, this.tailLength)), policy);
      if (run.ends !== null) released = this.tail.byteLength;
      this.newestBucket()!.runs.push(run);
    }
    this.dropTail();
    return released;
  }

  dropTail(): void {
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
   * Drops the buckets that left the window by `nowMs`, oldest first, with the
   * tail when the newest goes. Returns the values dropped and the bytes let go.
   */
  expire(nowMs: number): { values: number; bytes: number } {
    const windowMs = this.windowMs;
    let values = 0;
    let bytes = 0;
    if (windowMs === null) return { values, bytes };
    const buckets = this.buckets;
    let dropped = 0;
    while (dropped < buckets.length && buckets[dropped].endMs <= nowMs - windowMs) {
      values += buckets[dropped].count;
      bytes += buckets[dropped].bytes();
      dropped++;
    }
    if (dropped === 0) return { values, bytes };
    if (dropped === buckets.length && this.tail !== null) {
      bytes += this.tail.byteLength;
      this.dropTail();
    }
    buckets.splice(0, dropped);
    this.count -= values;
    this.changed();
    this.forgetAnswers();
    return { values, bytes };
  }

  /** Bytes held by the pool's runs and its tail buffer. */
  bytes(): number {
    let bytes = this.tail === null ? 0 : this.tail.byteLength;
    for (const bucket of this.buckets) bytes += bucket.bytes();
    return bytes;
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
