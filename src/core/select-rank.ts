// Order statistics across several sorted runs without merging them.
// Each round takes the median of the widest remaining window as a pivot, counts
// the elements below / equal to it in every run by binary search, and keeps only
// the side holding rank k. The widest window at least halves each round, so a
// pool of r runs and n values costs O(r log n) binary searches per rank; with the
// logarithmic merge policy r stays <= log2(n). Measured in bench/engine-query.ts.

import { totalLess, type SortedRun } from './sorted-run.js';

/** First index in [lo, hi) whose value is not < x. */
export function lowerBound(run: Float64Array, x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (run[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in [lo, hi) whose value is > x. */
export function upperBound(run: Float64Array, x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (run[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in [lo, hi) that is not -0 (the zero block holds -0s then +0s). */
function firstNonNegativeZero(run: Float64Array, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Object.is(run[mid], -0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The value at 0-based rank `k` of the union of `runs` in the engine's total
 * order (-0 before +0). Requires 0 <= k < total length.
 */
export function selectRank(runs: readonly SortedRun[], k: number): number {
  const r = runs.length;
  if (r === 1) return runs[0][k];
  const lo = new Array<number>(r).fill(0);
  const hi = runs.map((run) => run.length);
  const lt = new Array<number>(r);
  const le = new Array<number>(r);
  for (;;) {
    let best = 0;
    let bestLen = -1;
    let total = 0;
    for (let i = 0; i < r; i++) {
      const len = hi[i] - lo[i];
      total += len;
      if (len > bestLen) {
        bestLen = len;
        best = i;
      }
    }
    if (bestLen === total) return runs[best][lo[best] + k];
    const pivot = runs[best][lo[best] + (bestLen >>> 1)];
    let less = 0;
    let equal = 0;
    for (let i = 0; i < r; i++) {
      const run = runs[i];
      const a = lowerBound(run, pivot, lo[i], hi[i]);
      const b = upperBound(run, pivot, a, hi[i]);
      lt[i] = a;
      le[i] = b;
      less += a - lo[i];
      equal += b - a;
    }
    if (k < less) {
      for (let i = 0; i < r; i++) hi[i] = lt[i];
    } else if (k < less + equal) {
      if (pivot !== 0) return pivot;
      // ±0 compare equal; the total order puts every -0 first.
      let negativeZeros = 0;
      for (let i = 0; i < r; i++) negativeZeros += firstNonNegativeZero(runs[i], lt[i], le[i]) - lt[i];
      return k - less < negativeZeros ? -0 : 0;
    } else {
      k -= less + equal;
      for (let i = 0; i < r; i++) lo[i] = le[i];
    }
  }
}

/**
 * The value at rank k+1, given `valueK`, the value at rank k. Costs two binary
 * searches per run instead of a second selection: the next value is another
 * copy of valueK while the equal block lasts, else the smallest value above it.
 * An interpolating quantile needs both neighbours, so this halves its cost.
 */
export function nextRankValue(runs: readonly SortedRun[], k: number, valueK: number): number {
  let less = 0;
  let equal = 0;
  let negativeZeros = 0;
  let next = Infinity;
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i];
    const a = lowerBound(run, valueK, 0, run.length);
    const b = upperBound(run, valueK, a, run.length);
    less += a;
    equal += b - a;
    if (valueK === 0) negativeZeros += firstNonNegativeZero(run, a, b) - a;
    if (b < run.length && totalLess(run[b], next)) next = run[b]; // -0 before +0
  }
  const k1 = k + 1;
  if (k1 < less + equal) return valueK !== 0 ? valueK : k1 - less < negativeZeros ? -0 : 0;
  return next;
}

/** Smallest and largest value across runs in the total order. */
export function extremes(runs: readonly SortedRun[]): { min: number; max: number } {
  let min = runs[0][0];
  let max = runs[0][runs[0].length - 1];
  for (let i = 1; i < runs.length; i++) {
    const run = runs[i];
    if (totalLess(run[0], min)) min = run[0];
    if (totalLess(max, run[run.length - 1])) max = run[run.length - 1];
  }
  return { min, max };
}
