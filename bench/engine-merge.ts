// Merging two sorted runs, the work behind every compaction: Kernels.mergeInto
// of the WASM engine (both runs copied into linear memory, merged, copied out)
// against the TS engine's merge loop. Runs come from allocateRun, as in
// PoolStore.mergeNow; small merges rotate through many input pairs so the
// branch predictor cannot learn one merge's pattern.
//
// PoolStore.mergeNow merges into a fresh allocateRun(a + b) every time, and
// the first write to fresh pages can cost more than the merge itself, so each
// case is also timed that way ("fresh out"), with the allocation and first
// touch alone as a task of its own ("alloc+touch").

import type { Kernels } from '../src/core/kernels.js';
import { allocateRun } from '../src/core/sorted-run.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createWasmKernels } from '../src/core/wasm-kernels.js';
import {
  groupTiming,
  harnessTasks,
  pick,
  runBench,
  runGroup,
  versus,
  type BenchReport,
  type TaskRecord,
  type TaskSpec,
} from './lib/engine-bench.js';
import { seededRng, sortedUniform } from './lib/data.js';
import { fmtCount, fmtNs, type Row } from './lib/report.js';

async function run(quick: boolean): Promise<BenchReport> {
  const engines: Kernels[] = [await createWasmKernels({ build: 'release' }), createTsKernels()];
  const rng = seededRng(0x3e7e);
  const records: TaskRecord[] = [];
  const sizes = quick ? [1e5, 1e6] : [1e3, 1e5, 1e6];
  const label = (n: number): string => `${fmtCount(n)} + ${fmtCount(n)}`;

  for (const n of sizes) {
    const pairs = Array.from({ length: n <= 1e3 ? 64 : 2 }, () => ({ a: sortedUniform(n, rng), b: sortedUniform(n, rng) }));
    const out = allocateRun(2 * n);
    const [x, y] = engines.map((kernels) => {
      kernels.mergeInto(pairs[0].a, pairs[0].b, out);
      return out.slice();
    });
    if (x.some((v, i) => !Object.is(v, y[i]))) throw new Error(`engines disagree merging ${label(n)}`);
    let next = 0;
    const batch = n <= 1e3 ? 50 : 1;
    const merges =
      (kernels: Kernels, fresh: boolean): (() => void) =>
      () => {
        for (let i = 0; i < batch; i++) {
          const pair = pairs[next];
          next = next + 1 === pairs.length ? 0 : next + 1;
          kernels.mergeInto(pair.a, pair.b, fresh ? allocateRun(2 * n) : out);
        }
      };
    const common = { case: label(n), role: 'kernel' as const, batch };
    const specs: TaskSpec[] = [
      ...engines.map((k) => ({ ...common, name: `${k.kind} mergeInto [${label(n)}]`, engine: k.kind, fn: merges(k, false) })),
      ...engines.map((k) => ({ ...common, name: `${k.kind} mergeInto fresh out [${label(n)}]`, engine: k.kind, fn: merges(k, true) })),
      {
        ...common,
        name: `alloc+touch [${label(n)}]`,
        engine: null,
        role: 'alloc',
        fn: () => {
          for (let i = 0; i < batch; i++) allocateRun(2 * n).fill(1);
        },
      },
      ...harnessTasks(label(n), batch),
    ];
    records.push(...runGroup(`merge ${label(n)}`, groupTiming(quick, n >= 1e6 ? 'slow' : 'fast'), specs));
  }

  const rows: Row[] = sizes.map((n) => {
    const task = (what: string): TaskRecord => pick(records, { task: `${what} [${label(n)}]` });
    const [wasm, ts] = [task('wasm mergeInto'), task('ts mergeInto')];
    return {
      case: label(n),
      'calls/sample': wasm.batch,
      wasm: fmtNs(wasm.meanNs),
      ts: fmtNs(ts.meanNs),
      ...versus(ts.meanNs, wasm.meanNs),
      'wasm p99': fmtNs(wasm.p99Ns),
      'ts p99': fmtNs(ts.p99Ns),
      'wasm fresh out': fmtNs(task('wasm mergeInto fresh out').meanNs),
      'ts fresh out': fmtNs(task('ts mergeInto fresh out').meanNs),
      'alloc+touch': fmtNs(task('alloc+touch').meanNs),
      'ms/MiB alloc+touch': (task('alloc+touch').meanNs / 1e6 / ((16 * n) / 2 ** 20)).toFixed(2),
      'empty call': fmtNs(pick(records, { case: label(n), role: 'harness', batch: 1 }).meanNs),
    };
  });
  return {
    title: 'mergeInto: two sorted runs of uniform float64',
    records,
    tables: [{ title: 'Mean per merge (p99 of single merges where calls/sample = 1). ts/wasm > 1: WASM faster.', rows }],
    notes: [
      'WASM includes the adapter copying both runs into linear memory and the result out.',
      '"fresh out" merges into a new allocateRun(2n) per call, as PoolStore.mergeNow does; "alloc+touch" is that allocation and one write pass alone.',
    ],
  };
}

runBench('merge', run);
