// Sorting one append batch: Kernels.sortInPlace of the WASM engine (radix sort
// in linear memory, plus the adapter's copy in and out) against the TS engine
// (Float64Array.prototype.sort), on uniform random float64 in [0, 1).
//
// Each timed call first copies a fresh unsorted batch into the work array
// (sorting sorted data would flatter both); the copy alone is its own task
// in the same Bench and is subtracted in the "sort" columns. The inputs rotate
// through at least 32 distinct arrays: re-sorting one 1e3-value array lets the
// branch predictor learn its comparisons, and Float64Array.prototype.sort then
// ran 2.8× faster here (20 µs with 1 input, 56 µs with 20 or 200). Work arrays come
// from allocateRun, as in PoolStore.appendValues, so batches of 32 Ki values
// and more are SharedArrayBuffer-backed; the full run repeats the large sizes
// on a plain ArrayBuffer because V8 copies shared memory more slowly.

import type { Kernels } from '../src/core/kernels.js';
import { allocateRun } from '../src/core/sorted-run.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { runIfMain, type BenchArgs } from './lib/cli.js';
import { seededRng, uniform } from './lib/data.js';
import { groupTiming, harnessTasks, runGroup, type TaskSpec } from './lib/measure.js';
import { formatCount, formatNs, pick, ratio, winner, type BenchReport, type TableRow, type TaskRecord } from './lib/report.js';

interface SortCase {
  label: string;
  n: number;
  batch: number;
  shared: boolean;
}

function sortCases(quick: boolean): SortCase[] {
  const sizes = quick ? [10, 1e3, 1e5] : [10, 1e3, 1e5, 1e6];
  const cases: SortCase[] = [];
  for (const n of sizes) {
    // Batches keep each timed sample well above the ~70 ns harness cost.
    const batch = n <= 10 ? 1000 : n <= 1e3 ? 20 : 1;
    const shared = allocateRun(n).buffer instanceof SharedArrayBuffer;
    cases.push({ label: `n=${formatCount(n)}${shared ? ' (SAB)' : ''}`, n, batch, shared });
    if (shared && !quick) cases.push({ label: `n=${formatCount(n)} (ArrayBuffer)`, n, batch, shared: false });
  }
  return cases;
}

function sameValues(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

export async function run(args: BenchArgs): Promise<BenchReport> {
  const started = performance.now();
  const engines: Kernels[] = [await createWasmKernels({ build: 'release' }), createTsKernels()];
  const rng = seededRng(0x5047);
  const records: TaskRecord[] = [];

  for (const c of sortCases(args.quick)) {
    // Setup, untimed: distinct unsorted inputs (see the header) and one work array.
    const sources = Array.from({ length: c.n <= 1e5 ? Math.max(c.batch, 32) : 4 }, () => uniform(c.n, rng));
    let next = 0;
    const work = c.shared ? allocateRun(c.n) : new Float64Array(c.n);
    if (c.shared !== work.buffer instanceof SharedArrayBuffer) throw new Error(`buffer kind mismatch for ${c.label}`);

    const outputs = engines.map((kernels) => {
      work.set(sources[0]);
      return kernels.sortInPlace(work).slice();
    });
    if (!sameValues(outputs[0], outputs[1])) throw new Error(`engines disagree sorting ${c.label}`);

    const batch = c.batch;
    const specs: TaskSpec[] = [
      {
        name: `copy input [${c.label}]`,
        case: c.label,
        engine: null,
        role: 'copy',
        batch,
        fn: () => {
          for (let i = 0; i < batch; i++) {
            work.set(sources[next]);
            next = next + 1 === sources.length ? 0 : next + 1;
          }
        },
      },
      ...engines.map(
        (kernels): TaskSpec => ({
          name: `${kernels.kind} copy+sortInPlace [${c.label}]`,
          case: c.label,
          engine: kernels.kind,
          role: 'kernel',
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) {
              work.set(sources[next]);
              next = next + 1 === sources.length ? 0 : next + 1;
              kernels.sortInPlace(work);
            }
          },
        }),
      ),
      ...harnessTasks(c.label, batch),
    ];
    const slow = c.n >= 1e6;
    records.push(...runGroup(`sort ${c.label}`, groupTiming(args.quick, slow ? 'slow' : 'fast'), specs));
  }

  const rows: TableRow[] = [];
  const harnessRows: TableRow[] = [];
  for (const c of sortCases(args.quick)) {
    const copy = pick(records, { case: c.label, role: 'copy' });
    const wasm = pick(records, { case: c.label, engine: 'wasm' });
    const ts = pick(records, { case: c.label, engine: 'ts' });
    const wasmNet = wasm.meanNs - copy.meanNs;
    const tsNet = ts.meanNs - copy.meanNs;
    rows.push({
      case: c.label,
      'calls/sample': c.batch,
      'copy (subtract)': formatNs(copy.meanNs),
      'wasm copy+sort': formatNs(wasm.meanNs),
      'ts copy+sort': formatNs(ts.meanNs),
      'wasm sort': formatNs(wasmNet),
      'ts sort': formatNs(tsNet),
      'wasm ns/value': round2(wasmNet / c.n),
      'ts ns/value': round2(tsNet / c.n),
      'ts/wasm': ratio(tsNet, wasmNet),
      faster: winner(tsNet, wasmNet),
      'rme wasm/ts %': `${wasm.rmePct}/${ts.rmePct}`,
    });
    for (const h of records.filter((r) => r.case === c.label && r.role === 'harness')) {
      harnessRows.push({ case: c.label, task: h.task.replace(/ \[.*\]$/, ''), 'per call': formatNs(h.meanNs), 'calls/sample': h.batch });
    }
  }

  const summary: Record<string, number | string> = {};
  for (const c of sortCases(args.quick)) {
    const copy = pick(records, { case: c.label, role: 'copy' }).meanNs;
    summary[`ts/wasm ${c.label}`] = ratio(pick(records, { case: c.label, engine: 'ts' }).meanNs - copy, pick(records, { case: c.label, engine: 'wasm' }).meanNs - copy);
  }

  const callHarness = records.filter((r) => r.role === 'harness' && r.batch === 1).map((r) => r.meanNs);
  return {
    bench: 'sort',
    title: 'sortInPlace: one batch of uniform random float64',
    quick: args.quick,
    elapsedMs: performance.now() - started,
    records,
    tables: [
      { title: 'Mean per call; "sort" = (copy+sort) − copy. ts/wasm > 1: WASM faster.', rows },
      { title: 'Harness cost measured in the same Benches (already inside every number above, not subtracted)', rows: harnessRows },
    ],
    notes: [
      `Harness: an empty timed call costs ${formatNs(Math.min(...callHarness))}–${formatNs(Math.max(...callHarness))} per sample (two hrtime reads); batched cases divide it by their calls/sample, so it is < 1 % of every sort row.`,
      'WASM numbers include the adapter copying the batch into linear memory and the result back out (the engine pays that on every append); the input copy column is the bench\'s own copy, subtracted.',
      'Both engines were checked to produce identical output (Object.is per element) before timing.',
    ],
    summary,
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

runIfMain(import.meta.url, run);
