// Sorting one append batch: Kernels.sortInPlace of the WASM engine (radix sort
// in linear memory, plus the adapter's copies in and out) against the TS engine
// (Float64Array.prototype.sort), on uniform random float64.
//
// Each timed call first copies a fresh unsorted batch into the work array;
// that copy alone is a task of the same Bench and is subtracted in the "sort"
// columns. Inputs rotate through at least 32 arrays: re-sorting one small array
// lets the branch predictor learn its comparisons (2.8× faster at 1e3). Work
// arrays come from allocateRun, as in PoolStore, so large batches are
// SharedArrayBuffer-backed; the full run repeats those on a plain ArrayBuffer.

import type { Kernels } from '../src/core/kernels.js';
import { allocateRun } from '../src/core/sorted-run.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { harnessTasks, pick, runBench, runGroup, groupTiming, versus, type BenchReport, type TaskRecord } from './lib/engine-bench.js';
import { seededRng, uniform } from './lib/data.js';
import { fmtCount, fmtNs, type Row } from './lib/report.js';

interface SortCase {
  label: string;
  n: number;
  batch: number;
  shared: boolean;
}

function sortCases(quick: boolean): SortCase[] {
  const cases: SortCase[] = [];
  for (const n of quick ? [10, 1e3, 1e5] : [10, 1e3, 1e5, 1e6]) {
    const batch = n <= 10 ? 1000 : n <= 1e3 ? 20 : 1; // keeps each sample well above the ~70 ns harness
    const shared = allocateRun(n).buffer instanceof SharedArrayBuffer;
    cases.push({ label: `n=${fmtCount(n)}${shared ? ' (SAB)' : ''}`, n, batch, shared });
    if (shared && !quick) cases.push({ label: `n=${fmtCount(n)} (ArrayBuffer)`, n, batch, shared: false });
  }
  return cases;
}

async function run(quick: boolean): Promise<BenchReport> {
  const engines: Kernels[] = [await createWasmKernels({ build: 'release' }), createTsKernels()];
  const rng = seededRng(0x5047);
  const records: TaskRecord[] = [];
  const cases = sortCases(quick);

  for (const c of cases) {
    const sources = Array.from({ length: c.n <= 1e5 ? Math.max(c.batch, 32) : 4 }, () => uniform(c.n, rng));
    let next = 0;
    const work = c.shared ? allocateRun(c.n) : new Float64Array(c.n);
    const [a, b] = engines.map((kernels) => {
      work.set(sources[0]);
      return kernels.sortInPlace(work).slice();
    });
    if (a.some((x, i) => !Object.is(x, b[i]))) throw new Error(`engines disagree sorting ${c.label}`);
    const copyNext = (): void => {
      work.set(sources[next]);
      next = next + 1 === sources.length ? 0 : next + 1;
    };
    const batch = c.batch;
    const copyBatch = (): void => {
      for (let i = 0; i < batch; i++) copyNext();
    };
    records.push(
      ...runGroup(`sort ${c.label}`, groupTiming(quick, c.n >= 1e6 ? 'slow' : 'fast'), [
        { name: `copy input [${c.label}]`, case: c.label, engine: null, role: 'copy', batch, fn: copyBatch },
        ...engines.map((kernels) => ({
          name: `${kernels.kind} copy+sortInPlace [${c.label}]`,
          case: c.label,
          engine: kernels.kind,
          role: 'kernel' as const,
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) {
              copyNext();
              kernels.sortInPlace(work);
            }
          },
        })),
        ...harnessTasks(c.label, batch),
      ]),
    );
  }

  const rows: Row[] = cases.map((c) => {
    const copy = pick(records, { case: c.label, role: 'copy' });
    const wasm = pick(records, { case: c.label, engine: 'wasm' }).meanNs - copy.meanNs;
    const ts = pick(records, { case: c.label, engine: 'ts' }).meanNs - copy.meanNs;
    const harness = pick(records, { case: c.label, role: 'harness', batch: 1 });
    return {
      case: c.label,
      'calls/sample': c.batch,
      'copy (subtracted)': fmtNs(copy.meanNs),
      'wasm sort': fmtNs(wasm),
      'ts sort': fmtNs(ts),
      'wasm ns/value': (wasm / c.n).toFixed(2),
      'ts ns/value': (ts / c.n).toFixed(2),
      ...versus(ts, wasm),
      'empty call': fmtNs(harness.meanNs),
    };
  });
  return {
    title: 'sortInPlace: one batch of uniform random float64',
    records,
    tables: [{ title: 'Mean per call; "sort" = (copy+sort) − copy. ts/wasm > 1: WASM faster.', rows }],
    notes: [
      'WASM includes the adapter copying the batch into linear memory and back (the engine pays that on every append).',
      '"empty call" is the harness cost per sample (two hrtime reads), inside every number and not subtracted; batched cases divide it by calls/sample.',
    ],
  };
}

runBench('sort', run);
