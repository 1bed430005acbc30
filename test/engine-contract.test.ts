// The QuantileEngine contract, written once against the interface and run over
// every engine kind (DDSketch-js style: the suite is a function of the engine).
// Anything the HTTP, storage and worker layers rely on is pinned here: append
// outcomes, summaries, pagination, snapshot round trips, validation errors with
// their codes and fields, the merge policy's run bound and offloaded merges.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineKind, MergeOffloader, QuantileEngine } from '../src/core/engine.js';
import { PoolqError, type ErrorCode } from '../src/core/errors.js';
import { QUANTILE_METHODS, type QuantileMethod } from '../src/core/methods.js';
import { assertSortedRun, trustSorted, type SortedRun } from '../src/core/sorted-run.js';
import type { TailPolicy } from '../src/core/pool-store.js';
import { encodeSorted, expandRun, type EncodingPolicy, type StoredRun } from '../src/core/stored-run.js';
import { createTestEngine, ENGINE_KINDS, NO_TAIL, TINY_TAIL } from './helpers/engines.js';
import { bitsHex, describeF64, quantileOfSorted, seededRandom, sortedCopy } from './helpers/oracle.js';

const CHECK_PERCENTILES = [0, 1e-9, 25, 33.3, 50, 99.5, 100 - 1e-9, 100];

function f64(...values: number[]): Float64Array {
  return Float64Array.from(values);
}

function runOf(values: ArrayLike<number>): SortedRun {
  const run = sortedCopy(values);
  assertSortedRun(run);
  return run;
}

/** Sort-merge of two runs, in the encoding the policy picks: what a worker would hand back. */
function mergeBySorting(a: StoredRun, b: StoredRun, policy: EncodingPolicy): StoredRun {
  const out = new Float64Array(a.count + b.count);
  out.set(expandRun(a));
  out.set(expandRun(b), a.count);
  out.sort();
  return encodeSorted(trustSorted(out), policy);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function catchPoolqError(action: () => unknown): PoolqError {
  try {
    action();
  } catch (err) {
    if (err instanceof PoolqError) return err;
    throw err;
  }
  throw new Error('expected a PoolqError, but nothing was thrown');
}

function expectPoolqError(action: () => unknown, code: ErrorCode, field?: string): void {
  const err = catchPoolqError(action);
  expect(err.code).toBe(code);
  if (field !== undefined) expect(err.field).toBe(field);
}

/** Every mismatch between the engine and the sort-based oracle, as readable lines. */
function oracleMismatches(engine: QuantileEngine, poolId: number, values: readonly number[]): string[] {
  const sorted = sortedCopy(values);
  const mismatches: string[] = [];
  for (const method of QUANTILE_METHODS) {
    const got = engine.quantiles(poolId, CHECK_PERCENTILES, method);
    CHECK_PERCENTILES.forEach((p, i) => {
      const want = quantileOfSorted(sorted, p, method);
      if (bitsHex(got[i]) !== bitsHex(want)) {
        mismatches.push(`${method} p=${p}: expected ${describeF64(want)}, got ${describeF64(got[i])}`);
      }
    });
  }
  return mismatches;
}

/** Everything observable about the engine, to show an operation changed nothing. */
function observableState(engine: QuantileEngine): unknown {
  // runsOf seals tails (possibly into counted runs), so stats are read after it.
  const pools = engine.poolIds().map((poolId) => ({
    summary: engine.summary(poolId),
    runs: engine.runsOf(poolId).map((run) => Array.from(run, bitsHex)),
    quantiles: engine.quantiles(poolId, CHECK_PERCENTILES, 'linear').map(bitsHex),
  }));
  return { pools, stats: engine.stats() };
}

function randomBatch(random: () => number, maxLength: number): number[] {
  const length = 1 + Math.floor(random() * maxLength);
  return Array.from({ length }, () => Math.round((random() - 0.5) * 2000) / 8);
}

/** `count` appends of 1..maxLength random values to `poolId`; `after` runs after each. Returns every value appended. */
function appendRandomBatches(
  engine: QuantileEngine,
  poolId: number,
  seed: number,
  count: number,
  maxLength: number,
  after?: () => void,
): number[] {
  const random = seededRandom(seed);
  const all: number[] = [];
  for (let i = 0; i < count; i++) {
    const batch = randomBatch(random, maxLength);
    engine.appendValues(poolId, Float64Array.from(batch));
    all.push(...batch);
    after?.();
  }
  return all;
}

/**
 * Every contract test runs with the service's default tail (small appends merge
 * into one mutable buffer per pool), with a tiny tail sealed every few appends,
 * and with no tail (every append its own run) — all with the automatic choice
 * of run encodings — and with each encoding forced on every run.
 */
interface Variant {
  tail: TailPolicy | undefined;
  encoding: EncodingPolicy;
}
const VARIANT_OPTIONS: Record<string, Variant> = {
  'default tail': { tail: undefined, encoding: 'auto' },
  'tiny tail': { tail: TINY_TAIL, encoding: 'auto' },
  'no tail': { tail: NO_TAIL, encoding: 'auto' },
  'plain runs forced': { tail: undefined, encoding: 'plain' },
  'counted runs forced': { tail: undefined, encoding: 'counted' },
};
const VARIANTS = ENGINE_KINDS.flatMap((kind) => Object.keys(VARIANT_OPTIONS).map((name) => [kind, name] as const));

describe.each(VARIANTS)('QuantileEngine contract: %s engine, %s', (kind: EngineKind, variantName: string) => {
  let engine: QuantileEngine;
  const { tail, encoding } = VARIANT_OPTIONS[variantName];
  /** For tests of the run structure itself: small appends must make runs, so the default tail is swapped for none. */
  const structuralTail = tail ?? NO_TAIL;

  beforeEach(async () => {
    engine = await createTestEngine(kind, tail, { encoding });
  });
  afterEach(async () => {
    engine.setMergeOffloader(null);
    await engine.whenMergesSettled();
  });

  it('is the engine that was asked for', () => {
    expect(engine.kind).toBe(kind);
  });

  describe('appending', () => {
    it('creates the pool on the first append and appends afterwards', () => {
      expect(engine.hasPool(7)).toBe(false);
      expect(engine.appendValues(7, f64(3, 1, 2))).toEqual({ created: true, count: 3 });
      expect(engine.appendValues(7, f64(5, 4))).toEqual({ created: false, count: 5 });
      expect(engine.appendSortedRun(7, runOf([0, 9]))).toEqual({ created: false, count: 7 });
      expect(engine.appendSortedRun(8, runOf([1]))).toEqual({ created: true, count: 1 });
      expect(engine.hasPool(7)).toBe(true);
      expect(engine.countOf(7)).toBe(7);
      expect(engine.countOf(8)).toBe(1);
      expect(engine.stats()).toMatchObject({ pools: 2, values: 8, valueBytes: 64 });
    });

    it("copies the caller's values and leaves them unsorted", () => {
      const input = f64(3, 1, 2);
      engine.appendValues(1, input);
      expect(Array.from(input)).toEqual([3, 1, 2]);
      input[0] = 100;
      expect(engine.summary(1).max).toBe(3);
    });

    it('sortBatch sorts in place, -0 before +0', () => {
      const batch = f64(2, 0, -0, -1, 0, -0);
      const run = engine.sortBatch(batch);
      expect(run).toBe(batch);
      expect(Array.from(run, bitsHex)).toEqual([-1, -0, -0, 0, 0, 2].map(bitsHex));
    });

    it('batches appended with no read between them read back as one sorted pool, -0 before +0', () => {
      // The tail keeps batches unmerged until a reader needs them; then it sorts and merges them.
      const batches = [[0, 3, -0], [-0, 0, -2], [1, -0], [0, 0, -0, 5], [-1]];
      for (const batch of batches) engine.appendValues(3, Float64Array.from(batch));
      const expected = Float64Array.from(batches.flat()).sort();
      expect(Array.from(engine.exportSorted(3), bitsHex)).toEqual(Array.from(expected, bitsHex));
      expect(engine.quantiles(3, [0, 100])).toEqual([-2, 5]);
      engine.appendValues(3, f64(-3, -0, 0, 9)); // one more batch after a read
      expect(engine.quantiles(3, [0, 100])).toEqual([-3, 9]);
      expect(Array.from(engine.exportSorted(3), bitsHex)).toEqual(
        Array.from(Float64Array.from([...batches.flat(), -3, -0, 0, 9]).sort(), bitsHex),
      );
    });

    it('rejects an empty batch without creating or changing a pool', () => {
      expectPoolqError(() => engine.appendValues(1, new Float64Array(0)), 'invalid_request', 'poolValues');
      expect(engine.hasPool(1)).toBe(false);
      engine.appendValues(2, f64(1));
      const before = observableState(engine);
      expectPoolqError(() => engine.appendValues(2, new Float64Array(0)), 'invalid_request', 'poolValues');
      expectPoolqError(() => engine.appendSortedRun(2, runOf([])), 'invalid_request', 'poolValues');
      expect(observableState(engine)).toEqual(before);
    });

    it.each([
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['-Infinity', Number.NEGATIVE_INFINITY],
    ])('rejects %s with invalid_request naming poolValues[i], changing nothing', (_name, bad) => {
      engine.appendValues(1, f64(1, 2, 3));
      const before = observableState(engine);
      for (const [values, index] of [
        [f64(bad), 0],
        [f64(5, 6, bad, 7), 2],
        [f64(5, 6, 7, bad), 3],
        [f64(5, bad, bad), 1],
      ] as const) {
        const copy = Float64Array.from(values);
        expectPoolqError(() => engine.appendValues(1, values), 'invalid_request', `poolValues[${index}]`);
        expectPoolqError(() => engine.appendValues(2, values), 'invalid_request', `poolValues[${index}]`);
        expectPoolqError(() => engine.sortBatch(copy), 'invalid_request', `poolValues[${index}]`);
      }
      expect(engine.hasPool(2)).toBe(false);
      expect(observableState(engine)).toEqual(before);
    });

    it('keeps a pool of one value repeated 1e6 times exact', () => {
      engine.appendValues(1, new Float64Array(1_000_000).fill(4.5));
      for (const method of QUANTILE_METHODS) {
        expect(engine.quantiles(1, CHECK_PERCENTILES, method).map(bitsHex), method).toEqual(CHECK_PERCENTILES.map(() => bitsHex(4.5)));
      }
      engine.appendValues(1, f64(-1));
      engine.appendValues(1, f64(10));
      expect(engine.summary(1)).toEqual({ poolId: 1, count: 1_000_002, min: -1, max: 10, windowSeconds: null });
      expect(engine.quantiles(1, [0, 1e-9, 50, 100 - 1e-9, 100], 'lower')).toEqual([-1, -1, 4.5, 4.5, 10]);
      expect(engine.quantile(1, 50)).toBe(4.5);
    });
  });

  describe('quantiles', () => {
    it('answers the seed example: [1, 7, 2, 6] at 99.5 is 6.984999999999999', () => {
      engine.appendValues(1, f64(1, 7, 2, 6));
      expect(bitsHex(engine.quantile(1, 99.5))).toBe(bitsHex(6.984999999999999));
      expect(bitsHex(engine.quantile(1, 99.5, 'linear'))).toBe(bitsHex(6.984999999999999));
    });

    it.each<[QuantileMethod, number[]]>([
      // numpy.percentile([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [0, 10, 25, 50, 75, 90, 100], method=…), numpy 2.4
      ['linear', [1, 1, 2.25, 3.5, 5, 6.299999999999999, 9]],
      ['lower', [1, 1, 2, 3, 5, 6, 9]],
      ['higher', [1, 1, 3, 4, 5, 9, 9]],
      ['nearest', [1, 1, 2, 3, 5, 6, 9]],
      ['midpoint', [1, 1, 2.5, 3.5, 5, 7.5, 9]],
      ['hazen', [1, 1, 2, 3.5, 5, 7.5, 9]],
      ['inverted_cdf', [1, 1, 2, 3, 5, 6, 9]],
    ])('answers several percentiles at once (%s)', (method, expected) => {
      engine.appendValues(1, f64(3, 1, 4, 1, 5));
      engine.appendValues(1, f64(9, 2, 6, 5, 3));
      const percentiles = [0, 10, 25, 50, 75, 90, 100];
      expect(engine.quantiles(1, percentiles, method).map(bitsHex)).toEqual(expected.map(bitsHex));
      percentiles.forEach((p, i) => expect(bitsHex(engine.quantile(1, p, method))).toBe(bitsHex(expected[i])));
    });

    it('drops cached answers when the pool changes', () => {
      engine.appendValues(1, f64(1, 2, 3));
      expect(engine.quantile(1, 100)).toBe(3);
      engine.appendValues(1, f64(4));
      expect(engine.quantile(1, 100)).toBe(4);
      engine.replacePool(1, [runOf([7])]);
      expect(engine.quantile(1, 100)).toBe(7);
    });

    it.each([-1e-9, -1, 100.0000001, 101, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
      'rejects percentile %s with invalid_request',
      (p) => {
        engine.appendValues(1, f64(1, 2, 3));
        const before = observableState(engine);
        expectPoolqError(() => engine.quantile(1, p), 'invalid_request', 'percentile');
        expectPoolqError(() => engine.quantiles(1, [50, p], 'lower'), 'invalid_request', 'percentile');
        expect(observableState(engine)).toEqual(before);
      },
    );

    it('rejects an unknown method with invalid_request', () => {
      engine.appendValues(1, f64(1, 2, 3));
      // The type forbids it; the engine still checks at run time.
      expectPoolqError(() => engine.quantile(1, 50, 'bogus' as QuantileMethod), 'invalid_request', 'method');
    });

    // Regression: PoolStore.quantiles looked the name up with `METHOD_ID[method] === undefined`,
    // so names inherited from Object.prototype passed the check and reached the kernels,
    // which threw a bare RangeError instead of PoolqError 'invalid_request'.
    it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty'])(
      'rejects the Object.prototype name %j as a method with invalid_request, not a RangeError',
      (name) => {
        engine.appendValues(1, f64(1, 2, 3));
        expectPoolqError(() => engine.quantile(1, 50, name as QuantileMethod), 'invalid_request', 'method');
      },
    );
  });

  describe('summary', () => {
    it('reports count, min and max', () => {
      engine.appendValues(3, f64(5, -2.5, 8));
      engine.appendValues(3, f64(1e-300));
      expect(engine.summary(3)).toEqual({ poolId: 3, count: 4, min: -2.5, max: 8, windowSeconds: null });
    });

    it.each<[string, number[][], number, number]>([
      ['one batch', [[0, -0]], -0, 0],
      ['+0 first, then -0', [[0], [-0]], -0, 0],
      ['-0 first, then +0', [[-0], [0]], -0, 0],
      ['only -0', [[-0], [-0, -0]], -0, -0],
      ['only +0', [[0], [0, 0]], 0, 0],
      [
        'zeros among negatives',
        [
          [-3, 0],
          [-0, -1],
        ],
        -3,
        0,
      ],
    ])('orders -0 before +0 (%s)', (_name, batches, min, max) => {
      for (const batch of batches) engine.appendValues(1, Float64Array.from(batch));
      const summary = engine.summary(1);
      expect(bitsHex(summary.min)).toBe(bitsHex(min));
      expect(bitsHex(summary.max)).toBe(bitsHex(max));
      expect(bitsHex(engine.quantile(1, 0, 'lower'))).toBe(bitsHex(min));
      expect(bitsHex(engine.quantile(1, 100, 'higher'))).toBe(bitsHex(max));
    });
  });

  describe('unknown pools', () => {
    it('answers pool_not_found, undefined or false', () => {
      engine.appendValues(1, f64(1));
      expectPoolqError(() => engine.quantile(2, 50), 'pool_not_found');
      expectPoolqError(() => engine.quantiles(2, [50], 'lower'), 'pool_not_found');
      expectPoolqError(() => engine.summary(2), 'pool_not_found');
      expectPoolqError(() => engine.runsOf(2), 'pool_not_found');
      expectPoolqError(() => engine.exportSorted(2), 'pool_not_found');
      expect(engine.hasPool(2)).toBe(false);
      expect(engine.countOf(2)).toBeUndefined();
      expect(engine.deletePool(2)).toBe(false);
      expect(engine.poolIds()).toEqual([1]);
    });
  });

  describe('deletePool', () => {
    it('removes the pool and its values, once', () => {
      engine.appendValues(1, f64(1, 2));
      engine.appendValues(2, f64(3, 4, 5));
      expect(engine.deletePool(1)).toBe(true);
      expect(engine.deletePool(1)).toBe(false);
      expect(engine.hasPool(1)).toBe(false);
      expectPoolqError(() => engine.quantile(1, 50), 'pool_not_found');
      expect(engine.poolIds()).toEqual([2]);
      expect(engine.stats()).toMatchObject({ pools: 1, values: 3, valueBytes: 24 });
      expect(engine.appendValues(1, f64(9))).toEqual({ created: true, count: 1 });
      expect(engine.quantile(1, 50)).toBe(9);
    });
  });

  describe('listPools', () => {
    const ids = [42, 7, 1000, 3, 15];

    beforeEach(() => {
      ids.forEach((poolId, i) => engine.appendValues(poolId, new Float64Array(i + 1).fill(poolId)));
    });

    it('pages in ascending poolId order with after / limit / next', () => {
      expect(engine.listPools(null, 2)).toEqual({
        pools: [
          { poolId: 3, count: 4 },
          { poolId: 7, count: 2 },
        ],
        next: 7,
      });
      expect(engine.listPools(7, 2)).toEqual({
        pools: [
          { poolId: 15, count: 5 },
          { poolId: 42, count: 1 },
        ],
        next: 42,
      });
      expect(engine.listPools(42, 2)).toEqual({ pools: [{ poolId: 1000, count: 3 }], next: null });
    });

    it('gives next = null when the last page is exactly full, and an empty page past the end', () => {
      expect(engine.listPools(7, 3).next).toBeNull();
      expect(engine.listPools(null, 5).next).toBeNull();
      expect(engine.listPools(null, 100).pools.map((p) => p.poolId)).toEqual([3, 7, 15, 42, 1000]);
      expect(engine.listPools(1000, 10)).toEqual({ pools: [], next: null });
      expect(engine.listPools(5000, 10)).toEqual({ pools: [], next: null });
    });

    it('treats `after` as a bound, not an id that must exist', () => {
      expect(engine.listPools(8, 1)).toEqual({ pools: [{ poolId: 15, count: 5 }], next: 15 });
      expect(engine.listPools(-1, 1)).toEqual({ pools: [{ poolId: 3, count: 4 }], next: 3 });
    });

    it('visits every pool exactly once when followed to the end, across deletes', () => {
      engine.deletePool(15);
      engine.appendValues(20, f64(1));
      const seen: number[] = [];
      let after: number | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const page = engine.listPools(after, 2);
        seen.push(...page.pools.map((p) => p.poolId));
        if (page.next === null) break;
        after = page.next;
      }
      expect(seen).toEqual([3, 7, 20, 42, 1000]);
      expect(engine.poolIds()).toEqual(seen);
    });
  });

  describe('snapshots: runsOf / exportSorted / replacePool', () => {
    /** Shrinking batches, so the merge policy keeps several runs. */
    function buildMultiRunPool(poolId: number): number[] {
      const random = seededRandom(11);
      const all: number[] = [];
      for (const size of [900, 250, 80, 20, 5]) {
        const batch = Array.from({ length: size }, () => Math.round((random() - 0.5) * 400) / 4);
        batch.push(-0, 0);
        engine.appendValues(poolId, Float64Array.from(batch));
        all.push(...batch);
      }
      return all;
    }

    it('round-trips the runs into another pool: same count, summary and every quantile', () => {
      const all = buildMultiRunPool(1);
      const runs = engine.runsOf(1);
      expect(runs.length).toBeGreaterThan(1);
      expect(runs.reduce((n, run) => n + run.length, 0)).toBe(all.length);
      for (const run of runs) expect(() => assertSortedRun(run)).not.toThrow();

      engine.replacePool(
        2,
        runs.map((run) => runOf(run)),
      );
      expect(engine.summary(2)).toEqual({ ...engine.summary(1), poolId: 2 });
      for (const method of QUANTILE_METHODS) {
        expect(engine.quantiles(2, CHECK_PERCENTILES, method).map(bitsHex), method).toEqual(
          engine.quantiles(1, CHECK_PERCENTILES, method).map(bitsHex),
        );
      }
      expect(oracleMismatches(engine, 2, all)).toEqual([]);
      expect(engine.stats()).toMatchObject({ pools: 2, values: 2 * all.length });
    });

    it('exports all values as one new sorted run', () => {
      const all = buildMultiRunPool(1);
      const exported = engine.exportSorted(1);
      expect(Array.from(exported, bitsHex)).toEqual(Array.from(sortedCopy(all), bitsHex));
      exported.fill(12345); // a new array: the pool must not see this
      expect(oracleMismatches(engine, 1, all)).toEqual([]);

      engine.replacePool(3, [engine.exportSorted(1)]);
      expect(engine.summary(3)).toEqual({ ...engine.summary(1), poolId: 3 });
      expect(oracleMismatches(engine, 3, all)).toEqual([]);
    });

    it('runs handed out (to a snapshot) never change: later appends do not write into them', () => {
      const random = seededRandom(12);
      const all: number[] = [];
      const appendBatch = (size: number) => {
        const batch = Array.from({ length: size }, () => Math.round((random() - 0.5) * 400) / 4);
        engine.appendValues(1, Float64Array.from(batch));
        all.push(...batch);
      };
      for (let i = 0; i < 7; i++) appendBatch(3);
      const runs = engine.runsOf(1);
      const before = runs.map((run) => Array.from(run, bitsHex));
      for (let i = 0; i < 50; i++) appendBatch(1 + (i % 5)); // fill, grow and seal tails after the hand-out
      expect(runs.map((run) => Array.from(run, bitsHex))).toEqual(before);
      expect(oracleMismatches(engine, 1, all)).toEqual([]);
    });

    it('handing out runs after every append (frequent snapshots) keeps O(log n) runs', () => {
      const all = appendRandomBatches(engine, 1, 13, 2000, 4, () => engine.runsOf(1));
      const runs = engine.runLengths(1).length;
      expect(runs, `${runs} runs for ${all.length} values`).toBeLessThanOrEqual(2 * Math.log2(all.length) + 2);
      expect(engine.runLengths(1).reduce((a, b) => a + b, 0)).toBe(all.length);
      expect(oracleMismatches(engine, 1, all)).toEqual([]);
    });

    it('exports a copy even when the pool is a single run', () => {
      engine.appendValues(1, f64(3, 1, 2));
      expect(engine.runsOf(1).length).toBe(1);
      const exported = engine.exportSorted(1);
      expect(Array.from(exported)).toEqual([1, 2, 3]);
      exported.fill(0);
      expect(engine.quantiles(1, [0, 50, 100], 'lower')).toEqual([1, 2, 3]);
    });

    it('replaces an existing pool wholesale', () => {
      buildMultiRunPool(1);
      engine.replacePool(1, [runOf([1, 2, 3]), runOf([10])]);
      expect(engine.summary(1)).toEqual({ poolId: 1, count: 4, min: 1, max: 10, windowSeconds: null });
      expect(oracleMismatches(engine, 1, [1, 2, 3, 10])).toEqual([]);
      expect(engine.stats()).toMatchObject({ pools: 1, values: 4 });
      expect(engine.appendValues(1, f64(0))).toEqual({ created: false, count: 5 });
    });
  });

  describe('merge policy', () => {
    beforeEach(async () => {
      engine = await createTestEngine(kind, structuralTail, { encoding });
    });

    it('keeps O(log n) runs over 2000 small appends', () => {
      const all = appendRandomBatches(engine, 1, 2000, 2000, 4);
      const n = all.length;
      const runs = engine.stats().runs;
      expect(runs).toBe(engine.runsOf(1).length);
      expect(runs, `${runs} runs for ${n} values`).toBeLessThanOrEqual(2 * Math.log2(n) + 2);
      expect(engine.countOf(1)).toBe(n);
      expect(oracleMismatches(engine, 1, all)).toEqual([]);
    });
  });

  describe('offloaded merges', () => {
    const POOL = 5;

    beforeEach(async () => {
      engine = await createTestEngine(kind, structuralTail, { encoding });
    });

    /** A worker stand-in that answers after `ms`, counting its calls. */
    function delayedOffloader(ms: number): { offloader: MergeOffloader; calls: () => number } {
      let calls = 0;
      return {
        offloader: async (a, b, policy) => {
          calls++;
          await sleep(ms);
          return mergeBySorting(a, b, policy);
        },
        calls: () => calls,
      };
    }

    it('answers correctly while delayed merges are in flight and after they land', async () => {
      const { offloader, calls } = delayedOffloader(3);
      engine.setMergeOffloader(offloader, 1);
      const random = seededRandom(5);
      const all: number[] = [];
      let sawInFlight = false;
      for (let i = 0; i < 120; i++) {
        const batch = randomBatch(random, 6);
        engine.appendValues(POOL, Float64Array.from(batch));
        all.push(...batch);
        if (engine.stats().mergesInFlight > 0) sawInFlight = true;
        if (i % 10 === 0) {
          expect(engine.countOf(POOL)).toBe(all.length);
          expect(oracleMismatches(engine, POOL, all), `after append ${i}`).toEqual([]);
        }
        if (i % 30 === 29) await sleep(5); // let some merges land between appends
      }
      expect(sawInFlight).toBe(true);
      expect(oracleMismatches(engine, POOL, all)).toEqual([]);

      await engine.whenMergesSettled();
      expect(calls()).toBeGreaterThan(0);
      expect(engine.stats().mergesInFlight).toBe(0);
      expect(engine.countOf(POOL)).toBe(all.length);
      expect(engine.stats().runs).toBeLessThanOrEqual(2 * Math.log2(all.length) + 2);
      expect(oracleMismatches(engine, POOL, all)).toEqual([]);
      expect(engine.summary(POOL)).toEqual({
        poolId: POOL,
        count: all.length,
        min: Math.min(...all),
        max: Math.max(...all),
        windowSeconds: null,
      });
    });

    it('falls back to an inline merge when the offloader rejects', async () => {
      let calls = 0;
      engine.setMergeOffloader(() => {
        calls++;
        return Promise.reject(new Error('worker crashed'));
      }, 1);
      const random = seededRandom(6);
      const all: number[] = [];
      for (let i = 0; i < 100; i++) {
        const batch = randomBatch(random, 6);
        engine.appendValues(POOL, Float64Array.from(batch));
        all.push(...batch);
      }
      await engine.whenMergesSettled();
      expect(calls).toBeGreaterThan(0);
      expect(engine.stats()).toMatchObject({ mergesInFlight: 0, values: all.length });
      expect(engine.countOf(POOL)).toBe(all.length);
      expect(engine.runsOf(POOL).reduce((n, run) => n + run.length, 0)).toBe(all.length);
      expect(engine.stats().runs).toBeLessThanOrEqual(2 * Math.log2(all.length) + 2);
      expect(oracleMismatches(engine, POOL, all)).toEqual([]);
    });

    it('forgets a pool deleted while its merge is in flight', async () => {
      engine.setMergeOffloader(delayedOffloader(10).offloader, 1);
      engine.appendValues(POOL, f64(1, 2, 3, 4, 4.5)); // 5 values: above the tiny tail's batch limit
      engine.appendValues(POOL, f64(5, 6, 7, 8, 8.5));
      expect(engine.stats().mergesInFlight).toBeGreaterThan(0);
      expect(engine.deletePool(POOL)).toBe(true);
      expect(engine.hasPool(POOL)).toBe(false);

      await engine.whenMergesSettled();
      expect(engine.hasPool(POOL)).toBe(false);
      expect(engine.countOf(POOL)).toBeUndefined();
      expect(engine.stats()).toMatchObject({ pools: 0, values: 0, runs: 0, mergesInFlight: 0 });
    });

    it('does not let a stale merge land in a pool recreated under the same id', async () => {
      engine.setMergeOffloader(delayedOffloader(10).offloader, 1);
      engine.appendValues(POOL, f64(1, 2, 3, 4, 4.5)); // 5 values: above the tiny tail's batch limit
      engine.appendValues(POOL, f64(5, 6, 7, 8, 8.5));
      expect(engine.stats().mergesInFlight).toBeGreaterThan(0);
      engine.deletePool(POOL);
      expect(engine.appendValues(POOL, f64(100, 200))).toEqual({ created: true, count: 2 });

      await engine.whenMergesSettled();
      expect(engine.countOf(POOL)).toBe(2);
      expect(engine.summary(POOL)).toEqual({ poolId: POOL, count: 2, min: 100, max: 200, windowSeconds: null });
      expect(oracleMismatches(engine, POOL, [100, 200])).toEqual([]);
      expect(engine.stats()).toMatchObject({ pools: 1, values: 2 });
    });
  });
});

describe.each(ENGINE_KINDS)('regressions: %s engine', (kind: EngineKind) => {
  it('the neighbour after a negative subnormal is -0, not a +0 from another run (found by fast-check)', async () => {
    const engine = await createTestEngine(kind, NO_TAIL);
    // Two runs, each holding a ±0; the upper neighbour of rank 1 must follow the
    // total order (-0 before +0) whichever run its zero sits in.
    const a = [-5e-324, 0, 0, 1, 2, 3, 4, 5, 6];
    const b = [-5e-324, -0, 2.2e-308, 1.7e308];
    engine.appendSortedRun(1, Float64Array.from(a) as SortedRun);
    engine.appendSortedRun(1, Float64Array.from(b) as SortedRun); // 9 > 2 * 4: stays a separate run
    expect(engine.stats().runs).toBe(2);
    const got = engine.quantile(1, 12.5, 'linear'); // virtual index 1.5: ranks 1 and 2
    expect(bitsHex(got)).toBe(bitsHex(quantileOfSorted(sortedCopy([...a, ...b]), 12.5, 'linear')));
    expect(Object.is(got, -0)).toBe(true);
  });
});
