// Differential tests (HdrHistogramJS style): random float64 data through every
// engine — both kinds, each tail policy, each run encoding forced — which must
// agree with each other and with the sort-based oracle (helpers/oracle.ts) bit
// for bit. fast-check prints the failing command
// sequence and its seed; the assertion messages add the hex bit patterns, since
// -0 and neighbouring doubles print alike in decimal.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuantileEngine } from '../src/core/engine.js';
import { PoolqError } from '../src/core/errors.js';
import { QUANTILE_METHODS, type QuantileMethod } from '../src/core/methods.js';
import { createAllEngines, ENGINE_KINDS } from './helpers/engines.js';
import { bitsHex, describeF64, quantileOfSorted, sortedCopy } from './helpers/oracle.js';

type Command = { kind: 'append'; values: number[] } | { kind: 'query'; percentiles: number[]; method: QuantileMethod };

const SPECIAL_VALUES = [-0, 0, 5e-324, -5e-324, 2.2e-308, -2.2e-308, 1.7e308, -1.7e308, Number.MAX_VALUE, -Number.MAX_VALUE, 1e300];
const SPECIAL_PERCENTILES = [0, 100, 50, 99.5, 1e-9, 100 - 1e-9, 25, 75, 33.3];

const valueArb = fc.oneof(
  { weight: 5, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 2, arbitrary: fc.constantFrom(...SPECIAL_VALUES) },
  // Small integers: plenty of ties, the case rank selection must count right.
  { weight: 2, arbitrary: fc.integer({ min: -3, max: 3 }) },
);

const percentileArb = fc.oneof(
  fc.double({ min: 0, max: 100, noNaN: true }),
  fc.constantFrom(...SPECIAL_PERCENTILES),
  fc.integer({ min: 0, max: 100 }),
);

const methodArb = fc.constantFrom(...QUANTILE_METHODS);

/**
 * Up to `maxCommands` steps, each an append of 1..maxBatch values or a query.
 * `size: 'max'` lets lengths spread over the whole range (fast-check's default
 * size keeps arrays to about ten elements whatever maxLength says).
 */
function commandsArb(maxBatch: number, maxCommands: number): fc.Arbitrary<Command[]> {
  const append = fc
    .array(valueArb, { minLength: 1, maxLength: maxBatch, size: 'max' })
    .map((values): Command => ({ kind: 'append', values }));
  const query = fc
    .record({ percentiles: fc.array(percentileArb, { minLength: 1, maxLength: 4 }), method: methodArb })
    .map(({ percentiles, method }): Command => ({ kind: 'query', percentiles, method }));
  return fc.array(fc.oneof({ weight: 2, arbitrary: append }, { weight: 3, arbitrary: query }), {
    minLength: 1,
    maxLength: maxCommands,
    size: 'max',
  });
}

function hexList(values: readonly number[]): string {
  return values.map((v) => `0x${bitsHex(v)}`).join(', ');
}

/** Runs `commands` on a fresh pool of every engine, checking each query against the oracle. */
function runCommands(engines: readonly QuantileEngine[], poolId: number, commands: readonly Command[]): void {
  const all: number[] = [];
  try {
    for (const command of commands) {
      if (command.kind === 'append') {
        for (const engine of engines) engine.appendValues(poolId, Float64Array.from(command.values));
        all.push(...command.values);
        continue;
      }
      const { percentiles, method } = command;
      if (all.length === 0) {
        for (const engine of engines) {
          expect(() => engine.quantiles(poolId, percentiles, method), engine.kind).toThrow(PoolqError);
        }
        continue;
      }
      const sorted = sortedCopy(all);
      const expected = percentiles.map((p) => quantileOfSorted(sorted, p, method));
      for (const engine of engines) {
        const got = engine.quantiles(poolId, percentiles, method);
        percentiles.forEach((p, i) => {
          if (bitsHex(got[i]) !== bitsHex(expected[i]) || !Number.isFinite(got[i])) {
            throw new Error(
              `${engine.kind} engine, ${method} at p=${p} (0x${bitsHex(p)}): expected ${describeF64(expected[i])}, ` +
                `got ${describeF64(got[i])}; ${engine.runsOf(poolId).length} runs; ` +
                `values in append order: [${hexList(all)}]`,
            );
          }
        });
      }
    }
    if (all.length > 0) {
      const sortedHex = Array.from(sortedCopy(all), bitsHex);
      for (const engine of engines) {
        expect(Array.from(engine.exportSorted(poolId), bitsHex), `${engine.kind} exportSorted`).toEqual(sortedHex);
        const { min, max, count } = engine.summary(poolId);
        expect([bitsHex(min), bitsHex(max), count], `${engine.kind} summary`).toEqual([
          sortedHex[0],
          sortedHex[sortedHex.length - 1],
          all.length,
        ]);
      }
    }
  } finally {
    for (const engine of engines) engine.deletePool(poolId);
  }
}

describe(`engines agree with each other and the sort-based oracle (${ENGINE_KINDS.join(', ')})`, () => {
  let engines: QuantileEngine[];
  let nextPoolId = 1;

  beforeAll(async () => {
    engines = await createAllEngines();
  });

  it('over random appends interleaved with queries', () => {
    fc.assert(
      fc.property(commandsArb(40, 40), (commands) => runCommands(engines, nextPoolId++, commands)),
      { numRuns: 400 },
    );
  });

  it('over fewer, larger appends (several runs of hundreds of values)', () => {
    fc.assert(
      fc.property(commandsArb(1500, 12), (commands) => runCommands(engines, nextPoolId++, commands)),
      { numRuns: 40 },
    );
  });

  it('sortBatch orders like Float64Array.prototype.sort (-0 before +0)', () => {
    fc.assert(
      fc.property(fc.array(valueArb, { maxLength: 3000, size: 'max' }), (values) => {
        const want = Array.from(sortedCopy(values), bitsHex);
        for (const engine of engines) {
          const got = Array.from(engine.sortBatch(Float64Array.from(values)), bitsHex);
          expect(got, `${engine.kind} sortBatch of [${hexList(values)}]`).toEqual(want);
        }
      }),
      { numRuns: 150 },
    );
  });
});
