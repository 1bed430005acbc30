// Percentiles across pools (QuantileEngine.quantilesAcross): numpy.percentile
// over the concatenation of the pools' values, by selection across all their
// runs. Held to the sort-based oracle with fast-check on every engine the
// differential suite uses (both kinds × tails × forced encodings); the numpy
// fixtures hold it to numpy itself (engine-fixtures.test.ts).

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_POOLS_PER_QUERY, type EngineKind, type QuantileEngine } from '../src/core/engine.js';
import { PoolqError } from '../src/core/errors.js';
import { QUANTILE_METHODS, type QuantileMethod } from '../src/core/methods.js';
import { createAllEngines, createTestEngine, ENGINE_KINDS } from './helpers/engines.js';
import { bitsHex, describeF64, quantileOfSorted, sortedCopy } from './helpers/oracle.js';

const valueArb = fc.oneof(
  { weight: 4, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 4, arbitrary: fc.integer({ min: -20, max: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom(-0, 0, 5e-324, -1.7e308, 1.7e308) },
);
const percentileArb = fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.constantFrom(0, 100, 50, 99.5, 1e-9));

describe('quantilesAcross equals the oracle over the concatenated pools', () => {
  let engines: QuantileEngine[];
  beforeAll(async () => {
    engines = await createAllEngines();
  });

  it('random pools built by random appends, random subsets of them (duplicates count once), every method', () => {
    const poolsArb = fc.array(fc.array(fc.array(valueArb, { minLength: 1, maxLength: 60 }), { minLength: 1, maxLength: 6 }), {
      minLength: 1,
      maxLength: 12,
    });
    let base = 0;
    fc.assert(
      fc.property(
        poolsArb,
        fc.array(fc.nat(), { minLength: 1, maxLength: 20 }),
        fc.array(percentileArb, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(...QUANTILE_METHODS),
        (pools, picks, percentiles, method: QuantileMethod) => {
          base += 100;
          const ids = picks.map((pick) => base + (pick % pools.length));
          const union = sortedCopy([...new Set(ids)].flatMap((id) => pools[id - base].flat()));
          const want = percentiles.map((p) => bitsHex(quantileOfSorted(union, p, method)));
          for (const engine of engines) {
            pools.forEach((batches, i) => batches.forEach((batch) => engine.appendValues(base + i, Float64Array.from(batch))));
            const got = engine.quantilesAcross(ids, percentiles, method);
            expect(got.count, `${engine.kind} count`).toBe(union.length);
            expect(
              got.quantiles.map(bitsHex),
              `${engine.kind} ${method} at ${percentiles.join(', ')} over pools ${ids.join(', ')}`,
            ).toEqual(want);
            pools.forEach((_, i) => engine.deletePool(base + i));
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe.each(ENGINE_KINDS)('quantilesAcross contract: %s engine', (kind: EngineKind) => {
  function catchError(action: () => unknown): PoolqError {
    try {
      action();
    } catch (err) {
      if (err instanceof PoolqError) return err;
      throw err;
    }
    throw new Error('expected a PoolqError');
  }

  it('a missing pool is pool_not_found naming it; nothing changes', async () => {
    const engine = await createTestEngine(kind);
    engine.appendValues(1, Float64Array.from([1, 2]));
    engine.appendValues(2, Float64Array.from([3]));
    const err = catchError(() => engine.quantilesAcross([1, 2, 777, 2], [50]));
    expect(err.code).toBe('pool_not_found');
    expect(err.message).toContain('777');
    expect(engine.poolIds()).toEqual([1, 2]);
    expect(engine.quantilesAcross([2, 1], [50])).toEqual({ quantiles: [2], count: 3 });
  });

  it('takes 1 to 1000 pools; none or more is invalid_request naming poolIds', async () => {
    const engine = await createTestEngine(kind);
    const ids = Array.from({ length: MAX_POOLS_PER_QUERY + 1 }, (_, i) => i);
    for (const id of ids) engine.appendValues(id, Float64Array.from([id]));
    expect(engine.quantilesAcross(ids.slice(0, MAX_POOLS_PER_QUERY), [0, 50, 100], 'lower')).toEqual({
      quantiles: [0, 499, 999],
      count: 1000,
    });
    for (const bad of [[], ids]) {
      const err = catchError(() => engine.quantilesAcross(bad, [50]));
      expect([err.code, err.field]).toEqual(['invalid_request', 'poolIds']);
    }
  });

  it('checks percentiles and method like a single-pool query', async () => {
    const engine = await createTestEngine(kind);
    engine.appendValues(1, Float64Array.from([1]));
    expect(catchError(() => engine.quantilesAcross([1], [101])).field).toBe('percentile');
    expect(catchError(() => engine.quantilesAcross([1], [50], 'bogus' as QuantileMethod)).field).toBe('method');
  });

  it('pools whose windows are empty add nothing; all empty answers NaN with count 0', async () => {
    let now = 1_700_000_000_000;
    const engine = await createTestEngine(kind, undefined, { clock: () => now });
    engine.setRetention(1, 10);
    engine.appendValues(1, Float64Array.from([100, 200]));
    engine.setRetention(2, 10);
    now += 20_000;
    expect(engine.quantilesAcross([1, 2], [50])).toEqual({ quantiles: [Number.NaN], count: 0 });
    engine.appendValues(3, Float64Array.from([7, 8, 9]));
    expect(engine.quantilesAcross([1, 2, 3], [0, 100])).toEqual({ quantiles: [7, 9], count: 3 });
  });

  it('reads runs in place: 100 pools of 10^4 values, plain and counted mixed, no pool changes', async () => {
    const engine = await createTestEngine(kind);
    const all: number[] = [];
    for (let id = 0; id < 100; id++) {
      const values = Float64Array.from({ length: 10_000 }, (_, i) => (id % 2 === 0 ? (i * 7919 + id) % 1000 : Math.sin(i + id) * 1e6));
      engine.appendValues(id, values);
      all.push(...values);
    }
    const before = engine.stats();
    expect(before.countedRuns).toBeGreaterThan(0);
    expect(before.countedRuns).toBeLessThan(before.runs);
    const union = sortedCopy(all);
    const percentiles = [0, 0.1, 25, 50, 75, 99, 99.9, 100];
    for (const method of ['linear', 'lower', 'midpoint', 'median_unbiased'] as const) {
      const got = engine.quantilesAcross(
        Array.from({ length: 100 }, (_, i) => i),
        percentiles,
        method,
      );
      const want = percentiles.map((p) => quantileOfSorted(union, p, method));
      expect(got.quantiles.map(describeF64), method).toEqual(want.map(describeF64));
    }
    expect(engine.stats()).toEqual(before);
  });
});
