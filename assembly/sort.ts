// Float64 sort for the WASM engine: LSD radix sort over order-preserving u64
// keys (radixKey in order.ts), 11-bit digits in six passes (10 in seven for
// large inputs). Measured here at
// 3.4–5.6× Float64Array.prototype.sort from 1e4 values up (docs/performance).
// Insertion sort takes small inputs, where clearing the histograms dominates.
//
// The kernel never allocates and keeps no static mutable state: the caller
// (src/core/wasm-kernels.ts) hands it the data, a scratch buffer of the same
// size and a histogram area, so one module instance per worker is all the
// isolation needed.

import { orderKey, radixKey, radixKeyToBits } from './order';

// Digit width by size. Up to ~2^18 values (2 MiB, in cache) fewer passes
// win: 11-bit digits, six passes. Beyond, scattering into 2048 destination
// pages at once costs more than a seventh pass: 10-bit digits (10^6 random
// doubles 28-33 ms against 37-43 ms; 10^5 2.7 against 2.9 ms the other way).
const NARROW_DIGITS_MIN: i32 = 1 << 18;

@inline
function bucketsOf(bits: u64): usize {
  return <usize>1 << <usize>bits;
}

@inline
function passesOf(bits: u64): i32 {
  return <i32>((64 + bits - 1) / bits);
}

/** The larger histogram of the two widths: 6 passes × 2048 u32 counters (7 × 1024 is 28 KiB). */
const HISTOGRAM_BYTES: usize = 6 * 2048 * 4;

/** Below this length insertion sort beats six radix passes plus a 48 KiB histogram clear. */
const INSERTION_SORT_MAX: i32 = 64;

/** Bytes of the histogram area sortF64 needs. */
export function sortHistogramBytes(): usize {
  return HISTOGRAM_BYTES;
}

/**
 * Sorts `n` float64 values at `data` ascending (-0 before +0, no NaN).
 * `scratch` must hold `n` float64 values and must not overlap `data`;
 * `histogram` must hold sortHistogramBytes() bytes. Both are clobbered.
 * Returns the address of the sorted values: `data` or `scratch`, whichever
 * the last radix pass wrote — copying the result back would cost a pass.
 */
export function sortF64(data: usize, n: i32, scratch: usize, histogram: usize): usize {
  assert(n >= 0);
  if (n < 2) return data;
  if (n < INSERTION_SORT_MAX) {
    insertionSort(data, n);
    return data;
  }
  // Literal widths: each inlined copy of radixSort is specialised for its own.
  if (n >= NARROW_DIGITS_MIN) return radixSort(data, n, scratch, histogram, 10);
  return radixSort(data, n, scratch, histogram, 11);
}

/** Straight insertion sort comparing orderKey values (signed i64 compare). */
function insertionSort(data: usize, n: i32): void {
  const end = data + (<usize>n << 3);
  for (let p = data + 8; p < end; p += 8) {
    const bits = load<i64>(p);
    const key = orderKey(bits);
    let q = p;
    while (q > data) {
      const prev = load<i64>(q - 8);
      if (orderKey(prev) <= key) break;
      store<i64>(q, prev);
      q -= 8;
    }
    store<i64>(q, bits);
  }
}

@inline
function digitOf(key: u64, pass: i32, bits: u64): usize {
  return <usize>((key >> (<u64>pass * bits)) & (<u64>bucketsOf(bits) - 1));
}

@inline
function radixSort(data: usize, n: i32, scratch: usize, histogram: usize, bits: u64): usize {
  const count = <usize>n;
  const end = data + (count << 3);
  const BUCKETS = bucketsOf(bits);
  const PASSES = passesOf(bits);

  // One read pass builds every digit histogram.
  memory.fill(histogram, 0, <usize>PASSES * BUCKETS * 4);
  for (let p = data; p < end; p += 8) {
    const key = radixKey(load<u64>(p));
    for (let pass = 0; pass < PASSES; pass++) {
      const slot = histogram + ((<usize>pass * BUCKETS + digitOf(key, pass, bits)) << 2);
      store<u32>(slot, load<u32>(slot) + 1);
    }
  }

  // A pass whose digit is the same for every value would move nothing: skip it.
  // (Any one key tells which bucket that would be.) Uniform data in a narrow
  // range, or small integers, often skips the top passes.
  const anyKey = radixKey(load<u64>(data));
  let active: u32 = 0;
  for (let pass = 0; pass < PASSES; pass++) {
    const slot = histogram + ((<usize>pass * BUCKETS + digitOf(anyKey, pass, bits)) << 2);
    if (load<u32>(slot) != <u32>count) active |= <u32>1 << <u32>pass;
  }
  if (active == 0) return data; // every value has the same bits

  let src = data;
  let dst = scratch;
  let first = true;
  while (active != 0) {
    const pass = <i32>ctz(active);
    active &= active - 1;
    const last = active == 0;
    const counts = histogram + ((<usize>pass * BUCKETS) << 2);
    exclusivePrefixSum(counts, BUCKETS);
    // The first pass reads raw float bits and the last writes them, so keys
    // never need a separate conversion pass. Constant flags let the optimizer
    // specialise each inlined copy of the loop.
    if (first) {
      if (last) scatter(src, dst, count, counts, pass, bits, true, true);
      else scatter(src, dst, count, counts, pass, bits, true, false);
    } else {
      if (last) scatter(src, dst, count, counts, pass, bits, false, true);
      else scatter(src, dst, count, counts, pass, bits, false, false);
    }
    first = false;
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}

function exclusivePrefixSum(counts: usize, buckets: usize): void {
  let sum: u32 = 0;
  const end = counts + (buckets << 2);
  for (let p = counts; p < end; p += 4) {
    const c = load<u32>(p);
    store<u32>(p, sum);
    sum += c;
  }
}

@inline
function scatter(src: usize, dst: usize, count: usize, counts: usize, pass: i32, bits: u64, rawIn: bool, rawOut: bool): void {
  const end = src + (count << 3);
  const shift = <u64>pass * bits;
  const mask = <u64>bucketsOf(bits) - 1;
  for (let p = src; p < end; p += 8) {
    const word = load<u64>(p);
    const key = rawIn ? radixKey(word) : word;
    const slot = counts + (<usize>((key >> shift) & mask) << 2);
    const pos = load<u32>(slot);
    store<u32>(slot, pos + 1);
    store<u64>(dst + (<usize>pos << 3), rawOut ? (rawIn ? word : radixKeyToBits(key)) : key);
  }
}
