// The frame of the engine benchmarks (bench/engine-*.ts, each run in a fresh
// `node --expose-gc` by run-engine.ts or on its own): one tinybench Bench per
// group with both engines in it, warm-up on, the hrtime clock, and the harness
// itself timed as tasks of the same Bench so its cost can be read beside the
// numbers it inflates. Calls that take nanoseconds run in batches of `batch`
// calls per timed sample and every statistic is divided by `batch`; calls of a
// microsecond or more are timed one by one so the tail (p99, max) stays visible.

import { Bench, type FnOptions } from 'tinybench';
import type { EngineKind } from '../../src/core/kernels.js';
import { printTable, writeResults, type Row } from './report.js';

/** A task's latency in nanoseconds per call; for batch > 1, p99 and max are of batch means. */
export interface TaskRecord {
  group: string;
  /** The table row it belongs to, e.g. `n=1e6`. */
  case: string;
  task: string;
  engine: EngineKind | null;
  role: 'kernel' | 'copy' | 'alloc' | 'harness';
  batch: number;
  samples: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
  /** tinybench's relative margin of error of the mean, %. */
  rmePct: number;
  /** Facts gathered outside the timed function (merges seen, pool sizes …). */
  extra?: Record<string, number | string | boolean>;
}

export interface BenchReport {
  title: string;
  records: TaskRecord[];
  tables: { title: string; rows: Row[] }[];
  notes: string[];
  /** Readings that are not tinybench tasks (engine-memory). */
  data?: unknown;
}

/** Runs a bench file (`--quick`: fewer sizes, shorter budgets), prints its tables and writes bench/results/engine-<name>.json. */
export function runBench(name: string, run: (quick: boolean) => Promise<BenchReport>): void {
  const quick = process.argv.includes('--quick');
  const started = performance.now();
  run(quick).then(
    (report) => {
      const elapsedS = (performance.now() - started) / 1000;
      console.log(`\n=== ${report.title}${quick ? ' (--quick)' : ''} — ${elapsedS.toFixed(1)} s ===`);
      for (const table of report.tables) printTable(table.title, table.rows);
      for (const note of report.notes) console.log(`  • ${note}`);
      writeResults(`engine-${name}`, { quick, wasmBuild: 'release', units: 'records: ns per call', elapsedS, ...report });
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exitCode = 1;
    },
  );
}

/** Progress goes to stderr so stdout carries only results. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Collects until the heap stops shrinking (needs --expose-gc), yielding so freed array buffers are released. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') throw new Error('run node with --expose-gc (run-engine does)');
  let last = Infinity;
  for (let round = 0; round < 10; round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    if (heapUsed + arrayBuffers >= last) break;
    last = heapUsed + arrayBuffers;
  }
}

export interface TaskSpec {
  name: string;
  case: string;
  engine: EngineKind | null;
  role: TaskRecord['role'];
  batch?: number;
  fn: () => unknown;
  /** Hooks run outside the timed function. */
  opts?: FnOptions;
  extra?: () => Record<string, number | string | boolean>;
}

/** Keeps results observable so V8 cannot drop the work that produced them. */
export let sink = 0;
export function consume(x: number): void {
  sink = (sink + x) | 0;
}

function noop(i: number): number {
  return i & 1;
}

// An empty call lasts ~30 ns, so tinybench would spend seconds of its own
// bookkeeping filling a time budget with them; declaring each a microsecond of
// budget caps that while the samples still record the true duration.
const EMPTY_CALL_COST = Object.freeze({ overriddenIterationCost: 0.001 });

/** The harness as tasks of the same Bench: an empty timed call and, for batched groups, an empty loop of `batch` calls. */
export function harnessTasks(caseLabel: string, batch = 1): TaskSpec[] {
  const tasks: TaskSpec[] = [
    { name: `harness: empty call [${caseLabel}]`, case: caseLabel, engine: null, role: 'harness', fn: () => EMPTY_CALL_COST },
  ];
  if (batch > 1) {
    const fn = (): void => {
      let s = 0;
      for (let i = 0; i < batch; i++) s += noop(i);
      consume(s);
    };
    tasks.push({ name: `harness: empty loop ×${batch} [${caseLabel}]`, case: caseLabel, engine: null, role: 'harness', batch, fn });
  }
  return tasks;
}

/** `fast` groups (calls up to ~1 ms) get samples enough for a stable p99; `slow` ones (10–100 ms calls) a minimum count. */
export function groupTiming(
  quick: boolean,
  kind: 'fast' | 'slow',
): { time: number; iterations: number; warmupTime: number; warmupIterations: number } {
  if (kind === 'fast') {
    return quick
      ? { time: 100, iterations: 5, warmupTime: 50, warmupIterations: 3 }
      : { time: 500, iterations: 10, warmupTime: 200, warmupIterations: 5 };
  }
  return quick
    ? { time: 100, iterations: 3, warmupTime: 0, warmupIterations: 1 }
    : { time: 400, iterations: 8, warmupTime: 100, warmupIterations: 2 };
}

/** Runs one Bench holding `specs`; a record per task, in ns per call. */
export function runGroup(group: string, timing: ReturnType<typeof groupTiming>, specs: readonly TaskSpec[]): TaskRecord[] {
  const bench = new Bench({ name: group, timestampProvider: 'hrtimeNow', warmup: true, throws: true, ...timing });
  for (const spec of specs) bench.add(spec.name, spec.fn, spec.opts);
  const started = performance.now();
  bench.runSync();
  progress(`  [${group}] ${specs.length} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return specs.map((spec) => {
    const result = bench.getTask(spec.name)?.result;
    if (result === undefined || (result.state !== 'completed' && result.state !== 'aborted-with-statistics')) {
      const detail = result?.state === 'errored' ? `: ${result.error.stack ?? result.error.message}` : '';
      throw new Error(`task ${spec.name} did not complete (${result?.state ?? 'missing'})${detail}`);
    }
    const batch = spec.batch ?? 1;
    const perCall = (ms: number): number => (ms * 1e6) / batch;
    const { latency } = result;
    return {
      group,
      case: spec.case,
      task: spec.name,
      engine: spec.engine,
      role: spec.role,
      batch,
      samples: latency.samplesCount,
      meanNs: perCall(latency.mean),
      p50Ns: perCall(latency.p50),
      p99Ns: perCall(latency.p99),
      maxNs: perCall(latency.max),
      rmePct: Math.round(latency.rme * 100) / 100,
      ...(spec.extra !== undefined ? { extra: spec.extra() } : {}),
    };
  });
}

/** The one record matching `where`; anything else is a bug in the bench file. */
export function pick(
  records: readonly TaskRecord[],
  where: Partial<Pick<TaskRecord, 'case' | 'engine' | 'role' | 'task' | 'batch'>>,
): TaskRecord {
  const keys = Object.keys(where) as (keyof typeof where)[];
  const found = records.filter((r) => keys.every((key) => r[key] === where[key]));
  if (found.length !== 1) throw new Error(`expected one record for ${JSON.stringify(where)}, found ${found.length}`);
  return found[0];
}

/** ts time ÷ wasm time (> 1: WASM faster) and the faster engine, differences under 5 % called a tie. */
export function versus(tsNs: number, wasmNs: number): { 'ts/wasm': number; faster: string } {
  const r = tsNs / wasmNs;
  return { 'ts/wasm': Math.round(r * 100) / 100, faster: r > 1.05 ? 'wasm' : r < 1 / 1.05 ? 'ts' : 'tie (<5%)' };
}
