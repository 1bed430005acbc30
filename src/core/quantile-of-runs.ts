// numpy.percentile over the union of sorted runs: plan the ranks numpy would
// read (quantile-math.ts or its WASM twin), select them across the runs
// (select-rank.ts), interpolate. Shared by one pool's queries and queries
// across pools, so both answer bit for bit alike.

import { invalidRequest } from './errors.js';
import type { Kernels, QuantilePlan } from './kernels.js';
import { isQuantileMethod, METHOD_ID, type QuantileMethod } from './methods.js';
import { nextRankValue, selectRank } from './select-rank.js';
import type { RankedRun } from './stored-run.js';

/** The method's id, or invalid_request naming `method`. */
export function methodIdOf(method: QuantileMethod): number {
  if (!isQuantileMethod(method)) throw invalidRequest('method', `Unknown method ${JSON.stringify(method)}.`);
  return METHOD_ID[method];
}

/** Throws invalid_request naming `percentile` unless every p is a number in [0, 100]. */
export function checkPercentiles(percentiles: readonly number[]): void {
  for (const p of percentiles) {
    if (typeof p !== 'number' || !(p >= 0 && p <= 100)) {
      throw invalidRequest('percentile', `percentile must be a number between 0 and 100, got ${p}.`);
    }
  }
}

const plan: QuantilePlan = { lo: 0, hi: 0, gamma: 0, take: false };

/** numpy.percentile(values of `runs`, p, method) for `count` >= 1 values. */
export function quantileOfRuns(kernels: Kernels, runs: readonly RankedRun[], count: number, percentile: number, methodId: number): number {
  kernels.planQuantile(count, percentile, methodId, plan);
  const a = selectRank(runs, plan.lo);
  if (plan.take) return a;
  let b = a;
  if (plan.hi === plan.lo + 1) b = runs.length === 1 && runs[0].ends === null ? runs[0].values[plan.hi] : nextRankValue(runs, plan.lo, a);
  else if (plan.hi !== plan.lo) b = selectRank(runs, plan.hi);
  return kernels.interpolate(a, b, plan.gamma);
}
