// The WASM kernels against their oracles, bit for bit: sort and merge against
// Float64Array.prototype.sort (ECMA-262 order, -0 before +0), planQuantile and
// lerp against the TS twin in quantile-math.ts. Every differential test runs on
// both asc targets — debug (asserts on, what `npm test` is about) and release
// (-O3, what production runs) — because the optimizer is where float
// arithmetic could drift. `npm test`'s pretest builds both.
// Then the adapter's memory handling: growth, the memory limit, instances.

import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { PoolqError } from '../src/core/errors.js';
import type { QuantilePlan } from '../src/core/kernels.js';
import { QUANTILE_METHODS } from '../src/core/methods.js';
import { lerpNumpy, planQuantile as planQuantileTs } from '../src/core/quantile-math.js';
import { allocateRun, trustSorted, type SortedRun } from '../src/core/sorted-run.js';
import { countDistinct } from '../src/core/stored-run.js';
import {
  createWasmKernels,
  instantiateWasmKernels,
  loadWasmModule,
  MIN_MEMORY_BYTES,
  WASM32_MAX_MEMORY_BYTES,
  type WasmBuild,
  type WasmKernels,
} from '../src/core/wasm-kernels.js';
import { instantiatePoolqModule } from '../src/core/wasm-module.js';

// ---------------------------------------------------------------- helpers

const MAX = Number.MAX_VALUE;
const EDGE_VALUES = [
  0,
  -0,
  5e-324,
  -5e-324,
  2.2250738585072014e-308,
  -2.2250738585072014e-308,
  1e-310,
  -1e-310,
  1.7e308,
  -1.7e308,
  MAX,
  -MAX,
  1,
  -1,
  0.5,
  -0.5,
  2 ** 53,
  -(2 ** 53),
  1 + 2 ** -52,
  1 - 2 ** -53,
];

/** splitmix32-style PRNG: seeded, so a failure names a reproducible dataset. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** Named datasets (DDSketch style). Each is finite-or-infinite, never NaN. */
const DATASETS: Record<string, (n: number, random: () => number) => Float64Array> = {
  uniform: (n, r) => Float64Array.from({ length: n }, () => r() * 2 - 1),
  // Edge values, subnormals, ±1.7e308 and duplicates, mixed with wide-exponent randoms.
  mixed: (n, r) =>
    Float64Array.from({ length: n }, () => {
      const u = r();
      if (u < 0.3) return EDGE_VALUES[Math.floor(r() * EDGE_VALUES.length)];
      if (u < 0.4) return (r() < 0.5 ? -1 : 1) * Math.floor(r() * 2 ** 20) * 5e-324; // subnormal
      return (r() - 0.5) * 2 ** Math.floor(r() * 2000 - 1000);
    }),
  // Arbitrary bit patterns (every exponent), NaN patterns replaced by -0.
  randomBits: (n, r) => {
    const words = new Uint32Array(n * 2).map(() => Math.floor(r() * 4294967296));
    const values = new Float64Array(words.buffer);
    for (let i = 0; i < n; i++) if (Number.isNaN(values[i])) values[i] = -0;
    return values;
  },
  fewDistinct: (n, r) => Float64Array.from({ length: n }, () => [-0, 0, 3.5, -1e-300, 7][Math.floor(r() * 5)]),
  signedZeros: (n, r) => Float64Array.from({ length: n }, () => (r() < 0.5 ? -0 : 0)),
  // Values differing only in the low 11 bits: one radix pass is active, so the
  // sorted values end up in the scratch buffer rather than in place.
  lowBitsOnly: (n, r) => Float64Array.from({ length: n }, () => 1 + Math.floor(r() * 2048) * 2 ** -52),
  // The same for the 10-bit digits of large inputs.
  lowTenBitsOnly: (n, r) => Float64Array.from({ length: n }, () => 1 + Math.floor(r() * 1024) * 2 ** -52),
  constant: (n) => new Float64Array(n).fill(-2.5),
  ascending: (n) => Float64Array.from({ length: n }, (_, i) => i - n / 2),
  descending: (n) => Float64Array.from({ length: n }, (_, i) => n / 2 - i),
};
// 2^18 - 1 and 2^18: either side of the switch from 11-bit to 10-bit radix digits.
const SIZES = [0, 1, 2, 63, 64, 65, 1000, 100_000, 2 ** 18 - 1, 2 ** 18];

function bitsOf(values: Float64Array): BigUint64Array {
  return new BigUint64Array(values.buffer, values.byteOffset, values.length);
}

/** Index of the first bit-level difference, or -1. */
function firstDifference(actual: Float64Array, expected: Float64Array): number {
  if (actual.length !== expected.length) return Math.min(actual.length, expected.length);
  const x = bitsOf(actual);
  const y = bitsOf(expected);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function show(values: Float64Array): string {
  return values.length <= 100
    ? `[${Array.from(values, (v) => (Object.is(v, -0) ? '-0' : String(v))).join(', ')}]`
    : `(${values.length} values)`;
}

/** Fails with the index, the two values there and (if small) the input. */
function expectSameBits(actual: Float64Array, expected: Float64Array, context: string): void {
  const at = firstDifference(actual, expected);
  if (at >= 0) {
    expect.fail(
      `${context}: differs at index ${at} (length ${actual.length} vs ${expected.length}): ` +
        `got ${Object.is(actual[at], -0) ? '-0' : actual[at]}, expected ${Object.is(expected[at], -0) ? '-0' : expected[at]}`,
    );
  }
}

function sortedCopy(values: Float64Array): SortedRun {
  return trustSorted(values.slice().sort());
}

function concat(a: Float64Array, b: Float64Array): Float64Array {
  const all = new Float64Array(a.length + b.length);
  all.set(a);
  all.set(b, a.length);
  return all;
}

function newPlan(): QuantilePlan {
  return { lo: NaN, hi: NaN, gamma: NaN, take: false };
}

// ------------------------------------------------ differential tests, per build

const BUILDS: WasmBuild[] = ['debug', 'release'];

describe.each(BUILDS)('WASM kernels (%s build)', (build) => {
  let kernels: WasmKernels;
  beforeAll(async () => {
    kernels = await createWasmKernels({ build });
  });

  test('kind is wasm', () => {
    expect(kernels.kind).toBe('wasm');
  });

  describe('sortInPlace matches Float64Array.prototype.sort bit for bit', () => {
    const cases = Object.keys(DATASETS).flatMap((name) => SIZES.map((n) => [name, n] as const));
    test.each(cases)('%s × %i', (name, n) => {
      const input = DATASETS[name](n, rng(n * 7919 + name.length));
      const expected = sortedCopy(input);
      const values = input.slice();
      const sorted = kernels.sortInPlace(values);
      expect(sorted).toBe(values); // in place, same array back
      expectSameBits(sorted, expected, `sort ${name} n=${n} input ${show(input)}`);
    });

    test('property: any finite-or-infinite array (fast-check)', () => {
      fc.assert(
        fc.property(fc.float64Array({ noNaN: true, maxLength: 300 }), (input) => {
          const values = input.slice();
          kernels.sortInPlace(values);
          expect(firstDifference(values, sortedCopy(input))).toBe(-1);
        }),
        { numRuns: 300 },
      );
    });

    test('sorts only the given subarray of a larger buffer', () => {
      const whole = DATASETS.mixed(3000, rng(11));
      const before = whole.slice();
      const window = whole.subarray(1000, 2000);
      kernels.sortInPlace(window);
      expectSameBits(window, sortedCopy(before.subarray(1000, 2000)), 'window');
      expectSameBits(whole.subarray(0, 1000), before.subarray(0, 1000), 'prefix untouched');
      expectSameBits(whole.subarray(2000), before.subarray(2000), 'suffix untouched');
    });

    test('sorts a SharedArrayBuffer-backed run (allocateRun for large runs)', () => {
      const input = DATASETS.uniform(40_000, rng(12));
      const values = allocateRun(input.length);
      expect(values.buffer).toBeInstanceOf(SharedArrayBuffer);
      values.set(input);
      expectSameBits(kernels.sortInPlace(values), sortedCopy(input), 'shared run');
    });
  });

  describe('mergeInto equals sorting the concatenation', () => {
    const pairs: Array<[string, Float64Array, Float64Array]> = [];
    for (const name of ['uniform', 'mixed', 'randomBits', 'fewDistinct', 'signedZeros']) {
      for (const [na, nb] of [
        [0, 0],
        [0, 5],
        [5, 0],
        [1, 1],
        [63, 65],
        [1000, 3],
        [50_000, 50_000],
      ]) {
        pairs.push([`${name} ${na}+${nb}`, DATASETS[name](na, rng(na + 1)), DATASETS[name](nb, rng(nb + 2))]);
      }
    }
    pairs.push(['disjoint, a below b', DATASETS.ascending(500, rng(1)), DATASETS.ascending(500, rng(1)).map((v) => v + 1e6)]);
    pairs.push(['disjoint, b below a', DATASETS.ascending(500, rng(1)).map((v) => v + 1e6), DATASETS.ascending(500, rng(1))]);
    pairs.push(['a ends in -0, b starts with +0', new Float64Array([-1, -0]), new Float64Array([0, 1])]);
    pairs.push(['a ends in +0, b starts with -0', new Float64Array([-1, 0]), new Float64Array([-0, 1])]);
    pairs.push(['both all zeros', new Float64Array([-0, -0, 0]), new Float64Array([-0, 0, 0])]);

    test.each(pairs)('%s', (label, rawA, rawB) => {
      const a = sortedCopy(rawA);
      const b = sortedCopy(rawB);
      const out = new Float64Array(a.length + b.length);
      const expected = sortedCopy(concat(a, b));
      expect(kernels.mergeInto(a, b, out), 'distinct values written').toBe(countDistinct(expected));
      expectSameBits(out, expected, `merge ${label}: a ${show(a)} b ${show(b)}`);
    });

    test('property: merge(a, b) ≡ sort(a ++ b) (fast-check)', () => {
      const run = fc.float64Array({ noNaN: true, maxLength: 200 }).map(sortedCopy);
      fc.assert(
        fc.property(run, run, (a, b) => {
          const out = new Float64Array(a.length + b.length);
          const distinct = kernels.mergeInto(a, b, out);
          expect(firstDifference(out, sortedCopy(concat(a, b)))).toBe(-1);
          expect(distinct).toBe(countDistinct(out));
        }),
        { numRuns: 300 },
      );
    });

    test('property: windowed merges (window 1..8 values) ≡ sort(a ++ b), ties and ±0 at window edges', async () => {
      const module = await loadWasmModule(build);
      const small = fc.constantFrom(-0, 0, 1, -1, 5e-324, -5e-324, 2, MAX);
      const run = fc.array(fc.oneof(small, fc.double({ noNaN: true })), { maxLength: 60 }).map((v) => sortedCopy(Float64Array.from(v)));
      fc.assert(
        fc.property(run, run, fc.integer({ min: 1, max: 8 }), (a, b, mergeWindow) => {
          const windowed = instantiateWasmKernels(module, { mergeWindow });
          const out = new Float64Array(a.length + b.length);
          const distinct = windowed.mergeInto(a, b, out);
          expect(firstDifference(out, sortedCopy(concat(a, b)))).toBe(-1);
          expect(distinct, 'distinct values, counted across window edges').toBe(countDistinct(out));
        }),
        { numRuns: 200 },
      );
    });

    test('rejects an out array of the wrong length', () => {
      const a = sortedCopy(new Float64Array([1, 2]));
      expect(() => kernels.mergeInto(a, a, new Float64Array(3))).toThrow(RangeError);
    });
  });

  describe('planQuantile and interpolate equal quantile-math.ts bit for bit', () => {
    const NS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99, 100, 101, 1000, 1001, 65_536, 1_000_001, 123_456_789, 2 ** 31 + 11, 2 ** 53 - 1];
    const random = rng(42);
    const PERCENTILES = [
      ...Array.from({ length: 1001 }, (_, i) => i / 10),
      ...Array.from({ length: 101 }, (_, i) => i),
      5e-324,
      1e-300,
      1e-9,
      100 - 1e-13,
      99.99999999999999,
      33.333333333333336,
      66.66666666666667,
      12.5,
      37.5,
      62.5,
      87.5,
      ...Array.from({ length: 200 }, () => random() * 100),
    ];

    test(`grid: ${NS.length} n × ${PERCENTILES.length} p × ${QUANTILE_METHODS.length} methods`, () => {
      const wasm = newPlan();
      const ts = newPlan();
      const mismatches: string[] = [];
      for (const n of NS) {
        for (const p of PERCENTILES) {
          for (let method = 0; method < QUANTILE_METHODS.length; method++) {
            kernels.planQuantile(n, p, method, wasm);
            planQuantileTs(n, p, method, ts);
            const same = Object.is(wasm.lo, ts.lo) && Object.is(wasm.hi, ts.hi) && Object.is(wasm.gamma, ts.gamma) && wasm.take === ts.take;
            if (!same && mismatches.length < 10) {
              mismatches.push(`n=${n} p=${p} ${QUANTILE_METHODS[method]}: wasm ${JSON.stringify(wasm)} ts ${JSON.stringify(ts)}`);
            }
          }
        }
      }
      expect(mismatches).toEqual([]);
    });

    test('unknown method ids throw the same RangeError as the TS twin', () => {
      for (const id of [-1, QUANTILE_METHODS.length, 1.5, NaN, 2 ** 32]) {
        expect(() => planQuantileTs(10, 50, id, newPlan())).toThrow(RangeError);
        expect(() => kernels.planQuantile(10, 50, id, newPlan())).toThrow(`unknown quantile method id ${id}`);
      }
    });

    test('interpolate grid, including the overflow fallback near ±1.8e308', () => {
      const ends = [...EDGE_VALUES, 3, -7.25, 1e-300, 123456.789];
      const ts = [0, 1, 0.5, 0.25, 0.75, 1 / 3, 2 / 3, 0.49999999999999994, 0.5000000000000001, 1e-17, 1 - 1e-16];
      const mismatches: string[] = [];
      for (const a of ends) {
        for (const b of ends) {
          for (const t of ts) {
            const wasm = kernels.interpolate(a, b, t);
            const ref = lerpNumpy(a, b, t);
            if (!Object.is(wasm, ref)) mismatches.push(`lerp(${a}, ${b}, ${t}): wasm ${wasm} ts ${ref}`);
          }
        }
      }
      expect(mismatches.slice(0, 10)).toEqual([]);
      expect(kernels.interpolate(-1.7e308, 1.7e308, 0.5)).toBe(0);
    });

    test('property: interpolate ≡ lerpNumpy (fast-check)', () => {
      const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
      fc.assert(
        fc.property(finite, finite, fc.double({ min: 0, max: 1, noNaN: true }), (a, b, t) => {
          expect(Object.is(kernels.interpolate(a, b, t), lerpNumpy(a, b, t))).toBe(true);
        }),
        { numRuns: 2000 },
      );
    });
  });
});

// ----------------------------------------------------------- memory handling

describe('WASM adapter memory (debug build)', () => {
  test('merging two 3e6 runs keeps linear memory near the merge window, not the run size (regression: 16 B per merged value retained)', async () => {
    const kernels = await createWasmKernels({ build: 'debug' });
    const a = sortedCopy(DATASETS.mixed(3_000_000, rng(5)));
    const b = sortedCopy(DATASETS.mixed(3_000_000, rng(6)));
    const out = new Float64Array(a.length + b.length);
    kernels.mergeInto(a, b, out);
    expect(firstDifference(out, sortedCopy(concat(a, b)))).toBe(-1);
    expect(kernels.memoryBytes()).toBeLessThan(2 << 20); // 4 windows of 16 Ki values = 512 KiB
  });

  test('views survive memory growth: small, then 10^6 (forces growth), then small again', async () => {
    const kernels = await createWasmKernels({ build: 'debug' });
    const small = DATASETS.mixed(1000, rng(1));
    expectSameBits(kernels.sortInPlace(small.slice()), sortedCopy(small), 'small before growth');
    const bytesBefore = kernels.memoryBytes();

    const big = DATASETS.mixed(1_000_000, rng(2));
    expectSameBits(kernels.sortInPlace(big.slice()), sortedCopy(big), 'large');
    expect(kernels.memoryBytes()).toBeGreaterThanOrEqual(16_000_000);
    expect(kernels.memoryBytes()).toBeGreaterThan(bytesBefore);

    expectSameBits(kernels.sortInPlace(small.slice()), sortedCopy(small), 'small after growth');
    const plan = newPlan();
    kernels.planQuantile(10, 50, 0, plan); // reads its result slot through a fresh view
    expect(plan).toEqual({ lo: 4, hi: 5, gamma: 0.5, take: false });
    const a = sortedCopy(small);
    const out = new Float64Array(2000);
    kernels.mergeInto(a, a, out);
    expectSameBits(out, sortedCopy(concat(a, a)), 'merge after growth');
  });

  test('grown memory is kept for reuse, not grown again for the same size', async () => {
    const kernels = await createWasmKernels({ build: 'debug' });
    const input = DATASETS.uniform(200_000, rng(3));
    kernels.sortInPlace(input.slice());
    const grown = kernels.memoryBytes();
    kernels.sortInPlace(input.slice());
    kernels.sortInPlace(input.slice(0, 1000));
    expect(kernels.memoryBytes()).toBe(grown);
  });

  test('beyond maxMemoryBytes: PoolqError "unavailable", input untouched, small work still fine', async () => {
    const kernels = await createWasmKernels({ build: 'debug', maxMemoryBytes: 1 << 20, mergeWindow: 1 << 16 }); // a merge window that cannot fit
    const input = DATASETS.uniform(100_000, rng(4)); // sort needs 1.6 MB
    const values = input.slice();
    let error: unknown;
    try {
      kernels.sortInPlace(values);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PoolqError);
    expect((error as PoolqError).code).toBe('unavailable');
    expect((error as PoolqError).message).toMatch(/1048576/);
    expectSameBits(values, input, 'input after refused sort');

    const a = sortedCopy(DATASETS.uniform(40_000, rng(5)));
    expect(() => kernels.mergeInto(a, a, new Float64Array(80_000))).toThrow(expect.objectContaining({ code: 'unavailable' }));

    const small = DATASETS.mixed(5000, rng(6));
    expectSameBits(kernels.sortInPlace(small.slice()), sortedCopy(small), 'small sort after refusal');
    const b = sortedCopy(small);
    const out = new Float64Array(10_000);
    kernels.mergeInto(b, b, out);
    expectSameBits(out, sortedCopy(concat(b, b)), 'small merge after refusal');
    expect(kernels.memoryBytes()).toBeLessThanOrEqual(1 << 20);
  });

  test('options are validated with options.X messages', async () => {
    for (const bad of [0, MIN_MEMORY_BYTES - 1, 1.5e6 + 0.5, WASM32_MAX_MEMORY_BYTES + 1, NaN]) {
      await expect(createWasmKernels({ build: 'debug', maxMemoryBytes: bad })).rejects.toThrow(/options\.maxMemoryBytes must be/);
    }
    await expect(createWasmKernels({ build: 'fast' as WasmBuild })).rejects.toThrow(/options\.build must be/);
    await expect(createWasmKernels({ build: 'debug', maxMemoryBytes: MIN_MEMORY_BYTES })).resolves.toBeDefined();
  });

  test('instances from one compiled module (one per piscina worker) have separate memory', async () => {
    const module = await loadWasmModule('debug');
    expect(await loadWasmModule('debug')).toBe(module); // compiled once per thread
    const first = instantiateWasmKernels(module);
    const second = instantiateWasmKernels(module);
    const secondBytes = second.memoryBytes();
    const big = DATASETS.uniform(300_000, rng(7));
    const small = DATASETS.mixed(500, rng(8));
    const smallCopy = small.slice();
    expectSameBits(first.sortInPlace(big.slice()), sortedCopy(big), 'first instance');
    expectSameBits(second.sortInPlace(smallCopy), sortedCopy(small), 'second instance');
    expect(second.memoryBytes()).toBe(secondBytes);
    expect(first.memoryBytes()).toBeGreaterThan(secondBytes);
  });
});

describe('debug build assertions', () => {
  test('a kernel assertion surfaces as a readable Error, not a bare trap', async () => {
    const wasm = instantiatePoolqModule(await loadWasmModule('debug'));
    const base = wasm.heapBase();
    expect(() => wasm.sortF64(base, -1, base, base)).toThrow(/poolq WASM assertion failed: .* at assembly\/sort\.ts:\d+:\d+/);
  });
});
