// The sort-based reference the engines are checked against: copy, sort the whole
// pool with Float64Array.prototype.sort (ECMA-262 orders -0 before +0, the
// engine's total order), then index it with numpy's index arithmetic.
//
// It reuses planQuantile / lerpNumpy from src/core/quantile-math.ts, so it checks
// everything around them (sorting, merging runs, multi-run rank selection,
// caching) but not the port of numpy's arithmetic itself; that is what the
// numpy fixtures (test/fixtures/numpy-quantiles.json) are for.

import type { QuantilePlan } from '../../src/core/kernels.js';
import { METHOD_ID, type QuantileMethod } from '../../src/core/methods.js';
import { lerpNumpy, planQuantile } from '../../src/core/quantile-math.js';

/** A sorted copy in the engine's total order. */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** numpy.percentile(sorted, percentile, method) over an already sorted array. */
export function quantileOfSorted(sorted: Float64Array, percentile: number, method: QuantileMethod): number {
  const plan: QuantilePlan = { lo: 0, hi: 0, gamma: 0, take: false };
  planQuantile(sorted.length, percentile, METHOD_ID[method], plan);
  const a = sorted[plan.lo];
  if (plan.take) return a;
  return lerpNumpy(a, sorted[plan.hi], plan.gamma);
}

export function oracleQuantile(values: ArrayLike<number>, percentile: number, method: QuantileMethod): number {
  return quantileOfSorted(sortedCopy(values), percentile, method);
}

// --- float64 bit patterns: every comparison in the engine suites is bit-exact ---

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The 16 hex digits of x's IEEE-754 bit pattern (as the fixture generator writes them). */
export function bitsHex(x: number): string {
  f64[0] = x;
  return u64[0].toString(16).padStart(16, '0');
}

export function fromBitsHex(hex: string): number {
  u64[0] = BigInt(`0x${hex}`);
  return f64[0];
}

/** Bit-for-bit equality: tells -0 from +0 (and would tell NaN payloads apart). */
export function sameBits(a: number, b: number): boolean {
  return bitsHex(a) === bitsHex(b);
}

/** `6.984999999999999 (0x401bf0a3d70a3d70)`, for failure messages. */
export function describeF64(x: number): string {
  return `${Object.is(x, -0) ? '-0' : String(x)} (0x${bitsHex(x)})`;
}

// --- deterministic test data ---

// Re-exported so existing imports keep working; the PRNG lives in random.ts.
export { seededRandom } from './random.js';
