// How a pool keeps one immutable sorted run: plain (every value, 8 bytes each)
// or counted (each distinct value once plus its cumulative count, 16 bytes per
// distinct value). Real data repeats values heavily — whole-millisecond
// latencies, sizes, prices — so a run is stored counted whenever that is
// smaller: when it has fewer distinct values than half its length. The choice
// is made per run, when it is built or merged (run-merge.ts), so a pool can
// hold both kinds; selection (select-rank.ts) reads both without expanding.
//
// Both arrays of a run are immutable once the run exists, like SortedRun's.
// -0 and +0 are different distinct values (the engine orders -0 first and
// answers keep the sign), so a counted run may hold both, -0 first.

import { allocateRun, totalLess, trustSorted, type SortedRun } from './sorted-run.js';

/** What readers of a run need: its sorted values and, when counted, their cumulative counts. */
export interface RankedRun {
  /** Plain: every value, ascending. Counted: each distinct value once, ascending. */
  readonly values: SortedRun;
  /** Counted: ends[i] = how many of the run's values are <= values[i] (in the total order). Plain: null. */
  readonly ends: Float64Array | null;
  /** Values the run stands for. */
  readonly count: number;
}

/** A sealed run of a pool: a RankedRun that also knows its exact number of distinct values. */
export interface StoredRun extends RankedRun {
  readonly distinct: number;
}

export type RunEncoding = 'plain' | 'counted';
/** 'auto' picks the smaller encoding per run; the other two force one (tests, benchmarks). */
export type EncodingPolicy = 'auto' | RunEncoding;
export const ENCODING_POLICIES: readonly EncodingPolicy[] = ['auto', 'plain', 'counted'];

/** Same value, same sign of zero: the values a counted run keeps apart. */
export function sameValue(x: number, y: number): boolean {
  return x === y && (x !== 0 || 1 / x === 1 / y);
}

/** Distinct values of a sorted array (-0 and +0 count apart). */
export function countDistinct(values: Float64Array, from = 0, to = values.length): number {
  if (to <= from) return 0;
  let distinct = 1;
  let previous = values[from];
  for (let i = from + 1; i < to; i++) {
    const x = values[i];
    if (!sameValue(x, previous)) distinct++;
    previous = x;
  }
  return distinct;
}

export function plainRun(values: SortedRun, distinct: number): StoredRun {
  return { values, ends: null, count: values.length, distinct };
}

export function countedRun(values: SortedRun, ends: Float64Array): StoredRun {
  return { values, ends, count: values.length === 0 ? 0 : ends[ends.length - 1], distinct: values.length };
}

export function encodingOf(run: RankedRun): RunEncoding {
  return run.ends === null ? 'plain' : 'counted';
}

/** Bytes of the run's arrays (the views, not any larger buffer behind them). */
export function runBytes(run: RankedRun): number {
  return run.values.length * 8 + (run.ends === null ? 0 : run.ends.length * 8);
}

/** The encoding `policy` gives a run of `count` values of which `distinct` differ. */
export function chooseEncoding(count: number, distinct: number, policy: EncodingPolicy): RunEncoding {
  if (policy !== 'auto') return policy;
  return 16 * distinct < 8 * count ? 'counted' : 'plain';
}

/** Values of the run before distinct index i (i itself for a plain run). */
export function rankBefore(run: RankedRun, i: number): number {
  const ends = run.ends;
  if (ends === null) return i;
  return i === 0 ? 0 : ends[i - 1];
}

/** Index (into run.values) of the value at rank k, 0 <= k < count, searching [lo, hi). */
export function indexOfRank(run: RankedRun, k: number, lo = 0, hi = run.values.length): number {
  const ends = run.ends;
  if (ends === null) return k;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ends[mid] <= k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function valueAtRank(run: RankedRun, k: number): number {
  return run.values[indexOfRank(run, k)];
}

/** Copies the distinct values of sorted `values` and their cumulative counts into the outputs (each >= distinct long); returns how many. */
export function compressSortedInto(values: Float64Array, outValues: Float64Array, outEnds: Float64Array): number {
  const n = values.length;
  if (n === 0) return 0;
  let d = 0;
  let previous = values[0];
  for (let i = 1; i < n; i++) {
    const x = values[i];
    if (!sameValue(x, previous)) {
      outValues[d] = previous;
      outEnds[d++] = i;
      previous = x;
    }
  }
  outValues[d] = previous;
  outEnds[d++] = n;
  return d;
}

/** A counted run of the sorted `values`, whose distinct count is known. */
export function compressSorted(values: SortedRun, distinct: number): StoredRun {
  const outValues = allocateRun(distinct);
  const outEnds = allocateRun(distinct);
  compressSortedInto(values, outValues, outEnds);
  return countedRun(trustSorted(outValues), outEnds);
}

/** Every value of the run as one plain sorted array: the run's own for a plain run, a new one for a counted run. */
export function expandRun(run: RankedRun): SortedRun {
  const ends = run.ends;
  if (ends === null) return run.values;
  const out = allocateRun(run.count);
  const values = run.values;
  let start = 0;
  for (let i = 0; i < values.length; i++) {
    const end = ends[i];
    out.fill(values[i], start, end);
    start = end;
  }
  return trustSorted(out);
}

/**
 * A sorted batch the engine now owns, stored in the encoding `policy` picks.
 * A plain result keeps `values` itself (no copy); a counted one copies out
 * the distinct values and leaves `values` to the garbage collector.
 */
export function encodeSorted(values: SortedRun, policy: EncodingPolicy): StoredRun {
  const distinct = countDistinct(values);
  if (chooseEncoding(values.length, distinct, policy) === 'plain') return plainRun(values, distinct);
  return compressSorted(values, distinct);
}

/** Re-encodes a run in the encoding `policy` gives it (the same object when it already is). */
export function reencode(run: StoredRun, policy: EncodingPolicy): StoredRun {
  const want = chooseEncoding(run.count, run.distinct, policy);
  if (want === encodingOf(run)) return run;
  if (want === 'plain') return plainRun(expandRun(run), run.distinct);
  return compressSorted(run.values, run.distinct);
}

/** Throws unless `run` keeps its invariants (snapshot loading, worker replies, tests). */
export function assertStoredRun(run: StoredRun): void {
  const { values, ends, count, distinct } = run;
  for (let i = 1; i < values.length; i++) {
    const a = values[i - 1];
    const b = values[i];
    const inOrder = ends === null ? !totalLess(b, a) : totalLess(a, b); // counted: strictly increasing
    if (!inOrder || Number.isNaN(b)) throw new Error(`run is not sorted at index ${i}: ${a} then ${b}`);
  }
  if (ends === null) {
    if (count !== values.length) throw new Error(`plain run of ${values.length} values claims ${count}`);
    if (distinct !== countDistinct(values)) throw new Error(`plain run claims ${distinct} distinct values, has ${countDistinct(values)}`);
    return;
  }
  if (ends.length !== values.length || distinct !== values.length) throw new Error('counted run: values, ends and distinct disagree');
  let previous = 0;
  for (let i = 0; i < ends.length; i++) {
    if (!(Number.isSafeInteger(ends[i]) && ends[i] > previous)) throw new Error(`counted run: ends[${i}] = ${ends[i]} after ${previous}`);
    previous = ends[i];
  }
  if (count !== previous) throw new Error(`counted run ends at ${previous} but claims ${count} values`);
}
