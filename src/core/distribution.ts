// The shape of a pool's distribution, read from its sorted runs in place:
// rank counts (how many values lie below / at x: the empirical CDF) and an
// equal-width histogram. Both are counts of values under a bound, and one
// binary search per run gives that count exactly, so nothing is copied or
// merged: a histogram of N bins costs (N + 1) · runs · log2(n) comparisons.
//
// The histogram is numpy.histogram(values, bins=N, range=(lo, hi)): edges are
// numpy.linspace(lo, hi, N + 1), each bin holds lo <= v < hi except the last,
// which also holds its upper edge, and a range of one point widens to
// (lo - 0.5, hi + 0.5). Values outside the range are counted apart (below,
// above) so that every value is accounted for.

import { invalidRequest } from './errors.js';
import { countBelow as countAcross } from './select-rank.js';
import type { RankedRun } from './stored-run.js';

/** Most bins one histogram may have. */
export const MAX_HISTOGRAM_BINS = 10_000;

export interface RankCounts {
  /** Values < x. */
  below: number;
  /** Values == x (-0 and +0 are equal here, as numbers). */
  equal: number;
}

export interface HistogramBin {
  lo: number;
  hi: number;
  count: number;
}

export interface HistogramCounts {
  bins: HistogramBin[];
  /** Values below the first edge and above the last one (0 unless a range was asked for). */
  below: number;
  above: number;
}

/** Values of all runs (plain or counted) that are < x. */
export function countBelow(runs: readonly RankedRun[], x: number): number {
  return countAcross(runs, x, false);
}

/** Values of all runs (plain or counted) that are <= x. */
export function countAtMost(runs: readonly RankedRun[], x: number): number {
  return countAcross(runs, x, true);
}

export function rankCounts(runs: readonly RankedRun[], x: number): RankCounts {
  const below = countBelow(runs, x);
  return { below, equal: countAtMost(runs, x) - below };
}

/**
 * numpy.linspace(lo, hi, bins + 1): edge i is i·step + lo, the last edge is hi.
 * Where hi - lo overflows (a range across most of float64), numpy's edges are
 * NaN; here the step is taken in halves so every edge stays finite and ordered.
 */
export function histogramEdges(lo: number, hi: number, bins: number): Float64Array {
  const edges = new Float64Array(bins + 1);
  const delta = hi - lo;
  if (Number.isFinite(delta)) {
    const step = delta / bins;
    for (let i = 0; i < bins; i++) edges[i] = step === 0 ? (i / bins) * delta + lo : i * step + lo;
  } else {
    const halfStep = (hi / 2 - lo / 2) / bins;
    for (let i = 0; i < bins; i++) edges[i] = lo + i * halfStep + i * halfStep;
  }
  edges[bins] = hi;
  // A step rounded up (subnormal ranges) can carry inner edges past hi; numpy
  // then counts oddly, here they stop at hi so no bin is negative.
  for (let i = 1; i < bins; i++) if (edges[i] > hi) edges[i] = hi;
  return edges;
}

/** Checks a histogram request: an integer bin count in 1 … MAX_HISTOGRAM_BINS and a finite range lo <= hi. */
export function checkHistogramRequest(bins: number, lo: number, hi: number): void {
  if (!(Number.isInteger(bins) && bins >= 1 && bins <= MAX_HISTOGRAM_BINS)) {
    throw invalidRequest('bins', `bins must be an integer from 1 to ${MAX_HISTOGRAM_BINS}, got ${bins}.`);
  }
  if (!Number.isFinite(lo)) throw invalidRequest('min', `min must be a finite number, got ${lo}.`);
  if (!Number.isFinite(hi)) throw invalidRequest('max', `max must be a finite number, got ${hi}.`);
  if (lo > hi) throw invalidRequest('max', `max must not be below min (min ${lo}, max ${hi}).`);
}

/** Counts the runs' values into `bins` equal-width bins over [lo, hi] (numpy.histogram's rules, above). */
export function histogramOf(runs: readonly RankedRun[], bins: number, lo: number, hi: number): HistogramCounts {
  checkHistogramRequest(bins, lo, hi);
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const edges = histogramEdges(lo, hi, bins);
  // cumulative[i]: values < edge i; the last edge is inclusive (the last bin is closed).
  const cumulative = new Float64Array(bins + 1);
  for (let i = 0; i < bins; i++) cumulative[i] = countBelow(runs, edges[i]);
  cumulative[bins] = countAtMost(runs, edges[bins]);
  const out: HistogramBin[] = new Array(bins);
  for (let i = 0; i < bins; i++) out[i] = { lo: edges[i], hi: edges[i + 1], count: cumulative[i + 1] - cumulative[i] };
  let total = 0;
  for (const run of runs) total += run.count;
  return { bins: out, below: cumulative[0], above: total - cumulative[bins] };
}
