// Both engines against numpy.percentile, bit for bit, over the table that
// scripts/gen_numpy_fixtures.py generated (test/fixtures/numpy-quantiles.json):
// every dataset × all 13 methods × its percentiles. Each dataset goes in through
// several appends so the answers come from multi-run rank selection, not one run.
// Unions: groups of datasets, one pool each, queried across pools; numpy's
// answer is for their concatenation. They run for each run encoding forced too.
//
// Zero signs: numpy finds order statistics with ndarray.partition, which is not
// stable, so where -0.0 and +0.0 tie numpy's result can carry either sign. The
// generator flags those cases (`zeroSignAmbiguous`: numpy's answer changes sign
// when every zero is made +0 versus -0) and stores `expectedTotalOrder`, numpy's
// own index/_lerp code replayed over the data sorted -0-before-+0 (the engine's
// order). For them we require value equality (===) with what np.percentile
// returned and bit equality with expectedTotalOrder.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineKind, QuantileEngine } from '../src/core/engine.js';
import { QUANTILE_METHODS, isQuantileMethod, type QuantileMethod } from '../src/core/methods.js';
import type { EncodingPolicy } from '../src/core/stored-run.js';
import { createTestEngine, ENCODINGS, ENGINE_KINDS } from './helpers/engines.js';
import { bitsHex, describeF64, fromBitsHex, seededRandom } from './helpers/oracle.js';

interface FixtureDataset {
  id: string;
  kind: string;
  n: number;
  /** Bit patterns (16 hex digits) for small datasets… */
  hex?: string[];
  /** …or base64 of little-endian float64 bytes for large ones. */
  base64?: string;
}

interface FixtureCase {
  /** The dataset, or the union (unionCases), the case is about. */
  dataset?: string;
  union?: string;
  method: string;
  p: number;
  expected: string;
  zeroSignAmbiguous?: boolean;
  expectedTotalOrder?: string;
}

interface OverflowCase {
  dataset: string;
  method: string;
  p: number;
  /** numpy's non-finite answer, as Python's repr ('inf', '-inf', 'nan'). */
  numpy: string;
  lower: string;
  upper: string;
  gamma: string;
  /** lower*(1-gamma) + upper*gamma: what the engine returns instead. */
  expectedFinite: string;
}

/** Datasets loaded into pools of their own and queried as one: numpy.percentile of their concatenation. */
interface FixtureUnion {
  id: string;
  datasets: string[];
}

interface Fixture {
  numpyVersion: string;
  methods: string[];
  caseCount: number;
  zeroSignAmbiguousCount: number;
  unionCaseCount: number;
  unionZeroSignAmbiguousCount: number;
  datasets: FixtureDataset[];
  cases: FixtureCase[];
  overflowCases: OverflowCase[];
  unions: FixtureUnion[];
  unionCases: FixtureCase[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/numpy-quantiles.json', import.meta.url), 'utf8')) as Fixture;

function decodeValues(ds: FixtureDataset): Float64Array {
  if (ds.hex !== undefined) return Float64Array.from(ds.hex, fromBitsHex);
  if (ds.base64 === undefined) throw new Error(`dataset ${ds.id} has no values`);
  const bytes = Buffer.from(ds.base64, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(bytes.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

function methodOf(name: string): QuantileMethod {
  if (!isQuantileMethod(name)) throw new Error(`fixture names unknown method ${name}`);
  return name;
}

/**
 * Splits n values into 1–5 appends. Even datasets: sizes shrinking by 3× each, so
 * the merge policy (merge while older <= 2 × newer) keeps them as separate runs.
 * Odd datasets: random cut points, which sometimes merge and sometimes do not.
 */
function chunkBounds(n: number, index: number): number[] {
  const chunks = Math.min(n, 1 + (index % 5));
  const bounds = [0];
  if (index % 2 === 0) {
    const weights = Array.from({ length: chunks }, (_, i) => 3 ** -i);
    const total = weights.reduce((s, w) => s + w, 0);
    let acc = 0;
    for (let i = 0; i < chunks - 1; i++) {
      acc += weights[i];
      bounds.push(Math.max(bounds[bounds.length - 1] + 1, Math.min(n - (chunks - 1 - i), Math.round((n * acc) / total))));
    }
  } else {
    const random = seededRandom(index + 1);
    const cuts = new Set<number>();
    while (cuts.size < chunks - 1) cuts.add(1 + Math.floor(random() * (n - 1)));
    bounds.push(...[...cuts].sort((a, b) => a - b));
  }
  bounds.push(n);
  return bounds;
}

const datasets = fixture.datasets.map((ds, index) => ({ ...ds, index, values: decodeValues(ds) }));
const datasetsById = new Map(datasets.map((ds) => [ds.id, ds]));
function groupBy(cases: readonly FixtureCase[], key: (c: FixtureCase) => string | undefined): Map<string, FixtureCase[]> {
  const groups = new Map<string, FixtureCase[]>();
  for (const c of cases) {
    const id = key(c)!;
    const list = groups.get(id) ?? [];
    list.push(c);
    groups.set(id, list);
  }
  return groups;
}
const casesByDataset = groupBy(fixture.cases, (c) => c.dataset);
const casesByUnion = groupBy(fixture.unionCases, (c) => c.union);

/**
 * Every case's mismatch with what `answer` returns for its method, as lines.
 * Zero-sign-ambiguous cases need numpy's value (===) and the bits of the total order's replay.
 */
function mismatches(
  label: string,
  cases: readonly FixtureCase[],
  answer: (method: QuantileMethod, percentiles: number[]) => number[],
): string[] {
  const failures: string[] = [];
  for (const method of QUANTILE_METHODS) {
    const forMethod = cases.filter((c) => c.method === method);
    if (forMethod.length === 0) continue;
    const got = answer(
      method,
      forMethod.map((c) => c.p),
    );
    forMethod.forEach((c, i) => {
      const g = got[i];
      const numpy = fromBitsHex(c.expected);
      let ok: boolean;
      let want: string;
      if (c.zeroSignAmbiguous === true && c.expectedTotalOrder !== undefined) {
        ok = g === numpy && bitsHex(g) === c.expectedTotalOrder;
        want = `${describeF64(fromBitsHex(c.expectedTotalOrder))} [zero-sign ambiguous; numpy gave ${describeF64(numpy)}]`;
      } else {
        ok = bitsHex(g) === c.expected;
        want = describeF64(numpy);
      }
      if (!ok) failures.push(`${label} ${method} p=${c.p}: expected ${want}, got ${describeF64(g)}`);
    });
  }
  return failures;
}

function loadDataset(engine: QuantileEngine, poolId: number, values: Float64Array, index: number): void {
  const bounds = chunkBounds(values.length, index);
  for (let i = 0; i + 1 < bounds.length; i++) engine.appendValues(poolId, values.subarray(bounds[i], bounds[i + 1]));
}

describe('numpy fixture table', () => {
  it('is the generated table, large enough and complete', () => {
    expect(fixture.numpyVersion).toMatch(/^\d+\.\d+/);
    expect(fixture.cases.length).toBe(fixture.caseCount);
    expect(fixture.cases.length).toBeGreaterThanOrEqual(3000);
    expect(fixture.methods).toEqual([...QUANTILE_METHODS]);
    expect(new Set(fixture.cases.map((c) => c.method))).toEqual(new Set(QUANTILE_METHODS));
    expect(fixture.cases.filter((c) => c.zeroSignAmbiguous === true).length).toBe(fixture.zeroSignAmbiguousCount);
    for (const ds of datasets) expect(ds.values.length, ds.id).toBe(ds.n);
    const sizes = new Set(datasets.map((ds) => ds.n));
    for (const n of [1, 2, 20, 100, 1000, 10000, 100000]) expect(sizes.has(n), `size ${n}`).toBe(true);
    expect(fixture.unionCases.length).toBe(fixture.unionCaseCount);
    expect(fixture.unions.length).toBeGreaterThanOrEqual(30);
    expect(fixture.unionCases.filter((c) => c.zeroSignAmbiguous === true).length).toBe(fixture.unionZeroSignAmbiguousCount);
    for (const union of fixture.unions) for (const id of union.datasets) expect(datasetsById.has(id), `${union.id} names ${id}`).toBe(true);
  });

  it('holds the seed example: [1, 7, 2, 6] at 99.5 is 6.984999999999999', () => {
    const seed = fixture.cases.find((c) => c.dataset!.includes('seed_example') && c.method === 'linear' && c.p === 99.5);
    expect(seed?.expected).toBe(bitsHex(6.984999999999999));
  });
});

describe.each(ENGINE_KINDS)('%s engine matches numpy.percentile bit for bit', (kind: EngineKind) => {
  let engine: QuantileEngine;
  let maxRuns = 0;

  beforeAll(async () => {
    engine = await createTestEngine(kind);
  });
  afterAll(() => {
    // Guards the point of the chunking: some pools really were several runs.
    expect(maxRuns).toBeGreaterThanOrEqual(4);
  });

  it.each(datasets.map((ds) => [ds.id, ds] as const))('%s', (_id, ds) => {
    const poolId = ds.index + 1;
    loadDataset(engine, poolId, ds.values, ds.index);
    maxRuns = Math.max(maxRuns, engine.runsOf(poolId).length);
    expect(engine.countOf(poolId)).toBe(ds.n);

    const failures = mismatches(ds.id, casesByDataset.get(ds.id) ?? [], (method, ps) => engine.quantiles(poolId, ps, method));
    engine.deletePool(poolId);
    expect(failures, failures.slice(0, 20).join('\n')).toEqual([]);
  });

  it('returns the finite a*(1-t) + b*t where numpy overflows to ±inf or NaN', () => {
    expect(fixture.overflowCases.length).toBeGreaterThan(0);
    const failures: string[] = [];
    const poolIds = new Map<string, number>();
    for (const c of fixture.overflowCases) {
      const ds = datasetsById.get(c.dataset);
      if (ds === undefined) throw new Error(`overflow case names unknown dataset ${c.dataset}`);
      let poolId = poolIds.get(ds.id);
      if (poolId === undefined) {
        poolId = 100_000 + ds.index;
        loadDataset(engine, poolId, ds.values, ds.index);
        poolIds.set(ds.id, poolId);
      }
      expect(['inf', '-inf', 'nan'], c.dataset).toContain(c.numpy);
      const g = engine.quantile(poolId, c.p, methodOf(c.method));
      const a = fromBitsHex(c.lower);
      const b = fromBitsHex(c.upper);
      const between = Math.min(a, b) <= g && g <= Math.max(a, b);
      if (!Number.isFinite(g) || !between || bitsHex(g) !== c.expectedFinite) {
        failures.push(
          `${c.dataset} ${c.method} p=${c.p}: numpy ${c.numpy}, neighbours ${describeF64(a)} .. ${describeF64(b)}, ` +
            `t=${describeF64(fromBitsHex(c.gamma))}: expected ${describeF64(fromBitsHex(c.expectedFinite))}, got ${describeF64(g)}`,
        );
      }
    }
    for (const poolId of poolIds.values()) engine.deletePool(poolId);
    expect(failures, failures.slice(0, 20).join('\n')).toEqual([]);
  });
});

describe.each(ENGINE_KINDS.flatMap((kind) => ENCODINGS.map((encoding) => [kind, encoding] as const)))(
  '%s engine (%s encoding): percentiles across pools match numpy.percentile of their concatenation',
  (kind: EngineKind, encoding: EncodingPolicy) => {
    let engine: QuantileEngine;
    beforeAll(async () => {
      engine = await createTestEngine(kind, undefined, { encoding });
    });

    it.each(fixture.unions.map((union) => [union.id, union] as const))('%s', (_id, union) => {
      // One pool per member, each loaded through its dataset's appends; a dataset listed twice fills two pools.
      const poolIds = union.datasets.map((datasetId, j) => {
        const ds = datasetsById.get(datasetId)!;
        loadDataset(engine, 1 + j, ds.values, ds.index);
        return 1 + j;
      });
      const expectedCount = poolIds.reduce((n, id) => n + engine.countOf(id)!, 0);
      const failures = mismatches(union.id, casesByUnion.get(union.id) ?? [], (method, ps) => {
        const answer = engine.quantilesAcross(poolIds, ps, method);
        expect(answer.count).toBe(expectedCount);
        return answer.quantiles;
      });
      for (const id of poolIds) engine.deletePool(id);
      expect(failures, failures.slice(0, 20).join('\n')).toEqual([]);
    });
  },
);
