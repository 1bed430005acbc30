// The engine's total order on float64 bit patterns, shared by sort and merge:
// ascending, -0 before +0, identical to Float64Array.prototype.sort for
// non-NaN input (ECMA-262 TypedArray SortCompare). NaN never gets here: the
// HTTP boundary rejects non-finite values (AssemblyScript and JS would order
// NaN differently).

/**
 * Maps float64 bits (as i64) to an i64 whose *signed* order is the float order.
 * Negative floats get their 63 magnitude bits flipped, so a larger magnitude
 * becomes a smaller integer; -0 (0x8000…0) becomes -1, just below +0 (0).
 * The map is its own inverse.
 */
@inline
export function orderKey(bits: i64): i64 {
  return bits ^ <i64>(<u64>(bits >> 63) >> 1);
}

/**
 * Maps float64 bits to a u64 whose *unsigned* order is the float order (the
 * radix sort's key): flip every bit of a negative, only the sign bit of a
 * non-negative. Equivalent to orderKey with the sign bit flipped.
 */
@inline
export function radixKey(bits: u64): u64 {
  return bits ^ (<u64>(<i64>bits >> 63) | 0x8000000000000000);
}

/** Inverse of radixKey: a set top bit means the float was non-negative. */
@inline
export function radixKeyToBits(key: u64): u64 {
  return key ^ (((key >> 63) - 1) | 0x8000000000000000);
}
