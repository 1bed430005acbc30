// Memory per stored value: each engine, in its own `node --expose-gc` child
// so the two never share a heap, builds one pool of 1e7 values through 1e4
// appends of 1e3 (inline merges), collects garbage until the heap stops
// shrinking, and compares process.memoryUsage() with the reading taken after
// the engine was created. Target: ≤ 8.5 bytes per value (8 are the float64).
//
// The WASM engine is built as createEngine does (new PoolStore over
// createWasmKernels) but by hand, to read the instance's linear-memory size:
// that memory grows to fit the largest merge's operands and never shrinks.
// Peak RSS (getrusage maxrss) shows the transient cost of merging.
//
// Freed run buffers (every merge frees its inputs) stay in glibc's heap: after
// a large mmap'd block is freed, glibc raises its mmap threshold (up to
// 32 MiB, mallopt(3) M_MMAP_THRESHOLD), so later buffers come from the heap and
// are kept when freed. The full run therefore repeats each engine with
// MALLOC_MMAP_THRESHOLD_=131072 (a fixed threshold), separating what the pool
// holds from what the allocator keeps.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { EngineKind } from '../src/core/kernels.js';
import { PoolStore } from '../src/core/pool-store.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { collectGarbage, isMain, parseArgs, runIfMain, type BenchArgs } from './lib/cli.js';
import { buildPool, seededRng } from './lib/data.js';
import { progress } from './lib/measure.js';
import { formatCount, type BenchReport, type TableRow } from './lib/report.js';

const TARGET_BYTES_PER_VALUE = 8.5;
const RESULT_PREFIX = 'ENGINE_MEMORY_RESULT ';

interface MemoryReading {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

interface ChildResult {
  engine: EngineKind;
  /** Extra environment the child ran with ('' for none). */
  env: string;
  values: number;
  appendBatch: number;
  runs: number;
  buildMs: number;
  /** After the engine was created, before the pool (the baseline). */
  empty: MemoryReading;
  /** After the pool was built and garbage collected. */
  full: MemoryReading;
  /** Before anything (Node + modules): for context. */
  start: MemoryReading;
  /** getrusage maxrss after the build, bytes. */
  peakRss: number;
  /** WASM linear memory, bytes (0 for ts). */
  wasmMemoryBytes: number;
}

function reading(): MemoryReading {
  const m = process.memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Child side: build one pool and print the measurements as one JSON line. */
async function measureChild(kind: EngineKind, values: number, appendBatch: number, env: string): Promise<void> {
  await collectGarbage();
  const start = reading();
  const wasmKernels = kind === 'wasm' ? await createWasmKernels({ build: 'release' }) : null;
  const engine = new PoolStore(wasmKernels ?? createTsKernels());
  engine.setMergeOffloader(null);
  await collectGarbage();
  const empty = reading();

  const t = performance.now();
  buildPool(engine, 1, values, appendBatch, seededRng(values));
  const buildMs = performance.now() - t;
  await collectGarbage();
  const full = reading();

  const stats = engine.stats();
  if (stats.values !== values) throw new Error(`pool holds ${stats.values} values, expected ${values}`);
  const result: ChildResult = {
    engine: kind,
    env,
    values,
    appendBatch,
    runs: stats.runs,
    buildMs,
    empty,
    full,
    start,
    peakRss: process.resourceUsage().maxRSS * 1024,
    wasmMemoryBytes: wasmKernels?.memoryBytes() ?? 0,
  };
  engine.quantile(1, 50); // the pool must still be reachable when measured above
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

function spawnChild(kind: EngineKind, values: number, appendBatch: number, env: Record<string, string>): Promise<ChildResult> {
  const envLabel = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', script, '--child', kind, '--values', String(values), '--batch', String(appendBatch), '--env-label', envLabel || '-'],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || line === undefined) reject(new Error(`memory child (${kind}) exited with ${code}: ${stdout}`));
      else resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as ChildResult);
    });
  });
}

export async function run(args: BenchArgs): Promise<BenchReport> {
  const started = performance.now();
  const values = args.quick ? 1e6 : 1e7;
  const appendBatch = 1000;
  const envs: Record<string, string>[] = args.quick ? [{}] : [{}, { MALLOC_MMAP_THRESHOLD_: '131072' }];
  const results: ChildResult[] = [];
  for (const env of envs) {
    for (const kind of ['wasm', 'ts'] as const) {
      progress(`  memory: building ${formatCount(values)} values in a fresh ${kind} child ${JSON.stringify(env)} …`);
      results.push(await spawnChild(kind, values, appendBatch, env));
    }
  }

  const perValue = (bytes: number, n: number): number => Math.round((bytes / n) * 100) / 100;
  const rows: TableRow[] = [];
  const summary: Record<string, number | string | boolean> = {};
  const notes: string[] = [];
  for (const r of results) {
    const d = (key: keyof MemoryReading): number => perValue(r.full[key] - r.empty[key], r.values);
    const rssPerValue = d('rss');
    const label = r.env === '' ? r.engine : `${r.engine} ${r.env}`;
    rows.push({
      engine: label,
      values: formatCount(r.values),
      runs: r.runs,
      'build (s)': Math.round(r.buildMs / 10) / 100,
      'build ns/value': Math.round((r.buildMs * 1e6) / r.values),
      'Δrss B/value': rssPerValue,
      'ΔheapTotal B/value': d('heapTotal'),
      'ΔheapUsed B/value': d('heapUsed'),
      'Δexternal B/value': d('external'),
      'ΔarrayBuffers B/value': d('arrayBuffers'),
      'wasm memory B/value': perValue(r.wasmMemoryBytes, r.values),
      'peak rss B/value': perValue(r.peakRss - r.empty.rss, r.values),
      '≤ 8.5 (Δrss)': rssPerValue <= TARGET_BYTES_PER_VALUE ? 'yes' : 'NO',
    });
    summary[`${label} rss bytes/value`] = rssPerValue;
    summary[`${label} heap+arrayBuffers bytes/value`] = perValue(
      r.full.heapUsed + r.full.arrayBuffers - r.empty.heapUsed - r.empty.arrayBuffers,
      r.values,
    );
    summary[`${label} wasm memory bytes/value`] = perValue(r.wasmMemoryBytes, r.values);
    summary[`${label} peak rss bytes/value`] = perValue(r.peakRss - r.empty.rss, r.values);
    summary[`${label} target ≤8.5 B/value met (rss)`] = rssPerValue <= TARGET_BYTES_PER_VALUE;
    notes.push(
      `${label}: ${rssPerValue} B/value by RSS after GC → target ≤ ${TARGET_BYTES_PER_VALUE} ${rssPerValue <= TARGET_BYTES_PER_VALUE ? 'MET' : 'NOT MET'}` +
        (r.wasmMemoryBytes > 0 ? ` (WASM linear memory alone: ${(r.wasmMemoryBytes / 2 ** 20).toFixed(0)} MiB, kept after the last merge)` : '') +
        `; baseline rss ${(r.empty.rss / 2 ** 20).toFixed(0)} MiB after creating the engine (${(r.start.rss / 2 ** 20).toFixed(0)} MiB before).`,
    );
  }
  notes.push(
    'Δ = after building the pool and collecting garbage, minus after creating the engine; "peak rss" is getrusage maxrss minus that baseline (the transient cost of merges).',
    'Runs of ≥ 32 Ki values live on SharedArrayBuffers (allocateRun): Node 20 counts them in arrayBuffers (not external); WASM linear memory shows in external (not arrayBuffers). Both are in rss.',
  );
  if (envs.length > 1) {
    notes.push(
      'With MALLOC_MMAP_THRESHOLD_ fixed, freed run buffers go back to the OS, so the gap between the default rows and those rows is memory glibc keeps after merges, not memory the pool uses.',
    );
  }

  return {
    bench: 'memory',
    title: `Memory per stored value: one pool of ${formatCount(values)} built by appends of ${appendBatch}`,
    quick: args.quick,
    elapsedMs: performance.now() - started,
    records: [],
    tables: [{ title: `Bytes per value (target ≤ ${TARGET_BYTES_PER_VALUE})`, rows }],
    notes,
    summary,
    data: results,
  };
}

if (isMain(import.meta.url) && parseArgs().named.has('child')) {
  const named = parseArgs().named;
  const kind = named.get('child');
  if (kind !== 'wasm' && kind !== 'ts') throw new Error(`--child must be wasm or ts, got ${kind}`);
  const envLabel = named.get('env-label') ?? '-';
  measureChild(kind, Number(named.get('values') ?? 1e7), Number(named.get('batch') ?? 1000), envLabel === '-' ? '' : envLabel).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  runIfMain(import.meta.url, run);
}
