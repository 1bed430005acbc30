// A thin layer over tinybench shared by the engine benchmarks: one Bench per
// group with both engines in it (style point 8), warm-up on, hrtime clock, and
// the harness itself measured as tasks of the same Bench so its cost can be
// read beside the numbers it inflates ("What to avoid": benchmarks that
// measure the harness).
//
// Calls that take nanoseconds run in batches of `batch` calls per timed
// sample; every statistic is then divided by `batch`. Calls of a microsecond
// or more are timed one by one so the latency tail (p99, max) stays visible.

import { Bench, type FnOptions } from 'tinybench';
import type { EngineKind } from '../../src/core/kernels.js';
import type { TaskRecord, TaskRole } from './report.js';

export interface GroupTiming {
  /** Time budget per task in ms (tinybench `time`); runs continue until iterations are also met. */
  time: number;
  /** Minimum timed samples per task. */
  iterations: number;
  warmupTime: number;
  warmupIterations: number;
}

export interface TaskSpec {
  name: string;
  case: string;
  engine: EngineKind | null;
  role: TaskRole;
  /** Calls per timed sample (default 1). */
  batch?: number;
  fn: () => unknown;
  /** Hooks: they run outside the timed function (tinybench times only `fn`). */
  opts?: FnOptions;
  /** Facts gathered by the hooks, read once the task has run. */
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

/**
 * An empty call lasts ~30 ns, so tinybench would need millions of them (and
 * seconds of its own bookkeeping) to fill a time budget; declaring each one a
 * microsecond of budget (returned as a pre-made object, no allocation in the
 * timed window) caps that while the samples still record the true duration.
 */
const EMPTY_CALL_COST = Object.freeze({ overriddenIterationCost: 0.001 });

/**
 * The harness as tasks: an empty timed call (what every sample pays: two
 * hrtime reads and a call) and, for batched groups, an empty loop of `batch`
 * calls (what each batched call pays). Both run in the same Bench as the
 * engines, so their numbers come from the same run.
 */
export function harnessTasks(caseLabel: string, batch = 1): TaskSpec[] {
  const tasks: TaskSpec[] = [
    { name: `harness: empty call [${caseLabel}]`, case: caseLabel, engine: null, role: 'harness', fn: () => EMPTY_CALL_COST },
  ];
  if (batch > 1) {
    tasks.push({
      name: `harness: empty loop ×${batch} [${caseLabel}]`,
      case: caseLabel,
      engine: null,
      role: 'harness',
      batch,
      fn: () => {
        let s = 0;
        for (let i = 0; i < batch; i++) s += noop(i);
        consume(s);
      },
    });
  }
  return tasks;
}

/** Runs one Bench holding `specs` and returns a record per task (ns per call). */
export function runGroup(group: string, timing: GroupTiming, specs: readonly TaskSpec[]): TaskRecord[] {
  const bench = new Bench({
    name: group,
    timestampProvider: 'hrtimeNow',
    warmup: true,
    throws: true,
    time: timing.time,
    iterations: timing.iterations,
    warmupTime: timing.warmupTime,
    warmupIterations: timing.warmupIterations,
  });
  for (const spec of specs) bench.add(spec.name, spec.fn, spec.opts);
  const started = performance.now();
  bench.runSync();
  progress(`  [${group}] ${specs.length} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  return specs.map((spec) => {
    const task = bench.getTask(spec.name);
    const result = task?.result;
    if (result === undefined || (result.state !== 'completed' && result.state !== 'aborted-with-statistics')) {
      const detail = result !== undefined && result.state === 'errored' ? `: ${result.error.stack ?? result.error.message}` : '';
      throw new Error(`task ${spec.name} did not complete (${result?.state ?? 'missing'})${detail}`);
    }
    const batch = spec.batch ?? 1;
    const perCall = (ms: number): number => (ms * 1e6) / batch;
    const latency = result.latency;
    const record: TaskRecord = {
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
      minNs: perCall(latency.min),
      rmePct: Math.round(latency.rme * 100) / 100,
    };
    if (spec.extra !== undefined) record.extra = spec.extra();
    return record;
  });
}

/** Progress goes to stderr so stdout carries only results. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * Time budgets. `fast` groups (calls up to ~1 ms) get enough samples for a
 * stable mean and a meaningful p99; `slow` groups (10–100 ms calls) get a
 * minimum number of samples, since each one costs real time on 2 cores.
 */
export function groupTiming(quick: boolean, kind: 'fast' | 'slow'): GroupTiming {
  if (kind === 'fast') {
    return quick
      ? { time: 100, iterations: 5, warmupTime: 50, warmupIterations: 3 }
      : { time: 500, iterations: 10, warmupTime: 200, warmupIterations: 5 };
  }
  return quick
    ? { time: 100, iterations: 3, warmupTime: 0, warmupIterations: 1 }
    : { time: 400, iterations: 8, warmupTime: 100, warmupIterations: 2 };
}
