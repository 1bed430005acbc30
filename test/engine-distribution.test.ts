// The distribution reads of the QuantileEngine contract — histogram and rank —
// run over every engine kind and tail policy, against a sort-based oracle:
// copy the pool, sort it, and count by scanning. fast-check draws the pools
// (ties, ±0, extremes of float64), the bin counts and the ranges.

import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_HISTOGRAM_BINS } from '../src/core/distribution.js';
import type { EngineKind, QuantileEngine } from '../src/core/engine.js';
import { PoolqError } from '../src/core/errors.js';
import type { TailPolicy } from '../src/core/pool-store.js';
import { createTestEngine, ENGINE_KINDS, NO_TAIL, TINY_TAIL } from './helpers/engines.js';
import { sortedCopy } from './helpers/oracle.js';

/** numpy.histogram by scanning a sorted copy: edges from numpy.linspace, [lo, hi) bins, the last one closed. */
function oracleHistogram(
  values: readonly number[],
  bins: number,
  lo: number,
  hi: number,
): { counts: number[]; edges: number[]; below: number; above: number } {
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const delta = hi - lo;
  const step = delta / bins;
  // numpy.linspace: i * step + lo, or (i / bins) * delta + lo where the step underflows to 0.
  // …and never past hi (a step rounded up in subnormal ranges).
  const edges = Array.from({ length: bins + 1 }, (_, i) => {
    const edge = i === bins ? hi : step === 0 ? (i / bins) * delta + lo : i * step + lo;
    return edge > hi ? hi : edge;
  });
  const counts = new Array<number>(bins).fill(0);
  let below = 0;
  let above = 0;
  for (const v of sortedCopy(values)) {
    if (v < lo) below++;
    else if (v > hi) above++;
    else {
      let i = 0;
      while (i < bins - 1 && v >= edges[i + 1]) i++;
      counts[i]++;
    }
  }
  return { counts, edges, below, above };
}

function oracleRank(values: readonly number[], x: number): { below: number; equal: number } {
  let below = 0;
  let equal = 0;
  for (const v of values) {
    if (v < x) below++;
    else if (v === x) equal++;
  }
  return { below, equal };
}

function expectError(action: () => unknown, code: string, field: string): void {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(PoolqError);
    expect((err as PoolqError).code).toBe(code);
    expect((err as PoolqError).field).toBe(field);
    return;
  }
  throw new Error(`expected ${code} on ${field}, nothing was thrown`);
}

/** Appends `values` in batches of `batch` so pools hold several runs and a tail. */
function fill(engine: QuantileEngine, poolId: number, values: readonly number[], batch: number): void {
  for (let i = 0; i < values.length; i += batch) engine.appendValues(poolId, Float64Array.from(values.slice(i, i + batch)));
}

const TAILS: Record<string, TailPolicy | undefined> = { 'default tail': undefined, 'tiny tail': TINY_TAIL, 'no tail': NO_TAIL };
const VARIANTS = ENGINE_KINDS.flatMap((kind) => Object.keys(TAILS).map((tail) => [kind, tail] as const));

/** Finite doubles with many ties and both zeros: what makes bin edges and rank counts interesting. */
const valueArb = fc.oneof(
  fc.integer({ min: -20, max: 20 }).map((n) => n / 4),
  fc.constantFrom(-0, 0, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

describe.each(VARIANTS)('distribution reads: %s engine, %s', (kind: EngineKind, tailName: string) => {
  let engine: QuantileEngine;
  beforeEach(async () => {
    engine = await createTestEngine(kind, TAILS[tailName]);
  });

  describe('histogram', () => {
    it('counts [1, 2, 2, 3, 10] into numpy.histogram(bins=3) bins', () => {
      engine.appendValues(1, Float64Array.from([10, 2, 1, 3, 2]));
      const h = engine.histogram(1, 3);
      expect(h).toMatchObject({ poolId: 1, count: 5, min: 1, max: 10, below: 0, above: 0 });
      expect(h.bins).toEqual([
        { lo: 1, hi: 4, count: 4 },
        { lo: 4, hi: 7, count: 0 },
        { lo: 7, hi: 10, count: 1 },
      ]);
    });

    it('closes only the last bin: a value on an inner edge goes up, the maximum stays in', () => {
      engine.appendValues(1, Float64Array.from([0, 1, 2]));
      expect(engine.histogram(1, 2).bins.map((b) => b.count)).toEqual([1, 2]);
    });

    it('widens a one-point range by 0.5 each side, as numpy does', () => {
      engine.appendValues(1, Float64Array.from([5, 5, 5]));
      expect(engine.histogram(1, 2).bins).toEqual([
        { lo: 4.5, hi: 5, count: 0 },
        { lo: 5, hi: 5.5, count: 3 },
      ]);
    });

    it('counts values outside an asked range as below and above', () => {
      engine.appendValues(1, Float64Array.from([-5, 0, 1, 2, 3, 99]));
      const h = engine.histogram(1, 2, { min: 0, max: 2 });
      expect(h).toMatchObject({ count: 6, min: -5, max: 99, below: 1, above: 2 });
      expect(h.bins.map((b) => b.count)).toEqual([1, 2]);
    });

    it('keeps every edge finite across the whole float64 range', () => {
      engine.appendValues(1, Float64Array.from([-Number.MAX_VALUE, 0, Number.MAX_VALUE]));
      const h = engine.histogram(1, 4);
      for (const bin of h.bins) expect(Number.isFinite(bin.lo) && Number.isFinite(bin.hi) && bin.lo < bin.hi).toBe(true);
      expect(h.bins.reduce((s, b) => s + b.count, 0)).toBe(3);
    });

    it('gives no bin a negative count when a subnormal step rounds up past max (found by fast-check)', () => {
      engine.appendValues(1, Float64Array.from([5e-324, -0]));
      const h = engine.histogram(1, 8, { min: -2.5e-323, max: -0 });
      expect(h.bins.map((b) => b.count)).toEqual([0, 0, 0, 0, 0, 0, 0, 1]); // inner edges at max leave empty bins; the last is closed
      expect([h.below, h.above]).toEqual([0, 1]);
    });

    it('matches the oracle on random pools, bin counts and ranges', () => {
      let poolId = 0;
      fc.assert(
        fc.property(
          fc.array(valueArb, { minLength: 1, maxLength: 300 }),
          fc.integer({ min: 1, max: 50 }),
          fc.integer({ min: 1, max: 40 }),
          fc.option(fc.tuple(valueArb, valueArb)),
          (values, bins, batch, range) => {
            const id = poolId++;
            fill(engine, id, values, batch);
            const sorted = sortedCopy(values);
            let lo = sorted[0];
            let hi = sorted[sorted.length - 1];
            if (range !== null) [lo, hi] = range[0] <= range[1] ? range : [range[1], range[0]];
            if (!Number.isFinite(hi - lo)) return; // numpy's own edges are NaN there; covered above
            const h = engine.histogram(id, bins, range === null ? {} : { min: lo, max: hi });
            const want = oracleHistogram(values, bins, lo, hi);
            expect(h.bins.map((b) => b.count)).toEqual(want.counts);
            expect(h.bins.map((b) => b.lo).concat(h.bins[bins - 1].hi)).toEqual(want.edges);
            expect([h.below, h.above]).toEqual([want.below, want.above]);
            expect(h.bins.every((b) => b.count >= 0)).toBe(true);
            expect(h.below + h.above + want.counts.reduce((s, c) => s + c, 0)).toBe(values.length);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('answers 10 000 bins over 10^5 values, the counts summing to the pool', () => {
      const values = Float64Array.from({ length: 100_000 }, (_, i) => Math.sin(i) * 1000);
      engine.appendValues(3, values);
      const h = engine.histogram(3, MAX_HISTOGRAM_BINS);
      expect(h.bins).toHaveLength(MAX_HISTOGRAM_BINS);
      expect(h.bins.reduce((s, b) => s + b.count, 0)).toBe(100_000);
    });

    it('refuses bad bins and ranges with invalid_request naming the field, and unknown pools', () => {
      engine.appendValues(1, Float64Array.from([1, 2]));
      expectError(() => engine.histogram(1, 0), 'invalid_request', 'bins');
      expectError(() => engine.histogram(1, MAX_HISTOGRAM_BINS + 1), 'invalid_request', 'bins');
      expectError(() => engine.histogram(1, 2.5), 'invalid_request', 'bins');
      expectError(() => engine.histogram(1, 2, { min: NaN }), 'invalid_request', 'min');
      expectError(() => engine.histogram(1, 2, { max: Infinity }), 'invalid_request', 'max');
      expectError(() => engine.histogram(1, 2, { min: 3 }), 'invalid_request', 'max');
      expectError(() => engine.histogram(2, 2), 'pool_not_found', undefined as unknown as string);
    });
  });

  describe('rank', () => {
    it('counts values below and equal to x, and the CDF at x', () => {
      engine.appendValues(1, Float64Array.from([1, 2, 2, 3, 10]));
      expect(engine.rank(1, 2)).toEqual({ poolId: 1, count: 5, below: 1, equal: 2, fraction: 0.6 });
      expect(engine.rank(1, 0)).toEqual({ poolId: 1, count: 5, below: 0, equal: 0, fraction: 0 });
      expect(engine.rank(1, 11)).toEqual({ poolId: 1, count: 5, below: 5, equal: 0, fraction: 1 });
    });

    it('treats -0 and +0 as one value', () => {
      engine.appendValues(1, Float64Array.from([-0, 0, -0, -1]));
      expect(engine.rank(1, 0)).toMatchObject({ below: 1, equal: 3 });
      expect(engine.rank(1, -0)).toMatchObject({ below: 1, equal: 3 });
    });

    it('matches the oracle on random pools and probes', () => {
      let poolId = 0;
      fc.assert(
        fc.property(
          fc.array(valueArb, { minLength: 1, maxLength: 300 }),
          fc.integer({ min: 1, max: 40 }),
          fc.array(valueArb, { minLength: 1, maxLength: 10 }),
          (values, batch, probes) => {
            const id = poolId++;
            fill(engine, id, values, batch);
            for (const x of [...probes, ...values.slice(0, 5)]) {
              const got = engine.rank(id, x);
              const want = oracleRank(values, x);
              expect({ below: got.below, equal: got.equal }).toEqual(want);
              expect(got.fraction).toBe((want.below + want.equal) / values.length);
            }
          },
        ),
        { numRuns: 150 },
      );
    });

    it('refuses a non-finite value and unknown pools', () => {
      engine.appendValues(1, Float64Array.from([1]));
      expectError(() => engine.rank(1, NaN), 'invalid_request', 'value');
      expectError(() => engine.rank(1, Infinity), 'invalid_request', 'value');
      expectError(() => engine.rank(9, 1), 'pool_not_found', undefined as unknown as string);
    });

    it('changes nothing it reads: the pool answers the same quantiles afterwards', () => {
      fill(
        engine,
        1,
        Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000),
        10,
      );
      const before = engine.quantiles(1, [0, 50, 99, 100]);
      const runs = engine.runLengths(1);
      engine.rank(1, 500);
      engine.histogram(1, 100);
      expect(engine.quantiles(1, [0, 50, 99, 100])).toEqual(before);
      expect(engine.runLengths(1)).toEqual(runs);
    });
  });
});
