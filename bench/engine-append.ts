// Appending to a pool: QuantileEngine.appendValues with 10 and with 1000
// values, on pools already holding 1e3 … 1e7 values, merges inline.
//
// The pools are built by appends of 1000 and kept as a snapshot of their runs.
// Appends grow the pool and now and then the merge policy merges large runs;
// those rare big merges are what p99 and max show, so every append is timed on
// its own. A pool is put back to its snapshot (untimed) once it has doubled,
// so "pool 1e7" always means 1e7–2e7 values. A short window rarely meets the
// merge of the largest runs, so one more group times that worst case directly:
// a pool laid out so that a single 10-value append merges every run into one.

import { createEngine } from '../src/core/create-engine.js';
import type { QuantileEngine } from '../src/core/engine.js';
import { DEFAULT_TAIL } from '../src/core/pool-store.js';
import { batchRing, buildPoolFixtures, cascadeChain, fixtureKey, seededRng, type PoolFixture } from './lib/data.js';
import {
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

const CASCADE_POOL_ID = 1_000_000;

/** Appends one ring batch per timed call; hooks reset the pool and count the appends that merged. */
function appendTask(fixture: PoolFixture, batchSize: number, ring: readonly Float64Array[], caseLabel: string): TaskSpec {
  const { engine, poolId, size, snapshot } = fixture;
  let next = 0;
  let before = new Set<number>();
  let appends = 0;
  let merging = 0;
  let largestMerge = 0;
  return {
    name: `${engine.kind} appendValues [${caseLabel}]`,
    case: caseLabel,
    engine: engine.kind,
    role: 'kernel',
    fn: () => {
      engine.appendValues(poolId, ring[next]);
      next = next + 1 === ring.length ? 0 : next + 1;
    },
    opts: {
      beforeAll: () => engine.replacePool(poolId, snapshot),
      beforeEach: () => {
        if (engine.countOf(poolId)! > 2 * size) engine.replacePool(poolId, snapshot);
        before = new Set(engine.runLengths(poolId)); // runsOf would seal the tail and change what is timed
      },
      afterEach: (mode) => {
        if (mode !== 'run') return;
        appends++;
        const largest = Math.max(0, ...engine.runLengths(poolId).filter((length) => !before.has(length)));
        if (largest > batchSize) {
          merging++;
          largestMerge = Math.max(largestMerge, largest);
        }
      },
    },
    extra: () => ({ appends, merging, largestMerge }),
  };
}

async function run(quick: boolean): Promise<BenchReport> {
  const sizes = quick ? [1e3, 1e5, 1e6] : [1e3, 1e5, 1e6, 1e7];
  const engines = [await createEngine({ kind: 'wasm', wasmBuild: 'release' }), await createEngine({ kind: 'ts' })];
  const fixtures = buildPoolFixtures(engines, sizes, 1000);
  const rng = seededRng(0xa99e);
  const rings = new Map([10, 1000].map((b) => [b, batchRing(64, b, rng)]));
  const records: TaskRecord[] = [];
  const labels: { label: string; b: number }[] = [];

  for (const size of sizes) {
    for (const [b, ring] of rings) {
      const label = `+${b} → pool ${fmtCount(size)}`;
      labels.push({ label, b });
      const specs = [...engines.map((e) => appendTask(fixtures.get(fixtureKey(e.kind, size))!, b, ring, label)), ...harnessTasks(label)];
      records.push(...runGroup(`append ${label}`, groupTiming(quick, 'fast'), specs));
    }
  }

  // The worst case: small appends go into the pool's tail, so the append that
  // cascades is the one that overflows a full tail; the sealed tail then
  // merges with every run of the chain.
  const fills = Math.floor(DEFAULT_TAIL.maxValues / 10);
  const chain = cascadeChain(fills * 10, quick ? 1e6 : 1e7, rng);
  const chainValues = chain.reduce((sum, r) => sum + r.length, 0) + fills * 10;
  const cascadeLabel = `+10 cascading through ${chain.length + 1} runs (${fmtCount(chainValues)} values)`;
  const ring10 = rings.get(10)!;
  const loadChainWithFullTail = (engine: QuantileEngine): void => {
    engine.replacePool(CASCADE_POOL_ID, chain);
    for (let i = 0; i < fills; i++) engine.appendValues(CASCADE_POOL_ID, ring10[i % ring10.length]);
  };
  for (const engine of engines) {
    loadChainWithFullTail(engine);
    if (engine.runLengths(CASCADE_POOL_ID).length !== chain.length + 1) throw new Error('cascade chain was compacted on load');
    engine.appendValues(CASCADE_POOL_ID, ring10[0]);
    if (engine.runLengths(CASCADE_POOL_ID).length !== 2) throw new Error('cascade chain did not merge into one run (+ the new tail)');
  }
  const cascadeSpecs: TaskSpec[] = engines.map((engine) => ({
    name: `${engine.kind} appendValues [cascade]`,
    case: cascadeLabel,
    engine: engine.kind,
    role: 'kernel',
    fn: () => engine.appendValues(CASCADE_POOL_ID, ring10[1]),
    opts: { beforeEach: () => loadChainWithFullTail(engine) },
  }));
  records.push(...runGroup('append cascade', groupTiming(quick, 'slow'), cascadeSpecs));
  for (const engine of engines) engine.deletePool(CASCADE_POOL_ID);

  const rows: Row[] = [...labels, { label: cascadeLabel, b: 0 }].map(({ label, b }) => {
    const [wasm, ts] = (['wasm', 'ts'] as const).map((engine) => pick(records, { case: label, engine }));
    const merges = (r: TaskRecord): string => (b === 0 ? 'every one' : `${r.extra?.merging}/${r.extra?.appends}`);
    const harness = records.find((r) => r.case === label && r.role === 'harness');
    return {
      case: label,
      'wasm p50 / mean': `${fmtNs(wasm.p50Ns)} / ${fmtNs(wasm.meanNs)}`,
      'ts p50 / mean': `${fmtNs(ts.p50Ns)} / ${fmtNs(ts.meanNs)}`,
      ...versus(ts.meanNs, wasm.meanNs),
      'wasm p99 / max': `${fmtNs(wasm.p99Ns)} / ${fmtNs(wasm.maxNs)}`,
      'ts p99 / max': `${fmtNs(ts.p99Ns)} / ${fmtNs(ts.maxNs)}`,
      'merging/timed wasm, ts': `${merges(wasm)}, ${merges(ts)}`,
      'largest merge': fmtCount(b === 0 ? chainValues : Math.max(Number(wasm.extra?.largestMerge), Number(ts.extra?.largestMerge))),
      'empty call': harness === undefined ? '–' : fmtNs(harness.meanNs),
    };
  });
  return {
    title: 'appendValues: one batch into an existing pool (merges inline)',
    records,
    tables: [{ title: 'Per append (single calls). ts/wasm > 1: WASM faster (by the mean).', rows }],
    notes: [
      '"merging/timed": appends that triggered a merge / appends timed; the big merges land in max. Pools reset (untimed) to their snapshot once doubled.',
      'Every merge writes a fresh allocateRun, so the big merges in max and in the cascade row are largely first-touch page faults (engine-merge "alloc+touch").',
      `The cascade row resets (untimed) to runs of ${chain.map((r) => fmtCount(r.length)).join(', ')} values and a full tail; its one 10-value append merges them all.`,
    ],
  };
}

runBench('append', run);
