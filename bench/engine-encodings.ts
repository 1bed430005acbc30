// Run encodings, windows aside: what plain and counted runs cost in memory and
// time, and percentiles across pools. Rows (both engines):
//   memory     bytes per value held in run arrays and by the process (RSS),
//              10^7 random doubles and 10^8 integers from 0..9999, each built
//              by appends of 10^5 in a fresh `node --expose-gc` child;
//   query      quantile(99.5) right after an append of 10 values, 10^7 values:
//              random doubles (plain runs), integers (counted), and the same
//              integers with plain runs forced;
//   merge      mergeRuns of two runs of 10^6 values: plain doubles, counted
//              integers, the integers forced plain, and compressing a sorted
//              run of 10^6 integers (the counted encoding's one O(n) pass);
//   union      quantilesAcross 100 pools of 10^5 values (built by appends of
//              10^4), doubles and integers.
// Targets are printed beside the numbers they concern; the bench reports, the
// reader judges.

import { fileURLToPath } from 'node:url';
import { createEngine } from '../src/core/create-engine.js';
import type { QuantileEngine } from '../src/core/engine.js';
import type { EngineKind, Kernels } from '../src/core/kernels.js';
import { mergeRuns } from '../src/core/run-merge.js';
import { allocateRun, trustSorted, type SortedRun } from '../src/core/sorted-run.js';
import { encodeSorted, type EncodingPolicy, type StoredRun } from '../src/core/stored-run.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { SERVER_ENV, serverEnvText } from '../src/server-env.js';
import { batchRing, seededRng, type Rng } from './lib/data.js';
import {
  collectGarbage,
  consume,
  groupTiming,
  harnessTasks,
  pick,
  progress,
  runBench,
  runGroup,
  type BenchReport,
  type TaskRecord,
  type TaskSpec,
} from './lib/engine-bench.js';
import { emitResult, runChild } from './lib/proc.js';
import { fmtCount, fmtNs, type Row } from './lib/report.js';

const KINDS: readonly EngineKind[] = ['wasm', 'ts'];
const DISTINCT = 10_000;
const BATCH = 100_000;

type Data = 'doubles' | 'integers';

function fill(out: Float64Array, data: Data, rng: Rng): Float64Array {
  for (let i = 0; i < out.length; i++) out[i] = data === 'doubles' ? rng() : Math.floor(rng() * DISTINCT);
  return out;
}

/** A pool of `total` values appended in batches of `batch`, as clients would send them. */
function build(engine: QuantileEngine, poolId: number, total: number, batch: number, data: Data, rng: Rng): void {
  const values = new Float64Array(batch);
  for (let done = 0; done < total; done += batch) engine.appendValues(poolId, fill(values, data, rng));
}

// ---- memory: one child per engine and data set ------------------------------

interface MemoryResult {
  engine: EngineKind;
  data: Data;
  values: number;
  runs: number;
  countedRuns: number;
  runBytes: number;
  rssDelta: number;
  heapDelta: number;
  buildMs: number;
}

async function measureMemoryChild(kind: EngineKind, data: Data, values: number): Promise<void> {
  const engine = await createEngine({ kind });
  engine.setMergeOffloader(null);
  await collectGarbage();
  const before = process.memoryUsage();
  const started = performance.now();
  build(engine, 1, values, BATCH, data, seededRng(values));
  const buildMs = performance.now() - started;
  await collectGarbage();
  const after = process.memoryUsage();
  const stats = engine.stats();
  const result: MemoryResult = {
    engine: kind,
    data,
    values,
    runs: stats.runs,
    countedRuns: stats.countedRuns,
    runBytes: stats.runBytes,
    rssDelta: after.rss - before.rss,
    heapDelta: after.heapUsed - before.heapUsed,
    buildMs,
  };
  consume(engine.quantile(1, 50)); // the pool is still reachable when measured
  emitResult(result);
}

/** One measurement in a fresh `node --expose-gc`, with the environment `npm start` gives the server. */
async function memoryChild(kind: EngineKind, data: Data, values: number): Promise<MemoryResult> {
  const { GLIBC_TUNABLES: _g, MALLOC_MMAP_THRESHOLD_: _m, ...baseEnv } = process.env;
  const script = fileURLToPath(import.meta.url);
  const { result } = await runChild<MemoryResult>(script, ['--child', kind, data, String(values)], {
    nodeArgs: ['--expose-gc'],
    env: { ...baseEnv, ...SERVER_ENV },
    timeoutMs: 900_000,
  });
  return result;
}

// ---- timed rows ---------------------------------------------------------------

/** Query right after an append of 10, on a pool of `size` values of `data` stored under `encoding`. */
async function queryTasks(kind: EngineKind, data: Data, encoding: EncodingPolicy, size: number, label: string): Promise<TaskSpec[]> {
  const engine = await createEngine({ kind, encoding });
  engine.setMergeOffloader(null);
  build(engine, 1, size, BATCH, data, seededRng(size));
  const ring = batchRing(64, 10, seededRng(7)).map((batch) => (data === 'doubles' ? batch : batch.map((x) => Math.floor(x * DISTINCT))));
  let next = 0;
  return [
    {
      name: `${kind} query after append [${label}]`,
      case: label,
      engine: kind,
      role: 'kernel',
      fn: () => consume(engine.quantile(1, 99.5)),
      opts: {
        beforeEach: () => {
          engine.appendValues(1, ring[next]);
          next = (next + 1) % ring.length;
        },
      },
      extra: () => ({ runs: engine.runLengths(1).length, countedRuns: engine.stats().countedRuns }),
    },
  ];
}

function sortedRun(n: number, data: Data, rng: Rng): SortedRun {
  return trustSorted(fill(allocateRun(n), data, rng).sort());
}

function mergeTasks(kernels: readonly Kernels[], n: number): { specs: TaskSpec[]; cases: string[] } {
  const rng = seededRng(0x5eed);
  const inputs: [string, StoredRun, StoredRun, EncodingPolicy][] = [];
  for (const [label, data, policy] of [
    ['doubles, plain', 'doubles', 'auto'],
    ['integers, counted', 'integers', 'auto'],
    ['integers, plain forced', 'integers', 'plain'],
  ] as const) {
    inputs.push([label, encodeSorted(sortedRun(n, data, rng), policy), encodeSorted(sortedRun(n, data, rng), policy), policy]);
  }
  const specs: TaskSpec[] = [];
  for (const [label, a, b, policy] of inputs) {
    for (const k of kernels) {
      specs.push({ name: `${k.kind} merge [${label}]`, case: label, engine: k.kind, role: 'kernel', fn: () => mergeRuns(k, a, b, policy) });
    }
  }
  const ints = sortedRun(n, 'integers', rng);
  specs.push({ name: 'compress [integers]', case: 'compress', engine: null, role: 'kernel', fn: () => encodeSorted(ints, 'counted') });
  return { specs, cases: [...inputs.map(([label]) => label)] };
}

async function unionTasks(kind: EngineKind, data: Data, label: string): Promise<TaskSpec[]> {
  const engine = await createEngine({ kind });
  engine.setMergeOffloader(null);
  const rng = seededRng(100);
  const ids = Array.from({ length: 100 }, (_, i) => i);
  for (const id of ids) build(engine, id, 100_000, 10_000, data, rng);
  const runs = engine.stats().runs;
  return [
    {
      name: `${kind} union of 100 pools [${label}]`,
      case: label,
      engine: kind,
      role: 'kernel',
      fn: () => consume(engine.quantilesAcross(ids, [99.5]).quantiles[0]),
      extra: () => ({ runs }),
    },
  ];
}

async function run(quick: boolean): Promise<BenchReport> {
  const notes: string[] = [];

  // Memory.
  const memory: MemoryResult[] = [];
  const doubles = quick ? 1e6 : 1e7;
  const integers = quick ? 1e7 : 1e8;
  for (const kind of KINDS) {
    for (const [data, values] of [
      ['doubles', doubles],
      ['integers', integers],
    ] as const) {
      progress(`  encodings: ${fmtCount(values)} ${data} in a fresh ${kind} child …`);
      memory.push(await memoryChild(kind, data, values));
    }
  }
  const perValue = (bytes: number, n: number): number => Math.round((bytes / n) * 1000) / 1000;
  const memoryRows: Row[] = memory.map((m) => ({
    engine: m.engine,
    data: `${fmtCount(m.values)} ${m.data}`,
    runs: `${m.runs} (${m.countedRuns} counted)`,
    'run arrays B/value': perValue(m.runBytes, m.values),
    'RSS B/value': perValue(m.rssDelta, m.values),
    'heap B/value': perValue(m.heapDelta, m.values),
    'build s': Math.round(m.buildMs / 100) / 10,
  }));
  notes.push(
    `Targets: RSS ≤ 8.5 B/value for 10^7 random doubles (the service's own figure comes from bench/server-memory.ts), ≤ 1 B/value for 10^8 integers over 10^4 distinct. RSS is the child's growth from an empty engine to the built pool after full collections, in the environment npm start gives the server (${serverEnvText()}).`,
  );

  // Query after append, merge, union.
  const size = quick ? 1e6 : 1e7;
  const queryCases: [Data, EncodingPolicy, string][] = [
    ['doubles', 'auto', `${fmtCount(size)} doubles (plain)`],
    ['integers', 'auto', `${fmtCount(size)} integers (counted)`],
    ['integers', 'plain', `${fmtCount(size)} integers (plain forced)`],
  ];
  const records: TaskRecord[] = [];
  for (const [data, encoding, label] of queryCases) {
    const specs = [
      ...(await Promise.all(KINDS.map((kind) => queryTasks(kind, data, encoding, size, label)))).flat(),
      ...harnessTasks(label),
    ];
    records.push(...runGroup(`query ${label}`, groupTiming(quick, 'fast'), specs));
  }
  const kernels: Kernels[] = [await createWasmKernels({ build: 'release' }), createTsKernels()];
  const n = quick ? 1e5 : 1e6;
  const merges = mergeTasks(kernels, n);
  records.push(...runGroup(`merge ${fmtCount(n)} + ${fmtCount(n)}`, groupTiming(quick, 'slow'), merges.specs));
  for (const data of ['doubles', 'integers'] as const) {
    const label = `100 × 1e5 ${data}`;
    const specs = [...(await Promise.all(KINDS.map((kind) => unionTasks(kind, data, label)))).flat(), ...harnessTasks(label)];
    records.push(...runGroup(`union ${label}`, groupTiming(quick, 'fast'), specs));
  }

  const queryRows: Row[] = queryCases.map(([, , label]) => {
    const row: Row = { case: label };
    for (const kind of KINDS) {
      const r = pick(records, { task: `${kind} query after append [${label}]` });
      row[`${kind} p50`] = fmtNs(r.p50Ns);
      row[`${kind} p99`] = fmtNs(r.p99Ns);
      row[`${kind} runs`] = String(r.extra?.runs);
      row[`${kind} p50 / 50 µs`] = Math.round((r.p50Ns / 50_000) * 100) / 100;
    }
    return row;
  });
  const mergeRows: Row[] = merges.cases.map((label) => {
    const row: Row = { case: `${fmtCount(n)} + ${fmtCount(n)} ${label}` };
    for (const k of kernels) {
      const r = pick(records, { task: `${k.kind} merge [${label}]` });
      row[`${k.kind} mean`] = fmtNs(r.meanNs);
      row[`${k.kind} ns/value`] = Math.round((r.meanNs / (2 * n)) * 100) / 100;
    }
    return row;
  });
  const compress = pick(records, { task: 'compress [integers]' });
  mergeRows.push({
    case: `compress ${fmtCount(n)} sorted integers`,
    'wasm mean': fmtNs(compress.meanNs),
    'wasm ns/value': Math.round((compress.meanNs / n) * 100) / 100,
  });
  const unionRows: Row[] = (['doubles', 'integers'] as const).map((data) => {
    const label = `100 × 1e5 ${data}`;
    const row: Row = { case: label };
    for (const kind of KINDS) {
      const r = pick(records, { task: `${kind} union of 100 pools [${label}]` });
      row[`${kind} p50`] = fmtNs(r.p50Ns);
      row[`${kind} p99`] = fmtNs(r.p99Ns);
      row[`${kind} runs`] = String(r.extra?.runs);
      row[`${kind} p50 / 1 ms`] = Math.round((r.p50Ns / 1e6) * 100) / 100;
    }
    return row;
  });
  notes.push(
    'Query: each sample is one uncached quantile(99.5) after an untimed append of 10 values (a tail append). Target: p50 < 50 µs at 10^7 for both encodings ("p50 / 50 µs" < 1).',
    'Merge: mergeRuns as the engine calls it; counted merges walk distinct values in shared TypeScript (the same code under both kernels), plain merges use each engine\'s kernel. "compress" is encodeSorted(…, counted) of one sorted run (shared TypeScript).',
    'Union: quantilesAcross(100 pools, [99.5]); nothing is cached across pools. Target: < 1 ms ("p50 / 1 ms" < 1).',
  );

  return {
    title: 'Run encodings (plain / counted) and percentiles across pools',
    records,
    tables: [
      { title: 'Memory: bytes per value (run arrays, process RSS)', rows: memoryRows },
      { title: 'Query right after an append of 10 values', rows: queryRows },
      { title: 'Merging two runs', rows: mergeRows },
      { title: 'Percentiles across 100 pools of 1e5', rows: unionRows },
    ],
    notes,
    data: memory,
  };
}

// `--child KIND DATA VALUES`: one memory measurement, in its own process
const [mode, childKind, childData, childValues] = process.argv.slice(2);
if (mode === '--child' && (childKind === 'wasm' || childKind === 'ts') && (childData === 'doubles' || childData === 'integers')) {
  measureMemoryChild(childKind, childData, Number(childValues)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  runBench('encodings', run);
}
