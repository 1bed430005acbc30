// Data for the benches: seeded uniform float64 (every run and both engines see
// the same values), sorted runs made without sorting, pools built the way
// clients build them (many appends), and the run layout that makes one small
// append cascade through every run of a pool.

import type { QuantileEngine } from '../../src/core/engine.js';
import type { EngineKind } from '../../src/core/kernels.js';
import { allocateRun, trustSorted, type SortedRun } from '../../src/core/sorted-run.js';
import { progress } from './engine-bench.js';
import { fmtCount } from './report.js';

/** mulberry32 (Tommy Ettinger): 32 random bits per call. */
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

/** Doubles spread over ±5·10^5, fresh each call (bulk ingest bodies: every radix pass of the sort is active). */
export const wideDouble: Rng = () => Math.random() * 1e6 - 5e5;

export function uniform(n: number, rng: Rng, out: Float64Array = new Float64Array(n)): Float64Array {
  for (let i = 0; i < out.length; i++) out[i] = rng();
  return out;
}

/**
 * n sorted uniforms in O(n), without sorting: normalised partial sums of n + 1
 * exponentials are distributed as uniform order statistics (Devroye,
 * Non-Uniform Random Variate Generation, 1986, V.2). Stored like pool runs.
 */
export function sortedUniform(n: number, rng: Rng): SortedRun {
  const run = allocateRun(n);
  let sum = 0;
  for (let i = 0; i < n; i++) run[i] = sum -= Math.log(1 - rng());
  const total = sum - Math.log(1 - rng());
  for (let i = 0; i < n; i++) run[i] /= total;
  return trustSorted(run);
}

/** `n` strictly increasing doubles from `base` (steps in (0, 1], full mantissas): 1e8 of them in well under a second. */
export function fastSortedRun(n: number, base: number, next: () => number): SortedRun {
  const run = allocateRun(n);
  let v = base;
  for (let i = 0; i < n; i++) run[i] = v += (next() + 1) * 2.3283064365386963e-10;
  return trustSorted(run);
}

/** `count` distinct batches of `size` values, reused round-robin by timed functions. */
export function batchRing(count: number, size: number, rng: Rng): Float64Array[] {
  return Array.from({ length: count }, () => uniform(size, rng));
}

/** Builds a pool of `total` values through appends of `batchSize`, as clients would. */
export function buildPool(engine: QuantileEngine, poolId: number, total: number, batchSize: number, rng: Rng): void {
  const batch = new Float64Array(batchSize);
  for (let done = 0; done < total; done += batchSize) {
    const m = Math.min(batchSize, total - done);
    engine.appendValues(poolId, uniform(m, rng, m === batchSize ? batch : batch.subarray(0, m)));
  }
}

export interface PoolFixture {
  engine: QuantileEngine;
  poolId: number;
  size: number;
  /** The pool's runs once built, to reset to. */
  snapshot: readonly SortedRun[];
}

/** One pool per size in each engine (same seed per size, merges inline), keyed `${kind}:${size}`. */
export function buildPoolFixtures(engines: readonly QuantileEngine[], sizes: readonly number[], batch: number): Map<string, PoolFixture> {
  const fixtures = new Map<string, PoolFixture>();
  for (const engine of engines) {
    engine.setMergeOffloader(null);
    for (const [poolId, size] of sizes.entries()) {
      const t = performance.now();
      buildPool(engine, poolId, size, batch, seededRng(size));
      fixtures.set(fixtureKey(engine.kind, size), { engine, poolId, size, snapshot: engine.runsOf(poolId) });
      progress(`  built ${engine.kind} pool of ${fmtCount(size)} in ${((performance.now() - t) / 1000).toFixed(2)} s`);
    }
  }
  return fixtures;
}

export function fixtureKey(kind: EngineKind, size: number): string {
  return `${kind}:${size}`;
}

/**
 * Run lengths, oldest (largest) first, that PoolStore keeps as they are (each
 * more than twice the next) but that one append of `batch` values merges into
 * a single run: run j is at most twice the sum of the append and all younger
 * runs, so each merge qualifies the next. Lengths grow as slowly as allowed so
 * the chain has as many runs as a grown pool; the total comes close to `target`.
 */
export function cascadeLengths(batch: number, target: number): number[] {
  const newestFirst: number[] = [];
  let sum = 0;
  let next = 2 * batch;
  for (;;) {
    const after = 2 * next + 1;
    if (sum + next + after > target) {
      newestFirst.push(Math.min(Math.max(target - sum, next), 2 * (batch + sum)));
      return newestFirst.reverse();
    }
    newestFirst.push(next);
    sum += next;
    next = after;
  }
}

export function cascadeChain(batch: number, target: number, rng: Rng): SortedRun[] {
  return cascadeLengths(batch, target).map((length) => sortedUniform(length, rng));
}
