// The request schemas the route table publishes (src/protocol/schemas.ts)
// against the hand-written parsers that enforce them (src/protocol/validate.ts):
// on generated JSON values — valid ones and near misses of every field — a
// compiled TypeBox validator of the schema and the parser accept exactly the
// same values. A schema that drifts from the parser fails here, not in a
// client generated from the OpenAPI document.

import { TypeCompiler } from '@sinclair/typebox/compiler';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QUANTILE_METHODS } from '../src/core/methods.js';
import { MAX_PERCENTILES_PER_QUERY, MAX_POOL_ID, MAX_POOLS_PER_QUERY, MAX_WINDOW_SECONDS } from '../src/protocol/limits.js';
import { SCHEMAS } from '../src/protocol/schemas.js';
import { checkValues, parseAddRequest, parseQueryRequest, parseRetentionRequest } from '../src/protocol/validate.js';

function accepts(parse: (value: unknown) => unknown, value: unknown): boolean {
  try {
    parse(value);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code !== 'invalid_request') throw err;
    return false;
  }
}

/** Whatever a JSON body can hold, weighted towards the edges of each rule (1e400 parses to Infinity). */
const edgeNumber = fc.constantFrom(
  0,
  -0,
  1,
  -1,
  1.5,
  50,
  99.5,
  100,
  100.0001,
  -0.0001,
  MAX_POOL_ID,
  MAX_POOL_ID + 1,
  1e300,
  Infinity,
  -Infinity,
);
const scalar = fc.oneof(edgeNumber, fc.double(), fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null), fc.boolean());
const numberList = (max: number) =>
  fc.array(fc.oneof({ weight: 8, arbitrary: fc.oneof(edgeNumber, fc.double()) }, { weight: 1, arbitrary: scalar }), { maxLength: max });
const anyField = fc.oneof(scalar, numberList(4), fc.constant([]), fc.dictionary(fc.string({ maxLength: 3 }), scalar, { maxKeys: 2 }));
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });

/** An object with each key either absent or holding `arb`'s value. */
function body(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(fields);
  return fc.tuple(...keys.map((k) => optional(fields[k]))).map((values) => {
    const out: Record<string, unknown> = {};
    keys.forEach((k, i) => {
      if (values[i] !== undefined) out[k] = values[i];
    });
    return out;
  });
}

const poolId = fc.oneof(fc.integer({ min: 0, max: 1e6 }), fc.constant(MAX_POOL_ID), anyField);
const percentile = fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), anyField);
const method = fc.oneof(fc.constantFrom(...QUANTILE_METHODS), anyField);

const finite = fc.double({ noNaN: true, noDefaultInfinity: true });

/** Valid bodies (a sixth), bodies mixing valid and invalid fields, and anything else. */
function nearMisses(valid: fc.Arbitrary<unknown>, mixed: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 1, arbitrary: valid }, { weight: 4, arbitrary: mixed }, { weight: 1, arbitrary: anyField });
}

function agree(
  schema: Parameters<typeof TypeCompiler.Compile>[0],
  parse: (value: unknown) => unknown,
  values: fc.Arbitrary<unknown>,
): void {
  const check = TypeCompiler.Compile(schema);
  let accepted = 0;
  fc.assert(
    fc.property(values, (value) => {
      const byParser = accepts(parse, value);
      expect(check.Check(value), JSON.stringify(value)).toBe(byParser);
      if (byParser) accepted++;
    }),
    { numRuns: 3000 },
  );
  expect(accepted).toBeGreaterThan(100); // the generator reaches the accepting side too
}

describe('request schemas accept exactly what the parsers accept', () => {
  it('AddRequest ≡ parseAddRequest', () => {
    agree(
      SCHEMAS.AddRequest,
      parseAddRequest,
      nearMisses(
        fc.record({ poolId: fc.nat(), poolValues: fc.array(finite, { minLength: 1, maxLength: 4 }) }),
        body({ poolId, poolValues: fc.oneof(numberList(6), anyField), extra: anyField }),
      ),
    );
  });

  it('QueryRequest ≡ parseQueryRequest (exactly one of poolId and poolIds, one of percentile and percentiles)', () => {
    const percentiles = fc.oneof(
      fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 5 }),
      numberList(3),
      anyField,
    );
    const poolIds = fc.oneof(
      fc.array(fc.integer({ min: 0, max: 1e6 }), { minLength: 1, maxLength: 5 }),
      fc.array(poolId, { maxLength: 3 }),
      fc.constant(new Array<number>(MAX_POOLS_PER_QUERY + 1).fill(1)),
      anyField,
    );
    const valid = fc.oneof(
      fc.record({ poolId: fc.nat(), percentile: fc.double({ min: 0, max: 100, noNaN: true }) }),
      fc.record({ poolId: fc.nat(), percentiles: percentiles.filter(Array.isArray), method: fc.constantFrom(...QUANTILE_METHODS) }),
      fc.record({ poolIds: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), percentile: fc.double({ min: 0, max: 100, noNaN: true }) }),
      fc.record({ poolIds: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), percentiles: percentiles.filter(Array.isArray) }),
    );
    const mixed = fc.oneof(
      body({ poolId, percentile, percentiles, method, extra: anyField }),
      body({ poolIds, percentile, percentiles, method, extra: anyField }),
      body({ poolId, poolIds, percentile, percentiles, method }),
    );
    agree(SCHEMAS.QueryRequest, parseQueryRequest, nearMisses(valid, mixed));
  });

  it('RetentionRequest ≡ parseRetentionRequest (PUT /pools/{poolId}/retention)', () => {
    const windowSeconds = fc.oneof(
      fc.integer({ min: 1, max: MAX_WINDOW_SECONDS }),
      fc.constantFrom(0, MAX_WINDOW_SECONDS + 1, 1.5, -1),
      anyField,
    );
    agree(
      SCHEMAS.RetentionRequest,
      parseRetentionRequest,
      nearMisses(fc.record({ windowSeconds: fc.integer({ min: 1, max: MAX_WINDOW_SECONDS }) }), body({ windowSeconds, extra: anyField })),
    );
  });

  it('QueryRequest ≡ parseQueryRequest at the percentile-count limit', () => {
    const check = TypeCompiler.Compile(SCHEMAS.QueryRequest);
    for (const n of [MAX_PERCENTILES_PER_QUERY, MAX_PERCENTILES_PER_QUERY + 1]) {
      const value = { poolId: 1, percentiles: new Array<number>(n).fill(50) };
      expect(check.Check(value), String(n)).toBe(accepts(parseQueryRequest, value));
    }
  });

  it('Values ≡ checkValues (the body of POST /pools/{poolId}/values)', () => {
    agree(
      SCHEMAS.Values,
      (v) => checkValues(v, 'body'),
      fc.oneof({ weight: 3, arbitrary: numberList(6) }, { weight: 1, arbitrary: anyField }),
    );
  });
});
