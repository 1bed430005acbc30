// Order statistics across several sorted runs without merging them, for runs
// of either encoding (stored-run.ts): a plain run's index is its rank, a
// counted run's rank comes from its cumulative counts. Each round picks pivot
// values, counts the values below / equal to them in every run by binary
// search, and keeps only the part holding rank k; runs whose window empties
// leave the round.
//
// Pivots, after Floyd and Rivest's SELECT (CACM 18(3), 1975): if the runs look
// alike, each run's value at the same fraction k/n of its window estimates the
// answer, so two pivots bracketing rank k by about sqrt(n) — the weighted
// medians of the runs' values at fractions (k ∓ gap)/n — usually leave a
// window of O(sqrt n) values around it: 10^7 values shrink to ~10^4, ~10^2,
// done, in 3–5 rounds instead of ~23 halvings. When the estimates are off (runs
// from different distributions) and a round keeps more than 3/4 of the
// values, the next round's pivot is the weighted median of the windows'
// medians, which always drops at least a quarter.
//
import { totalLess } from './sorted-run.js';
import { indexOfRank, rankBefore, type RankedRun } from './stored-run.js';

/** Up to this many runs with a non-empty window, the pivot is the widest window's median. */
const WIDEST_PIVOT_MAX_RUNS = 16;

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
  /** The same for the upper pivot of a round. */
  ltB = new Float64Array(0);
  leB = new Float64Array(0);
  ltRankB = new Float64Array(0);
  leRankB = new Float64Array(0);
  active = new Int32Array(0);
  /** Values equal to the pivot of the last partition(). */
  equal = 0;
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
    this.ltB = new Float64Array(size);
    this.leB = new Float64Array(size);
    this.ltRankB = new Float64Array(size);
    this.leRankB = new Float64Array(size);
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

/**
 * The weighted median (weights: window lengths) of each active window's value
 * at `fraction` of its length, by quickselect. At 1/2 — the median of medians —
 * at least a quarter of all values lies on each side of it.
 */
function weightedMedianAt(runs: readonly RankedRun[], w: Windows, m: number, total: number, fraction: number): number {
  const medians = w.medians;
  const weights = w.weights;
  for (let a = 0; a < m; a++) {
    const i = w.active[a];
    const length = w.hiRank[i] - w.loRank[i];
    medians[a] = valueInWindow(runs[i], w, i, w.loRank[i] + Math.min(length - 1, Math.floor(fraction * length)));
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

/**
 * Where `pivot` falls in each active window, searching from `from` (a lower
 * bound already known) to hi: the first index not below it (lt) and the first
 * above it (le), with their ranks. Returns the values in the windows below
 * the pivot; w.equal gets the values equal to it.
 */
function partition(
  runs: readonly RankedRun[],
  w: Windows,
  m: number,
  pivot: number,
  from: Float64Array,
  lt: Float64Array,
  le: Float64Array,
  ltRank: Float64Array,
  leRank: Float64Array,
): number {
  let less = 0;
  let equal = 0;
  for (let a = 0; a < m; a++) {
    const i = w.active[a];
    const run = runs[i];
    const values = run.values;
    const x = lowerBound(values, pivot, from[i], w.hi[i]);
    const y = upperBound(values, pivot, x, w.hi[i]);
    const rx = rankBefore(run, x);
    const ry = y === x ? rx : rankBefore(run, y);
    lt[i] = x;
    le[i] = y;
    ltRank[i] = rx;
    leRank[i] = ry;
    less += rx - w.loRank[i];
    equal += ry - rx;
  }
  w.equal = equal;
  return less;
}

/** The answer when rank k falls in a pivot's block of equal values: ±0 compare equal, and the total order puts every -0 first. */
function inEqualBlock(
  runs: readonly RankedRun[],
  w: Windows,
  m: number,
  pivot: number,
  k: number,
  lt: Float64Array,
  le: Float64Array,
  ltRank: Float64Array,
): number {
  if (pivot !== 0) return pivot;
  let negativeZeros = 0;
  for (let a = 0; a < m; a++) {
    const i = w.active[a];
    negativeZeros += rankBefore(runs[i], firstNonNegativeZero(runs[i].values, lt[i], le[i])) - ltRank[i];
  }
  return k < negativeZeros ? -0 : 0;
}

/** Narrows every active window to [lo, hi) = [from, to) (a side of a partition). */
function narrow(
  w: Windows,
  m: number,
  from: Float64Array | null,
  fromRank: Float64Array | null,
  to: Float64Array | null,
  toRank: Float64Array | null,
): void {
  for (let a = 0; a < m; a++) {
    const i = w.active[a];
    if (from !== null) {
      w.lo[i] = from[i];
      w.loRank[i] = fromRank![i];
    }
    if (to !== null) {
      w.hi[i] = to[i];
      w.hiRank[i] = toRank![i];
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
  const { lo, loRank, hiRank, lt, le, ltRank, leRank, ltB, leB, ltRankB, leRankB, active } = w;
  let m = 0;
  for (let i = 0; i < r; i++) {
    const run = runs[i];
    if (run.count === 0) continue;
    lo[i] = 0;
    w.hi[i] = run.values.length;
    loRank[i] = 0;
    hiRank[i] = run.count;
    active[m++] = i;
  }
  let total = 0;
  for (let a = 0; a < m; a++) total += hiRank[active[a]];
  let bracket = true;
  for (;;) {
    if (m === 1) {
      const i = active[0];
      return valueInWindow(runs[i], w, i, loRank[i] + k);
    }
    const before = total;
    if (bracket) {
      const gap = Math.ceil(Math.sqrt(total)) + m;
      let below = false;
      if (k - gap > 0) {
        const a = weightedMedianAt(runs, w, m, total, (k - gap) / total);
        const less = partition(runs, w, m, a, lo, lt, le, ltRank, leRank);
        const equal = w.equal;
        if (k < less) {
          narrow(w, m, null, null, lt, ltRank);
          total = less;
          below = true;
        } else if (k < less + equal) {
          return inEqualBlock(runs, w, m, a, k - less, lt, le, ltRank);
        } else {
          narrow(w, m, le, leRank, null, null);
          k -= less + equal;
          total -= less + equal;
        }
      }
      if (!below && k + gap + 1 < total) {
        const b = weightedMedianAt(runs, w, m, total, (k + gap) / total);
        const less = partition(runs, w, m, b, lo, ltB, leB, ltRankB, leRankB);
        const equal = w.equal;
        if (k < less) {
          narrow(w, m, null, null, ltB, ltRankB);
          total = less;
        } else if (k < less + equal) {
          return inEqualBlock(runs, w, m, b, k - less, ltB, leB, ltRankB);
        } else {
          narrow(w, m, leB, leRankB, null, null);
          k -= less + equal;
          total -= less + equal;
        }
      }
    } else {
      const pivot = m <= WIDEST_PIVOT_MAX_RUNS ? widestMedian(runs, w, m) : weightedMedianAt(runs, w, m, total, 0.5);
      const less = partition(runs, w, m, pivot, lo, lt, le, ltRank, leRank);
      const equal = w.equal;
      if (k < less) {
        narrow(w, m, null, null, lt, ltRank);
        total = less;
      } else if (k < less + equal) {
        return inEqualBlock(runs, w, m, pivot, k - less, lt, le, ltRank);
      } else {
        narrow(w, m, le, leRank, null, null);
        k -= less + equal;
        total -= less + equal;
      }
    }
    let kept = 0;
    for (let a = 0; a < m; a++) {
      const i = active[a];
      if (hiRank[i] > loRank[i]) active[kept++] = i;
    }
    m = kept;
    // A bracket that kept more than 3/4 of the values missed; a median round follows, then brackets again.
    bracket = !bracket || total <= 0.75 * before;
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
