// A SortedRun is an immutable Float64Array sorted ascending in the engine's
// total order (-0 before +0, no NaN). Immutability is what lets a piscina worker
// merge runs while queries keep reading them. The brand carries the invariant
// in the type (tinybench style); only sorters and `assertSortedRun` mint it.

declare const sortedBrand: unique symbol;
export type SortedRun = Float64Array & { readonly [sortedBrand]: true };

/** Runs at least this long live on SharedArrayBuffers so workers read them without copying. */
export const SHARED_RUN_MIN_LENGTH = 1 << 15;

/** Allocates storage for a run of `length` values (shared when large). */
export function allocateRun(length: number): Float64Array {
  if (length >= SHARED_RUN_MIN_LENGTH) return new Float64Array(new SharedArrayBuffer(length * 8));
  return new Float64Array(length);
}

/** Batches up to this many values may share a slab (allocateBatch). */
export const SLAB_BATCH_MAX_VALUES = 128;
const BATCH_SLAB_BYTES = 256 << 10;
let slab = new ArrayBuffer(BATCH_SLAB_BYTES);
let slabUsed = 0;

/**
 * Storage for an incoming batch. Small batches are carved out of a shared
 * 256 KiB slab instead of getting a backing store each (V8 keeps typed arrays
 * over 64 bytes off its heap: a malloc, a tracking record and GC work per
 * request; +8 % appends/s, npm run bench:ab, 4 rounds 1.01–1.10). A slab is
 * freed once every batch in it is garbage. The engine copies batches this small
 * into the pool's tail (DEFAULT_TAIL.appendMaxValues is the same 128), so what
 * keeps a slab alive is the write-ahead log until the record is written and
 * synced; with a tail policy that keeps them as runs (tests) a run pins its slab.
 * Never hand these to a worker: cloning a view clones its whole slab.
 */
export function allocateBatch(length: number): Float64Array {
  if (length > SLAB_BATCH_MAX_VALUES) return allocateRun(length);
  const bytes = length * 8;
  if (slabUsed + bytes > BATCH_SLAB_BYTES) {
    slab = new ArrayBuffer(BATCH_SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Float64Array(slab, slabUsed, length);
  slabUsed += bytes;
  return out;
}

/** -0 sorts before +0, as in Float64Array.prototype.sort and the radix kernel. */
export function totalLess(a: number, b: number): boolean {
  return a < b || (a === 0 && b === 0 && Object.is(a, -0) && !Object.is(b, -0));
}

export function assertSortedRun(values: Float64Array): asserts values is SortedRun {
  for (let i = 1; i < values.length; i++) {
    if (totalLess(values[i], values[i - 1]) || Number.isNaN(values[i])) {
      throw new Error(`run is not sorted at index ${i}: ${values[i - 1]} > ${values[i]}`);
    }
  }
}

/** Mints the brand without a check: for kernels that just sorted or merged. */
export function trustSorted(values: Float64Array): SortedRun {
  return values as SortedRun;
}
