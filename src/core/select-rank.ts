// Order statistics across several sorted runs without merging them, for runs
// of either encoding (stored-run.ts): a plain run's index is its rank, a
// counted run's rank comes from its cumulative counts. Each round picks a
// pivot value, counts the values below / equal to it in every run by binary
// search, and keeps only the side holding rank k; runs whose window empties
// leave the round. The pivot is the median of the widest window while few
// runs remain (cheap, and the widest window at least halves), and the
// weighted median of all windows' medians when many do: then at least a
// quarter of the remaining values leave each round whatever the runs hold,
// which is what keeps a query across hundreds of pools' runs — each from a
// different distribution, so one run's median is an extreme for the others —
// at O(r log n) binary searches per round and O(log n) rounds.

import { totalLess } from './sorted-run.js';
import { indexOfRank, rankBefore, type RankedRun } from './stored-run.js';

/** Up to this many runs with a non-empty window, the pivot is the widest window's median. */
const WIDEST_PIVOT_MAX_RUNS = 16;

/** First index in [lo, hi) whose value is not < x. */
function lowerBound(run: Float64Array, x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (run[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in [lo, hi) whose value is > x. */
function upperBound(run: Float64Array, x: number, lo: number, hi: number): number {
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
 * Per-run windows, reused across calls (queries run on one thread, start to
 * end): value indices [lo, hi) and the ranks before them, the partition
 * points of the current round, and the indices of the runs still in play.
 */
class Windows {
  size = 0;
  lo = new Float64Array(0);
  hi = new Float64Array(0);
  loRank = new Float64Array(0);
  hiRank = new Float64Array(0);
  lt = new Float64Array(0);
  le = new Float64Array(0);
  ltRank = new Float64Array(0);
  leRank = new Float64Array(0);
  active = new Int32Array(0);
  medians = new Float64Array(0);
  weights = new Float64Array(0);

  reserve(r: number): void {
    if (r <= this.size) return;
    const size = Math.max(r, 2 * this.size, 16);
    this.size = size;
    this.lo = new Float64Array(size);
    this.hi = new Float64Array(size);
    this.loRank = new Float64Array(size);
    this.hiRank = new Float64Array(size);
    this.lt = new Float64Array(size);
    this.le = new Float64Array(size);
    this.ltRank = new Float64Array(size);
    this.leRank = new Float64Array(size);
    this.active = new Int32Array(size);
    this.medians = new Float64Array(size);
    this.weights = new Float64Array(size);
  }
}

const windows = new Windows();

/** The value at rank `rank` of run i, looked up inside its window. */
function valueInWindow(run: RankedRun, w: Windows, i: number, rank: number): number {
  return run.values[indexOfRank(run, rank, w.lo[i], w.hi[i])];
}

/** The median of the widest window among the first m active runs. */
function widestMedian(runs: readonly RankedRun[], w: Windows, m: number): number {
  let best = w.active[0];
  let bestLength = -1;
  for (let a = 0; a < m; a++) {
    const i = w.active[a];
    const length = w.hiRank[i] - w.loRank[i];
    if (length > bestLength) {
      bestLength = length;
      best = i;
    }
  }
  return valueInWindow(runs[best], w, best, w.loRank[best] + Math.floor(bestLength / 2));
}

/** The weighted median of the active windows' medians (weights: window lengths), by quickselect. */
function weightedMedianOfMedians(runs: readonly RankedRun[], w: Windows, m: number, total: number): number {
  const medians = w.medians;
  const weights = w.weights;
  for (let a = 0; a < m; a++) {
    const i = w.active[a];
    const length = w.hiRank[i] - w.loRank[i];
    medians[a] = valueInWindow(runs[i], w, i, w.loRank[i] + Math.floor(length / 2));
    weights[a] = length;
  }
  let lo = 0;
  let hi = m; // exclusive
  let target = total / 2;
  for (;;) {
    const pivot = medians[(lo + hi) >>> 1];
    // Three-way partition of [lo, hi): < pivot, = pivot, > pivot.
    let lt = lo;
    let gt = hi;
    let i = lo;
    let weightLess = 0;
    let weightEqual = 0;
    while (i < gt) {
      const x = medians[i];
      if (x < pivot) {
        weightLess += weights[i];
        swap(medians, weights, i++, lt++);
      } else if (x > pivot) {
        swap(medians, weights, i, --gt);
      } else {
        weightEqual += weights[i++];
      }
    }
    if (target < weightLess) hi = lt;
    else if (target <= weightLess + weightEqual || gt === hi) return pivot;
    else {
      target -= weightLess + weightEqual;
      lo = gt;
    }
  }
}

function swap(a: Float64Array, b: Float64Array, i: number, j: number): void {
  const x = a[i];
  a[i] = a[j];
  a[j] = x;
  const y = b[i];
  b[i] = b[j];
  b[j] = y;
}

/**
 * The value at 0-based rank `k` of the union of `runs` in the engine's total
 * order (-0 before +0). Requires 0 <= k < total count.
 */
export function selectRank(runs: readonly RankedRun[], k: number): number {
  const r = runs.length;
  if (r === 1) return runs[0].values[indexOfRank(runs[0], k)];
  const w = windows;
  w.reserve(r);
  const { lo, hi, loRank, hiRank, lt, le, ltRank, leRank, active } = w;
  let m = 0;
  for (let i = 0; i < r; i++) {
    const run = runs[i];
    if (run.count === 0) continue;
    lo[i] = 0;
    hi[i] = run.values.length;
    loRank[i] = 0;
    hiRank[i] = run.count;
    active[m++] = i;
  }
  for (;;) {
    if (m === 1) {
      const i = active[0];
      return valueInWindow(runs[i], w, i, loRank[i] + k);
    }
    let pivot: number;
    if (m <= WIDEST_PIVOT_MAX_RUNS) {
      pivot = widestMedian(runs, w, m);
    } else {
      let total = 0;
      for (let a = 0; a < m; a++) total += hiRank[active[a]] - loRank[active[a]];
      pivot = weightedMedianOfMedians(runs, w, m, total);
    }
    let less = 0;
    let equal = 0;
    for (let a = 0; a < m; a++) {
      const i = active[a];
      const run = runs[i];
      const values = run.values;
      const x = lowerBound(values, pivot, lo[i], hi[i]);
      const y = upperBound(values, pivot, x, hi[i]);
      const rx = rankBefore(run, x);
      const ry = y === x ? rx : rankBefore(run, y);
      lt[i] = x;
      le[i] = y;
      ltRank[i] = rx;
      leRank[i] = ry;
      less += rx - loRank[i];
      equal += ry - rx;
    }
    if (k < less) {
      for (let a = 0; a < m; a++) {
        const i = active[a];
        hi[i] = lt[i];
        hiRank[i] = ltRank[i];
      }
    } else if (k < less + equal) {
      if (pivot !== 0) return pivot;
      // ±0 compare equal; the total order puts every -0 first.
      let negativeZeros = 0;
      for (let a = 0; a < m; a++) {
        const i = active[a];
        negativeZeros += rankBefore(runs[i], firstNonNegativeZero(runs[i].values, lt[i], le[i])) - ltRank[i];
      }
      return k - less < negativeZeros ? -0 : 0;
    } else {
      k -= less + equal;
      for (let a = 0; a < m; a++) {
        const i = active[a];
        lo[i] = le[i];
        loRank[i] = leRank[i];
      }
    }
    let kept = 0;
    for (let a = 0; a < m; a++) {
      const i = active[a];
      if (hiRank[i] > loRank[i]) active[kept++] = i;
    }
    m = kept;
  }
}

/**
 * The value at rank k+1, given `valueK`, the value at rank k. Costs two binary
 * searches per run instead of a second selection: the next value is another
 * copy of valueK while the equal block lasts, else the smallest value above it.
 * An interpolating quantile needs both neighbours, so this halves its cost.
 */
export function nextRankValue(runs: readonly RankedRun[], k: number, valueK: number): number {
  let less = 0;
  let equal = 0;
  let negativeZeros = 0;
  let next = Infinity;
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i];
    const values = run.values;
    const a = lowerBound(values, valueK, 0, values.length);
    const b = upperBound(values, valueK, a, values.length);
    const ra = rankBefore(run, a);
    less += ra;
    equal += rankBefore(run, b) - ra;
    if (valueK === 0) negativeZeros += rankBefore(run, firstNonNegativeZero(values, a, b)) - ra;
    if (b < values.length && totalLess(values[b], next)) next = values[b]; // -0 before +0
  }
  const k1 = k + 1;
  if (k1 < less + equal) return valueK !== 0 ? valueK : k1 - less < negativeZeros ? -0 : 0;
  return next;
}

/** How many values across `runs` are < x (inclusive: <= x). -0 and +0 compare equal here, as in numpy. */
export function countBelow(runs: readonly RankedRun[], x: number, inclusive: boolean): number {
  let count = 0;
  for (const run of runs) {
    const values = run.values;
    count += rankBefore(run, inclusive ? upperBound(values, x, 0, values.length) : lowerBound(values, x, 0, values.length));
  }
  return count;
}

/** Smallest and largest value across non-empty runs in the total order. */
export function extremes(runs: readonly RankedRun[]): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const run of runs) {
    const values = run.values;
    if (values.length === 0) continue;
    if (totalLess(values[0], min)) min = values[0];
    if (totalLess(max, values[values.length - 1])) max = values[values.length - 1];
  }
  return { min, max };
}
