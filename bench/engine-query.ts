// Quantile queries: QuantileEngine.quantile(p = 99.5, linear) on pools of
// 1e3 … 1e7 values, in the situation the service meets most: right after an
// append, when the pool's cached answer is gone and the order statistics must
// be selected across the pool's runs (select-rank.ts). The append of 10 values
// runs untimed in beforeEach, so each sample is one uncached query. Beside it,
// the same query repeated on an unchanged pool (a cache hit, in batches of
// 1000 calls). Pools are built by appends of 1000 and reset to that snapshot
// (untimed) once they have doubled; merges run inline.

import { createEngine } from '../src/core/create-engine.js';
import { batchRing, buildPoolFixtures, fixtureKey, seededRng, type PoolFixture } from './lib/data.js';
import {
  consume,
  groupTiming,
  harnessTasks,
  pick,
  runBench,
  runGroup,
  versus,
  type BenchReport,
  type TaskRecord,
  type TaskSpec,
} from './lib/engine-bench.js';
import { fmtCount, fmtNs, type Row } from './lib/report.js';

const PERCENTILE = 99.5;
const CACHED_BATCH = 1000;

function queryTasks(f: PoolFixture, ring: readonly Float64Array[], label: string): TaskSpec[] {
  const { engine, poolId, size, snapshot } = f;
  let next = 0;
  let runsSeen = 0;
  let runsMax = 0;
  let queries = 0;
  const restore = (): void => engine.replacePool(poolId, snapshot);
  return [
    {
      name: `${engine.kind} query after append [${label}]`,
      case: label,
      engine: engine.kind,
      role: 'kernel',
      fn: () => consume(engine.quantile(poolId, PERCENTILE)),
      opts: {
        beforeAll: restore,
        beforeEach: (mode) => {
          if (engine.countOf(poolId)! > 2 * size) restore();
          engine.appendValues(poolId, ring[next]);
          next = next + 1 === ring.length ? 0 : next + 1;
          if (mode !== 'run') return;
          const runs = engine.runLengths(poolId).length; // runsOf would seal the tail
          runsSeen += runs;
          runsMax = Math.max(runsMax, runs);
          queries++;
        },
      },
      extra: () => ({ meanRuns: Math.round((runsSeen / queries) * 10) / 10, maxRuns: runsMax }),
    },
    {
      name: `${engine.kind} cached query [${label}]`,
      case: label,
      engine: engine.kind,
      role: 'kernel',
      batch: CACHED_BATCH,
      fn: () => {
        let s = 0;
        for (let i = 0; i < CACHED_BATCH; i++) s += engine.quantile(poolId, PERCENTILE);
        consume(s);
      },
      opts: {
        beforeAll: () => {
          restore();
          engine.quantile(poolId, PERCENTILE); // fill the cache
        },
      },
    },
  ];
}

async function run(quick: boolean): Promise<BenchReport> {
  const sizes = quick ? [1e3, 1e5, 1e7] : [1e3, 1e5, 1e6, 1e7];
  const engines = [await createEngine({ kind: 'wasm', wasmBuild: 'release' }), await createEngine({ kind: 'ts' })];
  const fixtures = buildPoolFixtures(engines, sizes, 1000);
  for (const size of sizes) {
    const [w, t] = engines.map((e) => e.quantile(fixtures.get(fixtureKey(e.kind, size))!.poolId, PERCENTILE));
    if (!Object.is(w, t)) throw new Error(`engines disagree on p${PERCENTILE} of pool ${size}: wasm ${w}, ts ${t}`);
  }
  const ring = batchRing(64, 10, seededRng(0x9e41));
  const records: TaskRecord[] = [];
  const label = (size: number): string => `pool ${fmtCount(size)}`;
  for (const size of sizes) {
    const specs = [
      ...engines.flatMap((e) => queryTasks(fixtures.get(fixtureKey(e.kind, size))!, ring, label(size))),
      ...harnessTasks(label(size), CACHED_BATCH),
    ];
    records.push(...runGroup(`query ${label(size)}`, groupTiming(quick, 'fast'), specs));
  }

  const rows: Row[] = sizes.map((size) => {
    const task = (kind: string, what: string): TaskRecord => pick(records, { task: `${kind} ${what} [${label(size)}]` });
    const [wasm, ts] = [task('wasm', 'query after append'), task('ts', 'query after append')];
    return {
      case: label(size),
      'wasm p50 / mean / p99': `${fmtNs(wasm.p50Ns)} / ${fmtNs(wasm.meanNs)} / ${fmtNs(wasm.p99Ns)}`,
      'ts p50 / mean / p99': `${fmtNs(ts.p50Ns)} / ${fmtNs(ts.meanNs)} / ${fmtNs(ts.p99Ns)}`,
      ...versus(ts.meanNs, wasm.meanNs),
      'wasm max': fmtNs(wasm.maxNs),
      'ts max': fmtNs(ts.maxNs),
      'cached wasm / ts': `${fmtNs(task('wasm', 'cached query').meanNs)} / ${fmtNs(task('ts', 'cached query').meanNs)}`,
      runs: `${wasm.extra?.meanRuns} (max ${wasm.extra?.maxRuns})`,
      'empty call': fmtNs(pick(records, { case: label(size), role: 'harness', batch: 1 }).meanNs),
    };
  });
  return {
    title: `quantile(p=${PERCENTILE}) right after an append of 10 values, and cached`,
    records,
    tables: [{ title: 'Per query (single calls; cached: mean of 1000-call batches). ts/wasm > 1: WASM faster.', rows }],
    notes: [
      '"runs": runs the pool held when queried (mean, max); selection cost grows with it.',
      'Both engines share the pool store and select-rank code, so query differences between them are mostly noise and memory layout.',
    ],
  };
}

runBench('query', run);
