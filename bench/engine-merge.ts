// Merging two sorted runs, the work behind every compaction: Kernels.mergeInto
// of the WASM engine (copy both runs into linear memory, merge, copy out)
// against the TS engine's merge loop. The headline case is two runs of 1e6.
//
// Runs and output come from allocateRun, as in PoolStore.mergeNow (shared
// memory from 32 Ki values); the full run repeats 1e6 on plain ArrayBuffers.
// The copies the WASM adapter makes are timed on their own ("adapter copies")
// so the kernel's share can be read off. Small merges rotate through many
// input pairs so the branch predictor cannot learn one merge's pattern.
//
// PoolStore.mergeNow merges into a fresh allocateRun(a + b) every time, and
// first writes to fresh pages were slow on this machine (≈ 3.3 ms per MB of
// page faults, more than the merge itself), so each case is also timed the
// way the engine runs it ("fresh out"), with the allocation and first touch
// alone as a third task ("alloc+touch").

import type { Kernels } from '../src/core/kernels.js';
import { allocateRun, trustSorted, type SortedRun } from '../src/core/sorted-run.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import { runIfMain, type BenchArgs } from './lib/cli.js';
import { seededRng, sortedUniform } from './lib/data.js';
import { groupTiming, harnessTasks, runGroup, type TaskSpec } from './lib/measure.js';
import { formatCount, formatNs, pick, ratio, winner, type BenchReport, type TableRow, type TaskRecord } from './lib/report.js';

interface MergeCase {
  label: string;
  /** Values in each of the two runs. */
  n: number;
  batch: number;
  pairs: number;
  shared: boolean;
}

function mergeCases(quick: boolean): MergeCase[] {
  const cases: MergeCase[] = [];
  for (const n of quick ? [1e5, 1e6] : [1e3, 1e5, 1e6]) {
    const shared = allocateRun(2 * n).buffer instanceof SharedArrayBuffer;
    const label = `${formatCount(n)} + ${formatCount(n)}${shared ? ' (SAB)' : ''}`;
    cases.push({ label, n, batch: n <= 1e3 ? 50 : 1, pairs: n <= 1e3 ? 64 : 2, shared });
  }
  if (!quick) cases.push({ label: '1e6 + 1e6 (ArrayBuffer)', n: 1e6, batch: 1, pairs: 2, shared: false });
  return cases;
}

function plainCopy(run: SortedRun): SortedRun {
  return trustSorted(Float64Array.from(run));
}

export async function run(args: BenchArgs): Promise<BenchReport> {
  const started = performance.now();
  const engines: Kernels[] = [await createWasmKernels({ build: 'release' }), createTsKernels()];
  const rng = seededRng(0x3e7e);
  const records: TaskRecord[] = [];
  const cases = mergeCases(args.quick);

  for (const c of cases) {
    const pairs = Array.from({ length: c.pairs }, () => {
      const a = sortedUniform(c.n, rng);
      const b = sortedUniform(c.n, rng);
      return c.shared ? { a, b } : { a: plainCopy(a), b: plainCopy(b) };
    });
    const out = c.shared ? allocateRun(2 * c.n) : new Float64Array(2 * c.n);
    const scratch = new Float64Array(2 * c.n); // stands in for WASM linear memory
    let next = 0;

    const results = engines.map((kernels) => {
      kernels.mergeInto(pairs[0].a, pairs[0].b, out);
      return out.slice();
    });
    for (let i = 0; i < results[0].length; i++) {
      if (!Object.is(results[0][i], results[1][i])) throw new Error(`engines disagree merging ${c.label} at ${i}`);
    }

    const batch = c.batch;
    const specs: TaskSpec[] = [
      ...engines.map(
        (kernels): TaskSpec => ({
          name: `${kernels.kind} mergeInto [${c.label}]`,
          case: c.label,
          engine: kernels.kind,
          role: 'kernel',
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) {
              const pair = pairs[next];
              next = next + 1 === pairs.length ? 0 : next + 1;
              kernels.mergeInto(pair.a, pair.b, out);
            }
          },
        }),
      ),
      ...engines.map(
        (kernels): TaskSpec => ({
          name: `${kernels.kind} mergeInto fresh out [${c.label}]`,
          case: c.label,
          engine: kernels.kind,
          role: 'kernel',
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) {
              const pair = pairs[next];
              next = next + 1 === pairs.length ? 0 : next + 1;
              kernels.mergeInto(pair.a, pair.b, c.shared ? allocateRun(2 * c.n) : new Float64Array(2 * c.n));
            }
          },
        }),
      ),
      {
        name: `alloc+touch [${c.label}]`,
        case: c.label,
        engine: null,
        role: 'alloc',
        batch,
        fn: () => {
          for (let i = 0; i < batch; i++) (c.shared ? allocateRun(2 * c.n) : new Float64Array(2 * c.n)).fill(1);
        },
      },
      {
        name: `adapter copies [${c.label}]`,
        case: c.label,
        engine: null,
        role: 'copy',
        batch,
        fn: () => {
          for (let i = 0; i < batch; i++) {
            const pair = pairs[next];
            next = next + 1 === pairs.length ? 0 : next + 1;
            scratch.set(pair.a);
            scratch.set(pair.b, pair.a.length);
            out.set(scratch);
          }
        },
      },
      ...harnessTasks(c.label, batch),
    ];
    records.push(...runGroup(`merge ${c.label}`, groupTiming(args.quick, c.n >= 1e6 ? 'slow' : 'fast'), specs));
  }

  const rows: TableRow[] = [];
  const summary: Record<string, number | string> = {};
  for (const c of cases) {
    const wasm = pick(records, { task: `wasm mergeInto [${c.label}]` });
    const ts = pick(records, { task: `ts mergeInto [${c.label}]` });
    const wasmFresh = pick(records, { task: `wasm mergeInto fresh out [${c.label}]` });
    const tsFresh = pick(records, { task: `ts mergeInto fresh out [${c.label}]` });
    const alloc = pick(records, { case: c.label, role: 'alloc' });
    const copies = pick(records, { case: c.label, role: 'copy' });
    const harness = pick(records, { case: c.label, role: 'harness', batch: 1 });
    rows.push({
      case: c.label,
      'calls/sample': c.batch,
      wasm: formatNs(wasm.meanNs),
      ts: formatNs(ts.meanNs),
      'ts/wasm': ratio(ts.meanNs, wasm.meanNs),
      faster: winner(ts.meanNs, wasm.meanNs),
      'wasm p99': formatNs(wasm.p99Ns),
      'ts p99': formatNs(ts.p99Ns),
      'adapter copies': formatNs(copies.meanNs),
      'wasm minus copies': formatNs(wasm.meanNs - copies.meanNs),
      'wasm fresh out': formatNs(wasmFresh.meanNs),
      'ts fresh out': formatNs(tsFresh.meanNs),
      'alloc+touch': formatNs(alloc.meanNs),
      'wasm ns/value': Math.round((wasm.meanNs / (2 * c.n)) * 100) / 100,
      'ts ns/value': Math.round((ts.meanNs / (2 * c.n)) * 100) / 100,
      harness: formatNs(harness.meanNs),
    });
    summary[`ts/wasm ${c.label}`] = ratio(ts.meanNs, wasm.meanNs);
    summary[`wasm ms ${c.label}`] = wasm.meanNs / 1e6;
    summary[`ts ms ${c.label}`] = ts.meanNs / 1e6;
    summary[`wasm fresh out ms ${c.label}`] = wasmFresh.meanNs / 1e6;
    summary[`ts fresh out ms ${c.label}`] = tsFresh.meanNs / 1e6;
  }

  return {
    bench: 'merge',
    title: 'mergeInto: two sorted runs of uniform float64',
    quick: args.quick,
    elapsedMs: performance.now() - started,
    records,
    tables: [{ title: 'Mean per merge (p99 of single merges where calls/sample = 1). ts/wasm > 1: WASM faster.', rows }],
    notes: [
      'WASM includes the adapter copying both runs into linear memory and the result out; "adapter copies" repeats exactly those copies in JS, so "wasm minus copies" approximates the merge loop alone.',
      '"fresh out" merges into a new allocateRun(2n) per call, as PoolStore.mergeNow does; "alloc+touch" is that allocation plus one write pass alone. glibc keeps freed blocks below its (adaptive, ≤ 32 MiB) mmap threshold and hands them back warm, so a steady stream of same-size merges can look cheaper than one-off big ones (see engine-append\'s cascade row).',
      '"harness" is an empty timed call in the same Bench (per sample, not subtracted).',
      'Both engines were checked to produce identical output (Object.is per element) before timing.',
    ],
    summary,
  };
}

runIfMain(import.meta.url, run);
