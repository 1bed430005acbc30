// The shapes every engine benchmark hands back (one BenchReport per bench
// file), plus the formatting shared by their tables. A bench file builds its
// own tables, because each operation needs different columns; run-engine.ts
// only prints them and writes all reports to bench/results/engine.json.

import type { EngineKind } from '../../src/core/kernels.js';

/** What a timed task measures; only `kernel` rows are engine-against-engine. */
export type TaskRole = 'kernel' | 'copy' | 'alloc' | 'harness';

/** One tinybench task, with its latency converted to nanoseconds per call. */
export interface TaskRecord {
  /** The Bench the task ran in (one Bench per group, both engines inside). */
  group: string;
  /** The row it belongs to in the tables, e.g. `n=1e6`. */
  case: string;
  /** tinybench task name, unique within its Bench. */
  task: string;
  engine: EngineKind | null;
  role: TaskRole;
  /** Calls made per timed sample; the statistics below are divided by it. */
  batch: number;
  samples: number;
  meanNs: number;
  p50Ns: number;
  /** For batch > 1 these are percentiles of batch means, not of single calls. */
  p99Ns: number;
  maxNs: number;
  minNs: number;
  /** tinybench's relative margin of error of the mean, in percent. */
  rmePct: number;
  /** Bench-specific facts gathered outside the timed function (merges seen, pool sizes …). */
  extra?: Record<string, number | string | boolean>;
}

export type TableRow = Record<string, string | number>;

export interface Table {
  title: string;
  rows: TableRow[];
}

export interface BenchReport {
  bench: string;
  title: string;
  quick: boolean;
  /** Wall time of the whole bench file, setup included. */
  elapsedMs: number;
  records: TaskRecord[];
  tables: Table[];
  /** Plain-language facts about this run: harness cost, target checks, surprises. */
  notes: string[];
  /** Machine-readable headline numbers (targets, ratios). */
  summary: Record<string, number | string | boolean>;
  /** Raw bench-specific measurements that are not tinybench tasks (engine-memory's readings). */
  data?: unknown;
}

/** 1234.5 ns → "1.23 µs"; three significant digits, the unit chosen to fit. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return String(ns);
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${sig(ns)} ns`;
  if (abs < 1e6) return `${sig(ns / 1e3)} µs`;
  if (abs < 1e9) return `${sig(ns / 1e6)} ms`;
  return `${sig(ns / 1e9)} s`;
}

function sig(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/** 1e6 → "1e6", 1500 → "1500", 10 → "10". */
export function formatCount(n: number): string {
  if (n >= 1e4 && Number.isInteger(Math.log10(n))) return `1e${Math.log10(n)}`;
  return String(n);
}

/**
 * ts time / wasm time, so > 1 means WASM is faster. Returned as a number
 * rounded to 2 decimals for console.table.
 */
export function ratio(tsNs: number, wasmNs: number): number {
  return Math.round((tsNs / wasmNs) * 100) / 100;
}

/** Which engine wins, with a dead-heat band: differences under 5 % are called a tie. */
export function winner(tsNs: number, wasmNs: number): string {
  const r = tsNs / wasmNs;
  if (r > 1.05) return 'wasm';
  if (r < 1 / 1.05) return 'ts';
  return 'tie (<5%)';
}

/** Finds the one record of a case/engine/role; a missing one is a bug in the bench file. */
export function pick(records: readonly TaskRecord[], where: Partial<Pick<TaskRecord, 'case' | 'engine' | 'role' | 'group' | 'task' | 'batch'>>): TaskRecord {
  const found = records.filter((r) =>
    (Object.keys(where) as (keyof typeof where)[]).every((key) => r[key] === where[key]),
  );
  if (found.length !== 1) throw new Error(`expected one record for ${JSON.stringify(where)}, found ${found.length}`);
  return found[0];
}

/** Prints a report's tables and notes to stdout. */
export function printReport(report: BenchReport): void {
  console.log(`\n=== ${report.title}${report.quick ? ' (--quick)' : ''} — ${(report.elapsedMs / 1000).toFixed(1)} s ===`);
  for (const table of report.tables) {
    console.log(`\n${table.title}`);
    console.table(table.rows);
  }
  for (const note of report.notes) console.log(`  • ${note}`);
}
