// Run encodings (src/core/stored-run.ts), merging runs of either encoding
// (run-merge.ts) and selection across them (select-rank.ts), held to a
// sort-based oracle bit for bit with fast-check. The kernels' plain merge is
// run for both engines; everything else is shared code.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../src/core/kernels.js';
import { mergeCountedInto, mergeRuns } from '../src/core/run-merge.js';
import { countBelow, extremes, nextRankValue, selectRank } from '../src/core/select-rank.js';
import { trustSorted } from '../src/core/sorted-run.js';
import {
  assertStoredRun,
  chooseEncoding,
  compressSorted,
  countDistinct,
  encodeSorted,
  encodingOf,
  expandRun,
  runBytes,
  valueAtRank,
  type EncodingPolicy,
  type StoredRun,
} from '../src/core/stored-run.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { bitsHex, sortedCopy } from './helpers/oracle.js';

const POLICIES: readonly EncodingPolicy[] = ['auto', 'plain', 'counted'];

const valueArb = fc.oneof(
  { weight: 3, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 3, arbitrary: fc.integer({ min: -4, max: 4 }) },
  { weight: 2, arbitrary: fc.constantFrom(-0, 0, 5e-324, -5e-324, 1.7e308, -1.7e308) },
);
/** Sorted arrays with every degree of repetition, ±0 and extremes. */
const sortedArb = fc.array(valueArb, { maxLength: 300, size: 'max' }).map((values) => sortedCopy(values));
const policyArb = fc.constantFrom(...POLICIES);

function hex(values: ArrayLike<number>): string[] {
  return Array.from(values, bitsHex);
}

function stored(values: Float64Array, policy: EncodingPolicy): StoredRun {
  return encodeSorted(trustSorted(Float64Array.from(values)), policy);
}

describe('encodings', () => {
  it('counts distinct values with -0 and +0 apart', () => {
    expect(countDistinct(Float64Array.from([]))).toBe(0);
    expect(countDistinct(Float64Array.from([-0, -0, 0, 0, 1, 1, 1]))).toBe(3);
    expect(countDistinct(Float64Array.from([-1, 0, 2]))).toBe(3);
  });

  it('auto picks counted exactly when 16 bytes per distinct value beat 8 per value', () => {
    expect(chooseEncoding(10, 4, 'auto')).toBe('counted');
    expect(chooseEncoding(10, 5, 'auto')).toBe('plain'); // 80 = 80: a tie stays plain
    expect(chooseEncoding(10, 10, 'auto')).toBe('plain');
    expect(chooseEncoding(10, 10, 'counted')).toBe('counted');
    expect(chooseEncoding(10, 1, 'plain')).toBe('plain');
  });

  it('a counted run of 1e6 values over 1e4 integers takes 160 kB instead of 8 MB', () => {
    const values = new Float64Array(1_000_000);
    for (let i = 0; i < values.length; i++) values[i] = Math.floor(i / 100);
    const run = stored(values, 'auto');
    expect(encodingOf(run)).toBe('counted');
    expect(run).toMatchObject({ count: 1_000_000, distinct: 10_000 });
    expect(runBytes(run)).toBe(160_000);
    expect(valueAtRank(run, 0)).toBe(0);
    expect(valueAtRank(run, 99)).toBe(0);
    expect(valueAtRank(run, 100)).toBe(1);
    expect(valueAtRank(run, 999_999)).toBe(9999);
  });

  it('round-trips every sorted array through both encodings, keeping the invariants', () => {
    fc.assert(
      fc.property(sortedArb, policyArb, (values, policy) => {
        const run = stored(values, policy);
        assertStoredRun(run);
        expect(run.count).toBe(values.length);
        expect(run.distinct).toBe(countDistinct(values));
        if (policy !== 'auto') expect(encodingOf(run)).toBe(policy);
        expect(hex(expandRun(run))).toEqual(hex(values));
        for (let k = 0; k < values.length; k++) expect(bitsHex(valueAtRank(run, k))).toBe(bitsHex(values[k]));
      }),
      { numRuns: 300 },
    );
  });

  it('a plain encoding keeps the given array (no copy); a counted one never aliases it', () => {
    const values = trustSorted(Float64Array.from([1, 2, 3]));
    expect(encodeSorted(values, 'plain').values).toBe(values);
    const counted = encodeSorted(values, 'counted');
    expect(counted.values.buffer).not.toBe(values.buffer);
    values[0] = 99;
    expect(Array.from(counted.values)).toEqual([1, 2, 3]);
  });

  it('assertStoredRun refuses broken runs', () => {
    const ok = compressSorted(trustSorted(Float64Array.from([1, 1, 2])), 2);
    expect(() => assertStoredRun(ok)).not.toThrow();
    expect(() => assertStoredRun({ ...ok, count: 4 })).toThrow(/claims 4/);
    expect(() => assertStoredRun({ ...ok, ends: Float64Array.from([2, 2]) })).toThrow(/ends\[1\]/);
    expect(() => assertStoredRun({ values: trustSorted(Float64Array.from([2, 1])), ends: null, count: 2, distinct: 2 })).toThrow(
      /not sorted/,
    );
    expect(() =>
      assertStoredRun({ values: trustSorted(Float64Array.from([1, 1])), ends: Float64Array.from([1, 2]), count: 2, distinct: 2 }),
    ).toThrow(/not sorted/);
  });
});

describe.each(['ts', 'wasm'] as const)('mergeRuns with the %s kernels', (kind) => {
  let kernels: Kernels;
  beforeAll(async () => {
    kernels = kind === 'ts' ? createTsKernels() : await createWasmKernels({ build: 'debug' });
  });

  it('merge(a, b) ≡ encode(sort(a ++ b)) for every pair of encodings and every policy', () => {
    fc.assert(
      fc.property(sortedArb, policyArb, sortedArb, policyArb, policyArb, (a, aPolicy, b, bPolicy, policy) => {
        const ra = stored(a, aPolicy);
        const rb = stored(b, bPolicy);
        const before = [hex(ra.values), ra.ends === null ? null : hex(ra.ends)];
        const merged = mergeRuns(kernels, ra, rb, policy);
        assertStoredRun(merged);
        const want = sortedCopy([...a, ...b]);
        expect(hex(expandRun(merged))).toEqual(hex(want));
        expect(merged.distinct).toBe(countDistinct(want));
        if (policy === 'auto') expect(encodingOf(merged)).toBe(chooseEncoding(want.length, countDistinct(want), 'auto'));
        else expect(encodingOf(merged)).toBe(policy);
        expect([hex(ra.values), ra.ends === null ? null : hex(ra.ends)], 'inputs unchanged').toEqual(before);
        expect(merged.values.buffer).not.toBe(ra.values.buffer);
        expect(merged.values.buffer).not.toBe(rb.values.buffer);
      }),
      { numRuns: 400 },
    );
  });

  it('merges two counted runs of 1e7 values over 1e4 integers touching only their distinct values', () => {
    const make = (offset: number): StoredRun => {
      const values = new Float64Array(10_000);
      const ends = new Float64Array(10_000);
      for (let i = 0; i < values.length; i++) {
        values[i] = i + offset;
        ends[i] = (i + 1) * 1000;
      }
      return { values: trustSorted(values), ends, count: 10_000_000, distinct: 10_000 };
    };
    const merged = mergeRuns(kernels, make(0), make(5000), 'auto');
    expect(merged).toMatchObject({ count: 20_000_000, distinct: 15_000 });
    expect(valueAtRank(merged, 4_999_999)).toBe(4999);
    expect(valueAtRank(merged, 5_000_000)).toBe(5000);
    expect(valueAtRank(merged, 14_999_999)).toBe(9999);
    expect(valueAtRank(merged, 15_000_000)).toBe(10_000);
  });
});

describe('mergeCountedInto', () => {
  it('collapses ties inside a plain input and across inputs, keeping -0 and +0 apart', () => {
    const a = { values: trustSorted(Float64Array.from([-0, -0, 0, 1, 1])), ends: null, count: 5 };
    const b = { values: trustSorted(Float64Array.from([-0, 1, 2])), ends: Float64Array.from([1, 4, 5]), count: 5 };
    const values = new Float64Array(6);
    const ends = new Float64Array(6);
    const d = mergeCountedInto(a, b, values, ends);
    expect(d).toBe(4);
    expect(hex(values.subarray(0, d))).toEqual(hex([-0, 0, 1, 2]));
    expect(Array.from(ends.subarray(0, d))).toEqual([3, 4, 9, 10]);
  });
});

describe('selection across runs of mixed encodings', () => {
  /** A few runs, each in a random encoding; sometimes many, so the weighted-median pivot is used. */
  const runsArb = fc
    .array(fc.tuple(sortedArb, policyArb), { minLength: 1, maxLength: 40 })
    .map((parts) => parts.map(([values, policy]) => ({ values, run: stored(values, policy) })));

  it('selectRank, nextRankValue, countBelow and extremes equal a sort of the union', () => {
    fc.assert(
      fc.property(runsArb, fc.double({ min: 0, max: 1, noNaN: true }), valueArb, (parts, at, probe) => {
        const runs = parts.map((p) => p.run);
        const union = sortedCopy(parts.flatMap((p) => Array.from(p.values)));
        if (union.length === 0) return;
        const k = Math.min(union.length - 1, Math.floor(at * union.length));
        expect(bitsHex(selectRank(runs, k)), `rank ${k} of [${hex(union)}]`).toBe(bitsHex(union[k]));
        if (k + 1 < union.length) expect(bitsHex(nextRankValue(runs, k, union[k]))).toBe(bitsHex(union[k + 1]));
        expect(countBelow(runs, probe, false)).toBe(union.filter((x) => x < probe).length);
        expect(countBelow(runs, probe, true)).toBe(union.filter((x) => x <= probe).length);
        const { min, max } = extremes(runs);
        expect([bitsHex(min), bitsHex(max)]).toEqual([bitsHex(union[0]), bitsHex(union[union.length - 1])]);
      }),
      { numRuns: 500 },
    );
  });

  it('every rank of 300 runs from 300 disjoint ranges (each median an extreme for the others)', () => {
    const runs: StoredRun[] = [];
    const all: number[] = [];
    for (let r = 0; r < 300; r++) {
      const values = Float64Array.from({ length: 50 }, (_, i) => r * 1000 + Math.floor(i / (1 + (r % 3))));
      runs.push(stored(values, r % 2 === 0 ? 'counted' : 'plain'));
      all.push(...values);
    }
    const union = sortedCopy(all);
    for (let k = 0; k < union.length; k += 7) expect(selectRank(runs, k)).toBe(union[k]);
    expect(selectRank(runs, union.length - 1)).toBe(union[union.length - 1]);
  });
});
