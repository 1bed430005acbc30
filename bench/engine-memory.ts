// Memory per stored value: each engine, in a `node --expose-gc` child of its
// own, builds one pool of 1e7 values through 1e4 appends of 1e3 (inline
// merges), collects garbage until the heap stops shrinking, and compares
// process.memoryUsage() with the reading taken after the engine was created.
// The WASM engine is put together by hand (PoolStore over createWasmKernels,
// as createEngine does) to read its linear memory, which grows to fit the
// largest merge and never shrinks. Peak RSS shows the transient cost of merges.
//
// glibc keeps freed run buffers in its heap unless its mmap threshold is fixed
// (after a large block is freed it raises the threshold, mallopt(3)), so the
// full run measures each engine under `npm start`'s environment (the threshold)
// and with no malloc variables.

import { fileURLToPath } from 'node:url';
import type { EngineKind } from '../src/core/kernels.js';
import { PoolStore } from '../src/core/pool-store.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { SERVER_ENV, serverEnvText } from '../src/server-env.js';
import { buildPool, seededRng } from './lib/data.js';
import { collectGarbage, progress, runBench, type BenchReport } from './lib/engine-bench.js';
import { emitResult, runChild } from './lib/proc.js';
import { fmtCount, type Row } from './lib/report.js';

type Reading = ReturnType<typeof process.memoryUsage>;

interface ChildResult {
  engine: EngineKind;
  values: number;
  runs: number;
  buildMs: number;
  /** After the engine was created (the baseline), and after the pool was built and garbage collected. */
  empty: Reading;
  full: Reading;
  /** getrusage maxrss after the build, bytes. */
  peakRss: number;
  wasmMemoryBytes: number;
}

async function measureChild(kind: EngineKind, values: number): Promise<void> {
  const wasmKernels = kind === 'wasm' ? await createWasmKernels({ build: 'release' }) : null;
  const engine = new PoolStore(wasmKernels ?? createTsKernels());
  engine.setMergeOffloader(null);
  await collectGarbage();
  const empty = process.memoryUsage();
  const t = performance.now();
  buildPool(engine, 1, values, 1000, seededRng(values));
  const buildMs = performance.now() - t;
  await collectGarbage();
  const full = process.memoryUsage();
  const stats = engine.stats();
  if (stats.values !== values) throw new Error(`pool holds ${stats.values} values, expected ${values}`);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  emitResult({
    engine: kind,
    values,
    runs: stats.runs,
    buildMs,
    empty,
    full,
    peakRss,
    wasmMemoryBytes: wasmKernels?.memoryBytes() ?? 0,
  } satisfies ChildResult);
  engine.quantile(1, 50); // the pool must still be reachable when measured above
}

async function run(quick: boolean): Promise<BenchReport> {
  const values = quick ? 1e6 : 1e7;
  const envs: { label: string; env: Record<string, string> }[] = [{ label: 'as npm start', env: { ...SERVER_ENV } }];
  if (!quick) envs.push({ label: 'no malloc variables', env: {} });
  const { GLIBC_TUNABLES: _g, MALLOC_MMAP_THRESHOLD_: _m, ...baseEnv } = process.env;
  const rows: Row[] = [];
  const data: (ChildResult & { env: string })[] = [];
  for (const { label: envLabel, env } of envs) {
    for (const kind of ['wasm', 'ts'] as const) {
      progress(`  memory: ${fmtCount(values)} values, ${kind} child, ${envLabel} …`);
      const script = fileURLToPath(import.meta.url);
      const { result: r } = await runChild<ChildResult>(script, ['--child', kind, String(values)], {
        nodeArgs: ['--expose-gc'],
        env: { ...baseEnv, ...env },
      });
      data.push({ ...r, env: envLabel });
      const perValue = (bytes: number): number => Math.round((bytes / r.values) * 100) / 100;
      const delta = (key: keyof Reading): number => perValue(r.full[key] - r.empty[key]);
      rows.push({
        engine: kind,
        environment: envLabel,
        runs: r.runs,
        'build ns/value': Math.round((r.buildMs * 1e6) / r.values),
        'Δrss B/value': delta('rss'),
        'ΔheapUsed B/value': delta('heapUsed'),
        'Δexternal B/value': delta('external'),
        'ΔarrayBuffers B/value': delta('arrayBuffers'),
        'wasm memory B/value': perValue(r.wasmMemoryBytes),
        'peak rss B/value': perValue(r.peakRss - r.empty.rss),
        'baseline rss MiB': Math.round(r.empty.rss / 2 ** 20),
      });
    }
  }
  return {
    title: `Memory per stored value: one pool of ${fmtCount(values)} built by appends of 1000`,
    records: [],
    tables: [{ title: 'Bytes per stored value (8 of them are the float64 itself)', rows }],
    notes: [
      'Δ = after building the pool and collecting garbage, minus after creating the engine; "peak rss" is getrusage maxrss minus that baseline.',
      `"as npm start": ${serverEnvText()}.`,
      'Runs of ≥ 32 Ki values live on SharedArrayBuffers, counted in arrayBuffers; WASM linear memory counts in external. Both are in rss.',
    ],
    data,
  };
}

// `--child KIND VALUES`: one engine's measurement, in its own process
const [mode, kind, values] = process.argv.slice(2);
if (mode === '--child' && (kind === 'wasm' || kind === 'ts')) {
  measureChild(kind, Number(values)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  runBench('memory', run);
}
