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

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../src/core/create-engine.js';
import type { QuantileEngine } from '../src/core/engine.js';
import type { EngineKind, Kernels } from '../src/core/kernels.js';
import { mergeRuns } from '../src/core/run-merge.js';
import { allocateRun, trustSorted, type SortedRun } from '../src/core/sorted-run.js';
import { encodeSorted, type EncodingPolicy, type StoredRun } from '../src/core/stored-run.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { collectGarbage, isMain, parseArgs, runIfMain, type BenchArgs } from './lib/cli.js';
import { batchRing, seededRng, type Rng } from './lib/data.js';
import { consume, groupTiming, harnessTasks, progress, runGroup, type TaskSpec } from './lib/measure.js';
import { formatCount, formatNs, pick, type BenchReport, type TableRow, type TaskRecord } from './lib/report.js';

const KINDS: readonly EngineKind[] = ['wasm', 'ts'];
const DISTINCT = 10_000;
const BATCH = 100_000;
const RESULT_PREFIX = 'ENCODINGS_MEMORY_RESULT ';

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
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

function memoryChild(kind: EngineKind, data: Data, values: number): Promise<MemoryResult> {
  const args = ['--expose-gc', fileURLToPath(import.meta.url), '--child', kind, '--data', data, '--values', String(values)];
  return new Promise((resolve, reject) => {
    // The allocator setting npm start uses.
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' },
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || line === undefined) reject(new Error(`memory child ${kind} ${data} exited with ${code}`));
      else resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as MemoryResult);
    });
  });
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

export async function run(args: BenchArgs): Promise<BenchReport> {
  const started = performance.now();
  const notes: string[] = [];
  const summary: Record<string, number | string | boolean> = {};

  // Memory.
  const memory: MemoryResult[] = [];
  const doubles = args.quick ? 1e6 : 1e7;
  const integers = args.quick ? 1e7 : 1e8;
  for (const kind of KINDS) {
    for (const [data, values] of [
      ['doubles', doubles],
      ['integers', integers],
    ] as const) {
      progress(`  encodings: ${formatCount(values)} ${data} in a fresh ${kind} child …`);
      memory.push(await memoryChild(kind, data, values));
    }
  }
  const perValue = (bytes: number, n: number): number => Math.round((bytes / n) * 1000) / 1000;
  const memoryRows: TableRow[] = memory.map((m) => ({
    engine: m.engine,
    data: `${formatCount(m.values)} ${m.data}`,
    runs: `${m.runs} (${m.countedRuns} counted)`,
    'run arrays B/value': perValue(m.runBytes, m.values),
    'RSS B/value': perValue(m.rssDelta, m.values),
    'heap B/value': perValue(m.heapDelta, m.values),
    'build s': Math.round(m.buildMs / 100) / 10,
  }));
  for (const m of memory) {
    summary[`${m.engine} ${m.data} RSS B/value`] = perValue(m.rssDelta, m.values);
    summary[`${m.engine} ${m.data} run arrays B/value`] = perValue(m.runBytes, m.values);
  }
  notes.push(
    `Targets: RSS ≤ 8.5 B/value for 10^7 random doubles (the service's own figure comes from bench/server-memory.ts), ≤ 1 B/value for 10^8 integers over 10^4 distinct. RSS is the child's growth from an empty engine to the built pool after full collections, with MALLOC_MMAP_THRESHOLD_=131072 as under npm start.`,
  );

  // Query after append, merge, union.
  const size = args.quick ? 1e6 : 1e7;
  const queryCases: [Data, EncodingPolicy, string][] = [
    ['doubles', 'auto', `${formatCount(size)} doubles (plain)`],
    ['integers', 'auto', `${formatCount(size)} integers (counted)`],
    ['integers', 'plain', `${formatCount(size)} integers (plain forced)`],
  ];
  const records: TaskRecord[] = [];
  for (const [data, encoding, label] of queryCases) {
    const specs = [
      ...(await Promise.all(KINDS.map((kind) => queryTasks(kind, data, encoding, size, label)))).flat(),
      ...harnessTasks(label),
    ];
    records.push(...runGroup(`query ${label}`, groupTiming(args.quick, 'fast'), specs));
  }
  const kernels: Kernels[] = [await createWasmKernels({ build: 'release' }), createTsKernels()];
  const n = args.quick ? 1e5 : 1e6;
  const merges = mergeTasks(kernels, n);
  records.push(...runGroup(`merge ${formatCount(n)} + ${formatCount(n)}`, groupTiming(args.quick, 'slow'), merges.specs));
  for (const data of ['doubles', 'integers'] as const) {
    const label = `100 × 1e5 ${data}`;
    const specs = [...(await Promise.all(KINDS.map((kind) => unionTasks(kind, data, label)))).flat(), ...harnessTasks(label)];
    records.push(...runGroup(`union ${label}`, groupTiming(args.quick, 'fast'), specs));
  }

  const queryRows: TableRow[] = queryCases.map(([, , label]) => {
    const row: TableRow = { case: label };
    for (const kind of KINDS) {
      const r = pick(records, { task: `${kind} query after append [${label}]` });
      row[`${kind} p50`] = formatNs(r.p50Ns);
      row[`${kind} p99`] = formatNs(r.p99Ns);
      row[`${kind} runs`] = String(r.extra?.runs);
      row[`${kind} p50 / 50 µs`] = Math.round((r.p50Ns / 50_000) * 100) / 100;
      summary[`${kind} query after append p50 µs ${label}`] = r.p50Ns / 1e3;
    }
    return row;
  });
  const mergeRows: TableRow[] = merges.cases.map((label) => {
    const row: TableRow = { case: `${formatCount(n)} + ${formatCount(n)} ${label}` };
    for (const k of kernels) {
      const r = pick(records, { task: `${k.kind} merge [${label}]` });
      row[`${k.kind} mean`] = formatNs(r.meanNs);
      row[`${k.kind} ns/value`] = Math.round((r.meanNs / (2 * n)) * 100) / 100;
      summary[`${k.kind} merge ms ${label}`] = r.meanNs / 1e6;
    }
    return row;
  });
  const compress = pick(records, { task: 'compress [integers]' });
  mergeRows.push({
    case: `compress ${formatCount(n)} sorted integers`,
    'wasm mean': formatNs(compress.meanNs),
    'wasm ns/value': Math.round((compress.meanNs / n) * 100) / 100,
  });
  const unionRows: TableRow[] = (['doubles', 'integers'] as const).map((data) => {
    const label = `100 × 1e5 ${data}`;
    const row: TableRow = { case: label };
    for (const kind of KINDS) {
      const r = pick(records, { task: `${kind} union of 100 pools [${label}]` });
      row[`${kind} p50`] = formatNs(r.p50Ns);
      row[`${kind} p99`] = formatNs(r.p99Ns);
      row[`${kind} runs`] = String(r.extra?.runs);
      row[`${kind} p50 / 1 ms`] = Math.round((r.p50Ns / 1e6) * 100) / 100;
      summary[`${kind} union p50 µs ${label}`] = r.p50Ns / 1e3;
    }
    return row;
  });
  notes.push(
    'Query: each sample is one uncached quantile(99.5) after an untimed append of 10 values (a tail append). Target: p50 < 50 µs at 10^7 for both encodings ("p50 / 50 µs" < 1).',
    'Merge: mergeRuns as the engine calls it; counted merges walk distinct values in shared TypeScript (the same code under both kernels), plain merges use each engine\'s kernel. "compress" is encodeSorted(…, counted) of one sorted run (shared TypeScript).',
    'Union: quantilesAcross(100 pools, [99.5]); nothing is cached across pools. Target: < 1 ms ("p50 / 1 ms" < 1).',
  );

  return {
    bench: 'encodings',
    title: 'Run encodings (plain / counted) and percentiles across pools',
    quick: args.quick,
    elapsedMs: performance.now() - started,
    records,
    tables: [
      { title: 'Memory: bytes per value (run arrays, process RSS)', rows: memoryRows },
      { title: 'Query right after an append of 10 values', rows: queryRows },
      { title: 'Merging two runs', rows: mergeRows },
      { title: 'Percentiles across 100 pools of 1e5', rows: unionRows },
    ],
    notes,
    summary,
    data: memory,
  };
}

if (isMain(import.meta.url) && parseArgs().named.has('child')) {
  const named = parseArgs().named;
  const kind = named.get('child') as EngineKind;
  measureMemoryChild(kind, named.get('data') as Data, Number(named.get('values'))).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  runIfMain(import.meta.url, run);
}
