// The pure-TypeScript kernels: the engine's reference twin of the WASM kernels
// (assembly/). Float64Array.prototype.sort orders -0 before +0 (ECMA-262
// TypedArray SortCompare), which is the engine's total order.

import type { Kernels, QuantilePlan } from './kernels.js';
import { lerpNumpy, planQuantile } from './quantile-math.js';
import { trustSorted, type SortedRun } from './sorted-run.js';
import { countDistinct } from './stored-run.js';

export function mergeSortedTs(a: Float64Array, b: Float64Array, out: Float64Array): void {
  const na = a.length;
  const nb = b.length;
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < na && j < nb) {
    const x = a[i];
    const y = b[j];
    // Take from b only when strictly smaller (stable); -0 vs +0 by sign.
    if (y < x || (y === 0 && x === 0 && Object.is(y, -0) && !Object.is(x, -0))) {
      out[k++] = y;
      j++;
    } else {
      out[k++] = x;
      i++;
    }
  }
  if (i < na) out.set(a.subarray(i), k);
  else if (j < nb) out.set(b.subarray(j), k);
}

export function createTsKernels(): Kernels {
  return {
    kind: 'ts',
    sortInPlace(values: Float64Array): SortedRun {
      return trustSorted(values.sort());
    },
    mergeInto(a: SortedRun, b: SortedRun, out: Float64Array): number {
      mergeSortedTs(a, b, out);
      // A second pass: counting inside the loop above cost it more than this read.
      return countDistinct(out);
    },
    planQuantile(n: number, percentile: number, methodId: number, plan: QuantilePlan): void {
      planQuantile(n, percentile, methodId, plan);
    },
    interpolate: lerpNumpy,
    memoryBytes: () => 0,
  };
}
