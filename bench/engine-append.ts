// Appending to a pool: QuantileEngine.appendValues (copy, check, sort the
// batch, push the run, apply the merge policy) with 10 and with 1000 values,
// on pools already holding 1e3 … 1e7 values, merges inline
// (setMergeOffloader(null)).
//
// The pools are built the way clients build them (appends of 1000), then kept
// as a snapshot of their immutable runs. Appends grow the pool, and now and
// then the merge policy merges large runs; that occasional big merge is what
// the p99 and max columns show, so every append is timed on its own. A pool is
// put back to its snapshot (replacePool, untimed, in a hook) once it has
// doubled, so "pool 1e7" always means 1e7–2e7 values. Hooks outside the timed
// call also count which appends merged and the largest run a merge produced.
//
// A short timing window rarely reaches the rare merges of the largest runs,
// so one more group times the worst case directly: a pool laid out so that a
// single 10-value append merges every run into one (cascadeLengths).

import { createEngine } from '../src/core/create-engine.js';
import type { QuantileEngine } from '../src/core/engine.js';
import { DEFAULT_TAIL } from '../src/core/pool-store.js';
import { runIfMain, type BenchArgs } from './lib/cli.js';
import { batchRing, cascadeChain, seededRng } from './lib/data.js';
import { buildPoolFixtures, fixtureKey, type PoolFixture } from './lib/pool-fixtures.js';
import { groupTiming, harnessTasks, runGroup, type TaskSpec } from './lib/measure.js';
import { formatCount, formatNs, pick, ratio, winner, type BenchReport, type TableRow, type TaskRecord } from './lib/report.js';

const BUILD_BATCH = 1000;
const RING = 64;
const CASCADE_POOL_ID = 1_000_000;

/** Appends one ring batch per timed call; hooks reset the pool and watch its runs. */
function appendTask(fixture: PoolFixture, batchSize: number, ring: readonly Float64Array[], caseLabel: string): TaskSpec {
  const { engine, poolId, size, snapshot } = fixture;
  let next = 0;
  let before = new Set<number>();
  let appends = 0;
  let merging = 0;
  let largestMerge = 0;
  let resets = 0;
  let maxCount = 0;
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
      beforeEach: (mode) => {
        if (engine.countOf(poolId)! > 2 * size) {
          engine.replacePool(poolId, snapshot);
          if (mode === 'run') resets++;
        }
        before = new Set(engine.runLengths(poolId)); // runsOf would seal the tail and change what is timed
      },
      afterEach: (mode) => {
        if (mode !== 'run') return;
        appends++;
        let largest = 0;
        for (const length of engine.runLengths(poolId)) if (!before.has(length) && length > largest) largest = length;
        if (largest > batchSize) {
          merging++;
          largestMerge = Math.max(largestMerge, largest);
        }
        maxCount = Math.max(maxCount, engine.countOf(poolId)!);
      },
    },
    extra: () => ({ appends, merging, largestMerge, resets, maxCount }),
  };
}

export async function run(args: BenchArgs): Promise<BenchReport> {
  const started = performance.now();
  const sizes = args.quick ? [1e3, 1e5, 1e6] : [1e3, 1e5, 1e6, 1e7];
  const batchSizes = [10, 1000];
  const cascadeTarget = args.quick ? 1e6 : 1e7;

  const engines = [await createEngine({ kind: 'wasm', wasmBuild: 'release' }), await createEngine({ kind: 'ts' })];
  const fixtures = buildPoolFixtures(engines, sizes, BUILD_BATCH);

  const rng = seededRng(0xa99e);
  const rings = new Map(batchSizes.map((b) => [b, batchRing(RING, b, rng)]));
  const records: TaskRecord[] = [];
  const caseLabel = (size: number, b: number): string => `+${b} → pool ${formatCount(size)}`;

  for (const size of sizes) {
    for (const b of batchSizes) {
      const label = caseLabel(size, b);
      const specs: TaskSpec[] = [
        ...engines.map((engine) => appendTask(fixtures.get(fixtureKey(engine.kind, size))!, b, rings.get(b)!, label)),
        ...harnessTasks(label),
      ];
      records.push(...runGroup(`append ${label}`, groupTiming(args.quick, 'fast'), specs));
    }
  }

  // Worst case: one 10-value append that merges every run of a ~target pool.
  // Small appends merge into the pool's tail, so the append that cascades is
  // the one that fills the tail: the tail (TAIL_FILL values) is sealed into a
  // run and the merge policy then merges the whole chain.
  const { maxValues: tailMax } = DEFAULT_TAIL;
  const fills = Math.floor(tailMax / 10);
  const tailFill = fills * 10; // the timed append of 10 overflows a tail holding this many
  const chain = cascadeChain(tailFill, cascadeTarget, rng);
  const chainValues = chain.reduce((sum, run) => sum + run.length, 0) + tailFill;
  const cascadeLabel = `+10 cascading through ${chain.length + 1} runs (${formatCount(Math.round(chainValues))} values)`;
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
  const cascadeSpecs: TaskSpec[] = engines.map((engine) => {
    let next = 0;
    return {
      name: `${engine.kind} appendValues [cascade]`,
      case: cascadeLabel,
      engine: engine.kind,
      role: 'kernel',
      fn: () => {
        engine.appendValues(CASCADE_POOL_ID, ring10[next]);
        next = next + 1 === ring10.length ? 0 : next + 1;
      },
      opts: { beforeEach: () => loadChainWithFullTail(engine) },
    };
  });
  records.push(...runGroup('append cascade', groupTiming(args.quick, 'slow'), cascadeSpecs));
  for (const engine of engines) engine.deletePool(CASCADE_POOL_ID);

  // Tables.
  const meanRows: TableRow[] = [];
  const tailRows: TableRow[] = [];
  const summary: Record<string, number | string> = {};
  const labels = [
    ...sizes.flatMap((size) => batchSizes.map((b) => ({ label: caseLabel(size, b), b, cascade: false }))),
    { label: cascadeLabel, b: 10, cascade: true },
  ];
  for (const { label, b, cascade } of labels) {
    const wasm = pick(records, { case: label, engine: 'wasm' });
    const ts = pick(records, { case: label, engine: 'ts' });
    const harness = records.find((r) => r.case === label && r.role === 'harness');
    const merges = (r: TaskRecord): string => (cascade ? 'every one' : `${r.extra?.merging}/${r.extra?.appends}`);
    const largest = (r: TaskRecord): string => formatCount(cascade ? Math.round(chainValues) : Number(r.extra?.largestMerge ?? 0));
    meanRows.push({
      case: label,
      'wasm mean': formatNs(wasm.meanNs),
      'ts mean': formatNs(ts.meanNs),
      'ts/wasm': ratio(ts.meanNs, wasm.meanNs),
      faster: winner(ts.meanNs, wasm.meanNs),
      'ns/value wasm': cascade ? '-' : Math.round(wasm.meanNs / b),
      'ns/value ts': cascade ? '-' : Math.round(ts.meanNs / b),
      'merging/timed wasm': merges(wasm),
      'merging/timed ts': merges(ts),
      'largest merge wasm/ts': `${largest(wasm)}/${largest(ts)}`,
      harness: harness === undefined ? '-' : formatNs(harness.meanNs),
    });
    tailRows.push({
      case: label,
      'wasm p50': formatNs(wasm.p50Ns),
      'wasm p99': formatNs(wasm.p99Ns),
      'wasm max': formatNs(wasm.maxNs),
      'ts p50': formatNs(ts.p50Ns),
      'ts p99': formatNs(ts.p99Ns),
      'ts max': formatNs(ts.maxNs),
      'samples wasm/ts': `${wasm.samples}/${ts.samples}`,
    });
    summary[`wasm mean µs ${label}`] = wasm.meanNs / 1e3;
    summary[`ts mean µs ${label}`] = ts.meanNs / 1e3;
    summary[`wasm max µs ${label}`] = wasm.maxNs / 1e3;
    summary[`ts max µs ${label}`] = ts.maxNs / 1e3;
  }

  return {
    bench: 'append',
    title: 'appendValues: one batch into an existing pool (merges inline)',
    quick: args.quick,
    elapsedMs: performance.now() - started,
    records,
    tables: [
      { title: 'Mean per append. ts/wasm > 1: WASM faster. merging/timed = appends that triggered a merge / appends timed.', rows: meanRows },
      { title: 'Latency tail per append (single calls; max is where the big merges land)', rows: tailRows },
    ],
    notes: [
      'Each append is timed alone (1 call per sample, 0.7–100+ µs); "harness" is an empty timed call in the same Bench, included in every sample and not subtracted.',
      'Pools were built by appends of 1000 and reset to that snapshot (untimed) whenever they doubled; "largest merge" is the biggest run a merge produced while timed.',
      'On this VM first writes to fresh memory cost ≈ 3.5 ms per MiB (page faults; engine-merge "alloc+touch"), and every merge writes a fresh allocateRun, so the big merges in max and in the cascade row are mostly page faults, not merge work.',
      `The cascade row resets (untimed) to ${chain.length} runs of ${chain.map((r) => formatCount(r.length)).join(', ')} values and a tail of ${tailFill} values; its one 10-value append overflows the tail, which is sealed into a run, and the merge policy then merges them all: the worst single append at that size with inline merges (setMergeOffloader(null)).`,
    ],
    summary,
  };
}

runIfMain(import.meta.url, run);
