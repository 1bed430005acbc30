// numpy.percentile's index arithmetic for the WASM engine: the twin of
// src/core/quantile-math.ts, ported operation for operation (same operands,
// same evaluation order, same constants) so every float64 result is
// bit-identical; test/wasm-kernels.test.ts checks that on a grid of n × p ×
// all 13 methods. Source: numpy/lib/_function_base_impl.py (numpy 2.x),
// `_QuantileMethods`, `_compute_virtual_index`, `_get_indexes`, `_get_gamma`,
// `_lerp`. Method ids are the indices of QUANTILE_METHODS in methods.ts.
//
// ABI: planQuantile writes four f64 at `out` — lo, hi, gamma, take (1 or 0) —
// and returns a status (0 ok, 1 unknown method); the adapter turns status 1
// into the same RangeError the TS twin throws.

const LINEAR: i32 = 0;
const INVERTED_CDF: i32 = 1;
const AVERAGED_INVERTED_CDF: i32 = 2;
const CLOSEST_OBSERVATION: i32 = 3;
const INTERPOLATED_INVERTED_CDF: i32 = 4;
const HAZEN: i32 = 5;
const WEIBULL: i32 = 6;
const MEDIAN_UNBIASED: i32 = 7;
const NORMAL_UNBIASED: i32 = 8;
const LOWER: i32 = 9;
const HIGHER: i32 = 10;
const NEAREST: i32 = 11;
const MIDPOINT: i32 = 12;

export const PLAN_OK: i32 = 0;
export const PLAN_UNKNOWN_METHOD: i32 = 1;

/** Python's `%` (sign of the divisor). AssemblyScript's f64 `%` is fmod, exact like JS `%`. */
@inline
function pyMod(x: f64, m: f64): f64 {
  const r = x % m;
  return r != 0 && (r < 0) != (m < 0) ? r + m : r;
}

/** np.around: round half to even. */
@inline
function roundHalfEven(x: f64): f64 {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return pyMod(f, 2) == 0 ? f : f + 1;
}

/** `n * q + (alpha + q * (1 - alpha - beta)) - 1` in numpy's evaluation order. */
@inline
function computeVirtualIndex(n: f64, q: f64, alpha: f64, beta: f64): f64 {
  return n * q + (alpha + q * (1 - alpha - beta)) - 1;
}

@inline
function writeTake(out: usize, rank: f64): i32 {
  store<f64>(out, rank);
  store<f64>(out, rank, 8);
  store<f64>(out, 0, 16);
  store<f64>(out, 1, 24);
  return PLAN_OK;
}

/** `_discrete_interpolation_to_boundaries` for inverted_cdf: previous iff gamma == 0, clipped at 0. */
@inline
function invertedCdfRank(index: f64): f64 {
  const previous = Math.floor(index);
  const next = previous + 1;
  const gamma = index - previous;
  const res = gamma == 0 ? previous : next;
  return res < 0 ? 0 : res;
}

/** The same for closest_observation: previous iff gamma == 0 and floor(index) is odd. */
@inline
function closestObservationRank(index: f64): f64 {
  const previous = Math.floor(index);
  const next = previous + 1;
  const gamma = index - previous;
  const res = gamma == 0 && pyMod(Math.floor(index), 2) == 1 ? previous : next;
  return res < 0 ? 0 : res;
}

export function planQuantile(n: f64, percentile: f64, method: i32, out: usize): i32 {
  const q = percentile / 100; // np.true_divide(q, 100)
  let virtualIndex: f64;
  switch (method) {
    case INVERTED_CDF:
      return writeTake(out, invertedCdfRank(n * q - 1));
    case CLOSEST_OBSERVATION:
      return writeTake(out, closestObservationRank(n * q - 1 - 0.5));
    case LOWER:
      return writeTake(out, Math.floor((n - 1) * q));
    case HIGHER:
      return writeTake(out, Math.ceil((n - 1) * q));
    case NEAREST:
      return writeTake(out, roundHalfEven((n - 1) * q));
    case LINEAR:
      virtualIndex = (n - 1) * q;
      break;
    case AVERAGED_INVERTED_CDF:
      virtualIndex = n * q - 1;
      break;
    case INTERPOLATED_INVERTED_CDF:
      virtualIndex = computeVirtualIndex(n, q, 0, 1);
      break;
    case HAZEN:
      virtualIndex = computeVirtualIndex(n, q, 0.5, 0.5);
      break;
    case WEIBULL:
      virtualIndex = computeVirtualIndex(n, q, 0, 0);
      break;
    case MEDIAN_UNBIASED:
      virtualIndex = computeVirtualIndex(n, q, 1 / 3.0, 1 / 3.0);
      break;
    case NORMAL_UNBIASED:
      virtualIndex = computeVirtualIndex(n, q, 3 / 8.0, 3 / 8.0);
      break;
    case MIDPOINT: {
      const h = (n - 1) * q;
      virtualIndex = 0.5 * (Math.floor(h) + Math.ceil(h));
      break;
    }
    default:
      return PLAN_UNKNOWN_METHOD;
  }
  // _get_indexes: -1 means "last element" (numpy indexes from the end).
  let previous = Math.floor(virtualIndex);
  let next = previous + 1;
  if (virtualIndex >= n - 1) {
    previous = -1;
    next = -1;
  }
  if (virtualIndex < 0) {
    previous = 0;
    next = 0;
  }
  // _get_gamma uses the clipped previous index (-1 included), then fix_gamma.
  let gamma = virtualIndex - previous;
  if (method == AVERAGED_INVERTED_CDF) gamma = gamma == 0 ? 0.5 : 1;
  else if (method == MIDPOINT) gamma = pyMod(virtualIndex, 1) == 0 ? 0 : 0.5;
  store<f64>(out, previous < 0 ? n + previous : previous);
  store<f64>(out, next < 0 ? n + next : next, 8);
  store<f64>(out, gamma, 16);
  store<f64>(out, 0, 24);
  return PLAN_OK;
}

/**
 * numpy's `_lerp`: `a + (b-a)*t`, replaced by `b - (b-a)*(1-t)` where t >= 0.5.
 * Where numpy's `b - a` overflows (opposite-sign neighbours near ±1.8e308) the
 * result would be ±inf or NaN; we return the finite `a*(1-t) + b*t` instead.
 * WASM has no fused multiply-add, so each operation rounds exactly as in JS.
 */
export function lerp(a: f64, b: f64, t: f64): f64 {
  const diff = b - a;
  let r = t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  if (diff == Infinity || diff == -Infinity) r = a * (1 - t) + b * t;
  return r;
}
