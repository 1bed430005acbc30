// Statistics for every bench: one percentile definition (nearest rank, the
// value at or below which q of the samples lie; no interpolation, so a p99 is
// a latency some request really had) and the summaries built on it.

/** Nearest-rank percentile of ascending `sorted`, q in [0, 1]; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
}

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Sorts a copy of `samples` and summarises it. */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const x of sorted) sum += x;
  const n = sorted.length;
  return {
    n,
    mean: n > 0 ? sum / n : Number.NaN,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: n > 0 ? sorted[n - 1] : Number.NaN,
  };
}

/** The median; with an even count the mean of the two middle values. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Index of the median element (the lower middle one for even counts), to keep a whole row of that round. */
export function medianIndex(xs: readonly number[]): number {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  return order[(order.length - 1) >> 1];
}
