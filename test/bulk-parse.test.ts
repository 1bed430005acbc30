// The byte-level fast path for large append bodies (src/protocol/bulk-parse.ts)
// against the general path (JSON.parse + the validator): it may decline (null),
// but whatever it returns must be bit for bit what the general path returns,
// and it must never accept a body the general path refuses.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAddBodyFast, parseQueryBodyFast, parseValuesBodyFast } from '../src/protocol/bulk-parse.js';
import { checkValues, parseAddRequest, parseJson, parseQueryRequest } from '../src/protocol/validate.js';
import { bitsHex } from './helpers/oracle.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

/** The general path's answer: the request, or the error code it throws. */
function general(text: string): { poolId: number; values: string[] } | { error: string } {
  try {
    const r = parseAddRequest(parseJson(bytes(text)));
    return { poolId: r.poolId, values: Array.from(r.values, bitsHex) };
  } catch (err) {
    return { error: (err as { code?: string }).code ?? String(err) };
  }
}

function fast(text: string): { poolId: number; values: string[] } | null {
  const r = parseAddBodyFast(bytes(text));
  return r === null ? null : { poolId: r.poolId, values: Array.from(r.values, bitsHex) };
}

/** Number texts JSON allows, in the forms clients send. */
const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
  fc.integer({ min: -1e9, max: 1e9 }).map(String),
  fc.tuple(fc.integer({ min: 0, max: 999999 }), fc.integer({ min: 0, max: 999 })).map(([a, b]) => `${a}.${String(b).padStart(3, '0')}`),
  fc
    .tuple(fc.integer({ min: -99, max: 99 }), fc.integer({ min: -340, max: 340 }), fc.constantFrom('e', 'E', 'e+', 'E-'))
    .map(([m, e, s]) => `${m}${s}${Math.abs(e)}`),
  fc.constantFrom(
    '0',
    '-0',
    '0.0',
    '-0.0',
    '1e22',
    '1e23',
    '9007199254740993',
    '123456789012345678901234567890',
    '4.9e-324',
    '1.7976931348623157e308',
    '2.2250738585072014e-308',
    '0.1',
    '0.30000000000000004',
    '1e-400',
  ),
);
const space = fc.constantFrom('', ' ', '\n', '\t', ' \r\n ');

/**
 * `valid` with a span cut out and one of `inserts` put in, 2000 ways: the fast
 * path must decline whatever the general path refuses, and agree when it accepts.
 */
function checkMutations<T>(
  valid: string,
  inserts: string[],
  generalPath: (text: string) => T | { error: string },
  fastPath: (text: string) => T | null,
): void {
  fc.assert(
    fc.property(fc.nat(valid.length), fc.nat(valid.length), fc.constantFrom(...inserts), (at, cut, insert) => {
      const text = valid.slice(0, at) + insert + valid.slice(Math.max(at, cut));
      const want = generalPath(text);
      const got = fastPath(text);
      if (typeof want === 'object' && want !== null && 'error' in want) expect(got, text).toBeNull();
      else if (got !== null) expect(got, text).toEqual(want);
    }),
    { numRuns: 2000 },
  );
}

describe('bulk-parse fast path', () => {
  it('returns what the general path returns for valid bodies, and declines nothing common', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.array(numberText, { minLength: 1, maxLength: 60 }),
        space,
        fc.boolean(),
        (poolId, numbers, ws, idFirst) => {
          const list = `[${ws}${numbers.join(`${ws},${ws}`)}${ws}]`;
          const members = idFirst
            ? [`"poolId"${ws}:${ws}${poolId}`, `"poolValues":${list}`]
            : [`"poolValues":${list}`, `"poolId"${ws}:${ws}${poolId}`];
          const text = `${ws}{${ws}${members.join(`${ws},${ws}`)}${ws}}${ws}`;
          const want = general(text);
          const got = fast(text);
          if ('error' in want)
            expect(got).toBeNull(); // e.g. 1e400 in the list
          else expect(got).toEqual(want);
          // Plain JSON.stringify output with finite values is always taken by the fast path.
          const plain = JSON.stringify({ poolId, poolValues: numbers.map(Number).filter(Number.isFinite) });
          if (numbers.map(Number).some(Number.isFinite)) expect(fast(plain)).toEqual(general(plain));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never accepts what the general path refuses, and agrees when it accepts (mutated bodies)', () => {
    checkMutations(
      '{"poolId": 12, "poolValues": [1, -2.5, 3e2, 0.001, -0]}',
      ['', ',', ']', '[', '}', '{', '"', '0', '.', 'e', '-', '+', 'x', ' ', '"a":1,', '01', 'null', '"5"'],
      general,
      fast,
    );
  });

  it('declines what it does not handle, leaving the general path to answer', () => {
    for (const text of [
      '{"poolId": 1, "poolValues": []}',
      '{"poolId": 1, "poolValues": [1,]}',
      '{"poolId": 1, "poolValues": [01]}',
      '{"poolId": 1, "poolValues": [1.]}',
      '{"poolId": 1, "poolValues": [.5]}',
      '{"poolId": 1, "poolValues": [+1]}',
      '{"poolId": 1, "poolValues": [1e]}',
      '{"poolId": 1, "poolValues": [1e400]}',
      '{"poolId": 1, "poolValues": ["1"]}',
      '{"poolId": 1, "poolValues": [[1]]}',
      '{"poolId": 1, "poolValues": [1], "extra": 2}',
      '{"poolId": 1, "poolId": 2, "poolValues": [1]}',
      '{"poolId": -1, "poolValues": [1]}',
      '{"poolId": 1.5, "poolValues": [1]}',
      '{"poolId": 9007199254740992, "poolValues": [1]}',
      '{"pool\\u0049d": 1, "poolValues": [1]}',
      '{"poolId": 1, "poolValues": [1]} x',
      '\uFEFF{"poolId": 1, "poolValues": [1]}',
    ]) {
      expect(fast(text), text).toBeNull();
    }
  });

  it('parses bare value lists like the general path (POST /pools/{id}/values)', () => {
    fc.assert(
      fc.property(fc.array(numberText, { minLength: 1, maxLength: 40 }), space, (numbers, ws) => {
        const text = `${ws}[${numbers.join(`,${ws}`)}]${ws}`;
        let want: string[] | null;
        try {
          want = Array.from(checkValues(parseJson(bytes(text)), 'body'), bitsHex);
        } catch {
          want = null;
        }
        const got = parseValuesBodyFast(bytes(text));
        if (want === null) expect(got).toBeNull();
        else expect(got === null ? null : Array.from(got, bitsHex)).toEqual(want);
      }),
      { numRuns: 300 },
    );
    expect(parseValuesBodyFast(bytes('[]'))).toBeNull();
    expect(parseValuesBodyFast(bytes('{"a": [1]}'))).toBeNull();
  });
});

describe('query fast path', () => {
  /** The general path's answer for a /query body: the request, or the error code it throws. */
  function generalQuery(text: string): { poolId: number; percentile: string; many: boolean; method: string } | { error: string } {
    try {
      const r = parseQueryRequest(parseJson(bytes(text)));
      return { poolId: r.poolId, percentile: bitsHex(r.percentiles[0]), many: r.many, method: r.method };
    } catch (err) {
      return { error: (err as { code?: string }).code ?? String(err) };
    }
  }
  function fastQuery(text: string): { poolId: number; percentile: string; many: boolean; method: string } | null {
    const r = parseQueryBodyFast(bytes(text));
    return r === null ? null : { poolId: r.poolId, percentile: bitsHex(r.percentiles[0]), many: r.many, method: r.method };
  }

  it('returns what the general path returns, bit for bit, and takes plain JSON.stringify bodies', () => {
    const percentileText = fc.oneof(
      numberText,
      fc.double({ min: 0, max: 100, noNaN: true }).map((v) => JSON.stringify(v)),
      fc.constantFrom('99.5', '50', '0', '-0', '100', '100.0', '1e2', '100.0000000000000001', '99.99999999999999999', '1e-320'),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), percentileText, space, fc.boolean(), (poolId, p, ws, idFirst) => {
        const members = idFirst
          ? [`"poolId"${ws}:${ws}${poolId}`, `"percentile":${ws}${p}`]
          : [`"percentile"${ws}:${p}`, `"poolId":${ws}${poolId}`];
        const text = `${ws}{${ws}${members.join(`${ws},${ws}`)}${ws}}${ws}`;
        const want = generalQuery(text);
        const got = fastQuery(text);
        if ('error' in want) expect(got, text).toBeNull();
        else if (got !== null) expect(got, text).toEqual(want);
        const plain = JSON.stringify({ poolId, percentile: Number(p) });
        if (Number(p) >= 0 && Number(p) <= 100) expect(fastQuery(plain), plain).toEqual(generalQuery(plain));
      }),
      { numRuns: 1000 },
    );
  });

  it('never accepts what the general path refuses (mutated bodies)', () => {
    checkMutations(
      '{"poolId": 123456, "percentile": 99.5}',
      ['', ',', '}', '{', '"', '0', '.', 'e', '-', '+', 'x', ' ', '"method":"linear",', '"percentiles":[1],', '01', 'null', '"5"', '\\'],
      generalQuery,
      fastQuery,
    );
  });

  it('declines other shapes (percentiles, method, duplicates, escapes, out-of-range values)', () => {
    for (const text of [
      '{"poolId": 1, "percentiles": [50]}',
      '{"poolId": 1, "percentile": 50, "method": "linear"}',
      '{"poolId": 1, "percentile": 50, "percentile": 60}',
      '{"poolId": 1, "poolId": 2}',
      '{"pool\\u0049d": 1, "percentile": 50}',
      '{"poolId": 1, "percentile": 100.0001}',
      '{"poolId": 1, "percentile": -1}',
      '{"poolId": -1, "percentile": 50}',
      '{"poolId": 1.5, "percentile": 50}',
      '{"poolId": 1, "percentile": "50"}',
      '{"poolId": 1}',
      '{"percentile": 50}',
      '',
    ]) {
      expect(fastQuery(text), text).toBeNull();
    }
    expect(fastQuery('{"poolId": 123456, "percentile": 99.5}')).toEqual({
      poolId: 123456,
      percentile: bitsHex(99.5),
      many: false,
      method: 'linear',
    });
  });
});
