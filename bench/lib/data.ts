// Data for the engine benchmarks: seeded uniform float64 (so every run and
// both engines see the same values), sorted runs made without sorting, pools
// built the way clients build them (many appends), and the run layout that
// makes one small append cascade through every run of a pool.

import type { QuantileEngine } from '../../src/core/engine.js';
import { allocateRun, trustSorted, type SortedRun } from '../../src/core/sorted-run.js';

/** mulberry32 (Tommy Ettinger): 32 random bits per call; small, fast, passes gjrand/PractRand for this use. */
export function rng32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform doubles in [0, 1) with 53 random bits, from two mulberry32 streams. */
export type Rng = () => number;

export function seededRng(seed: number): Rng {
  const hi = rng32(seed);
  const lo = rng32(seed ^ 0x9e3779b9);
  return () => ((hi() >>> 5) * 67108864 + (lo() >>> 6)) / 9007199254740992; // (27 + 26 bits) / 2^53
}

export function fillUniform(out: Float64Array, rng: Rng): Float64Array {
  for (let i = 0; i < out.length; i++) out[i] = rng();
  return out;
}

export function uniform(n: number, rng: Rng): Float64Array {
  return fillUniform(new Float64Array(n), rng);
}

/**
 * A sorted sample of n uniforms in O(n), without sorting: normalised partial
 * sums of n + 1 standard exponentials are distributed as uniform order
 * statistics (Devroye, Non-Uniform Random Variate Generation, 1986, V.2).
 * Stored like pool runs (allocateRun: SharedArrayBuffer from 32 Ki values).
 */
export function sortedUniform(n: number, rng: Rng): SortedRun {
  const run = allocateRun(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum -= Math.log(1 - rng());
    run[i] = sum;
  }
  const total = sum - Math.log(1 - rng());
  for (let i = 0; i < n; i++) run[i] /= total;
  return trustSorted(run);
}

/** `count` distinct batches of `size` values, reused round-robin by the timed functions. */
export function batchRing(count: number, size: number, rng: Rng): Float64Array[] {
  return Array.from({ length: count }, () => uniform(size, rng));
}

/** Builds a pool of `total` values through appends of `batchSize`, as HTTP clients would. */
export function buildPool(engine: QuantileEngine, poolId: number, total: number, batchSize: number, rng: Rng): void {
  const batch = new Float64Array(batchSize);
  for (let done = 0; done < total; ) {
    const m = Math.min(batchSize, total - done);
    const view = m === batchSize ? batch : batch.subarray(0, m);
    fillUniform(view, rng);
    engine.appendValues(poolId, view);
    done += m;
  }
}

/**
 * Run lengths, oldest (largest) first, that PoolStore keeps as they are (each
 * run more than MERGE_RATIO = 2 times the next) but that one append of `batch`
 * values merges into a single run: run j is at most twice the sum of the
 * append and all younger runs, so each merge qualifies the next. Lengths grow
 * as slowly as allowed (×2) so the chain has as many runs as a grown pool;
 * the oldest run is sized so the total comes close to `target`.
 */
export function cascadeLengths(batch: number, target: number): number[] {
  const newestFirst: number[] = [];
  let sum = 0; // values in the chain so far
  let next = 2 * batch; // the youngest run may be up to 2 × the append
  for (;;) {
    const after = 2 * next + 1;
    if (sum + next + after > target) {
      // `next` becomes the oldest run: as large as the target allows, within the policy.
      const max = 2 * (batch + sum);
      newestFirst.push(Math.min(Math.max(target - sum, next), max));
      break;
    }
    newestFirst.push(next);
    sum += next;
    next = after;
  }
  return newestFirst.reverse();
}

export function cascadeChain(batch: number, target: number, rng: Rng): SortedRun[] {
  return cascadeLengths(batch, target).map((length) => sortedUniform(length, rng));
}
