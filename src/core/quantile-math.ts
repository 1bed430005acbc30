// numpy.percentile's index arithmetic, ported operation for operation so the
// float64 results are bit-identical (numpy/lib/_function_base_impl.py, numpy 2.x:
// `_QuantileMethods`, `_compute_virtual_index`, `_get_indexes`, `_get_gamma`,
// `_lerp`). assembly/quantile.ts is the WASM twin of this file; keep them in step.
// Method ids are the indices of QUANTILE_METHODS in methods.ts.

import type { QuantilePlan } from './kernels.js';

const LINEAR = 0;
const INVERTED_CDF = 1;
const AVERAGED_INVERTED_CDF = 2;
const CLOSEST_OBSERVATION = 3;
const INTERPOLATED_INVERTED_CDF = 4;
const HAZEN = 5;
const WEIBULL = 6;
const MEDIAN_UNBIASED = 7;
const NORMAL_UNBIASED = 8;
const LOWER = 9;
const HIGHER = 10;
const NEAREST = 11;
const MIDPOINT = 12;

/** Python's `%` (sign of the divisor), as numpy's float/int modulo uses. */
function pyMod(x: number, m: number): number {
  const r = x % m;
  return r !== 0 && r < 0 !== m < 0 ? r + m : r;
}

/** np.around: round half to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return pyMod(f, 2) === 0 ? f : f + 1;
}

/** `n * q + (alpha + q * (1 - alpha - beta)) - 1` in numpy's evaluation order. */
function computeVirtualIndex(n: number, q: number, alpha: number, beta: number): number {
  return n * q + (alpha + q * (1 - alpha - beta)) - 1;
}

/** `_discrete_interpolation_to_boundaries`: previous or next integer, clipped at 0. */
function discreteBoundary(index: number, pickPrevious: (gamma: number, index: number) => boolean): number {
  const previous = Math.floor(index);
  const next = previous + 1;
  const gamma = index - previous;
  const res = pickPrevious(gamma, index) ? previous : next;
  return res < 0 ? 0 : res;
}

function setTake(plan: QuantilePlan, rank: number): void {
  plan.lo = rank;
  plan.hi = rank;
  plan.gamma = 0;
  plan.take = true;
}

export function planQuantile(n: number, percentile: number, methodId: number, plan: QuantilePlan): void {
  const q = percentile / 100; // np.true_divide(q, 100)
  let virtual: number;
  switch (methodId) {
    case INVERTED_CDF:
      return setTake(
        plan,
        discreteBoundary(n * q - 1, (gamma) => gamma === 0),
      );
    case CLOSEST_OBSERVATION:
      return setTake(
        plan,
        discreteBoundary(n * q - 1 - 0.5, (gamma, index) => gamma === 0 && pyMod(Math.floor(index), 2) === 1),
      );
    case LOWER:
      return setTake(plan, Math.floor((n - 1) * q));
    case HIGHER:
      return setTake(plan, Math.ceil((n - 1) * q));
    case NEAREST:
      return setTake(plan, roundHalfEven((n - 1) * q));
    case LINEAR:
      virtual = (n - 1) * q;
      break;
    case AVERAGED_INVERTED_CDF:
      virtual = n * q - 1;
      break;
    case INTERPOLATED_INVERTED_CDF:
      virtual = computeVirtualIndex(n, q, 0, 1);
      break;
    case HAZEN:
      virtual = computeVirtualIndex(n, q, 0.5, 0.5);
      break;
    case WEIBULL:
      virtual = computeVirtualIndex(n, q, 0, 0);
      break;
    case MEDIAN_UNBIASED:
      virtual = computeVirtualIndex(n, q, 1 / 3.0, 1 / 3.0);
      break;
    case NORMAL_UNBIASED:
      virtual = computeVirtualIndex(n, q, 3 / 8.0, 3 / 8.0);
      break;
    case MIDPOINT: {
      const h = (n - 1) * q;
      virtual = 0.5 * (Math.floor(h) + Math.ceil(h));
      break;
    }
    default:
      throw new RangeError(`unknown quantile method id ${methodId}`);
  }
  // _get_indexes: -1 means "last element" (numpy indexes from the end).
  let previous = Math.floor(virtual);
  let next = previous + 1;
  if (virtual >= n - 1) {
    previous = -1;
    next = -1;
  }
  if (virtual < 0) {
    previous = 0;
    next = 0;
  }
  // _get_gamma uses the clipped previous index (-1 included), then fix_gamma.
  let gamma = virtual - previous;
  if (methodId === AVERAGED_INVERTED_CDF) gamma = gamma === 0 ? 0.5 : 1;
  else if (methodId === MIDPOINT) gamma = pyMod(virtual, 1) === 0 ? 0 : 0.5;
  plan.lo = previous < 0 ? n + previous : previous;
  plan.hi = next < 0 ? n + next : next;
  plan.gamma = gamma;
  plan.take = false;
}

/**
 * numpy's `_lerp`: `a + (b-a)*t`, replaced by `b - (b-a)*(1-t)` where t >= 0.5.
 * Where numpy's `b - a` overflows (opposite-sign neighbours near ±1.8e308) the
 * result would be ±inf or NaN; we return the finite `a*(1-t) + b*t` instead.
 */
export function lerpNumpy(a: number, b: number, t: number): number {
  const diff = b - a;
  let r = t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  if (diff === Infinity || diff === -Infinity) r = a * (1 - t) + b * t;
  return r;
}
