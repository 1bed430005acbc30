// Merging two stored runs into one, in the encoding the policy gives the
// result (stored-run.ts). The work follows the smaller side of the choice:
//
//   - two plain runs whose union may have many distinct values merge plain
//     (the kernels' mergeInto, WASM or TS, which also counts distinct values);
//     if the result turns out to repeat enough, it is compressed afterwards;
//   - when the inputs' distinct counts already prove the union is smaller
//     counted (a.distinct + b.distinct bounds its distinct values), the merge
//     walks distinct values and adds counts: O(distinct), never expanding a
//     counted run, so merging two runs of 10^8 values over 10^4 integers
//     touches 2·10^4 entries;
//   - a counted run meeting a run that makes the union not worth counting is
//     expanded first (its plain form is at most the merged output's size).
//
// The counted merge is plain TypeScript for both engines: it moves 16 bytes
// per distinct value, mostly far fewer than a plain merge of the same values
// (bench/engine-encodings.ts measures both).

import type { Kernels } from './kernels.js';
import { allocateRun, totalLess, trustSorted } from './sorted-run.js';
import {
  chooseEncoding,
  countedRun,
  expandRun,
  plainRun,
  reencode,
  sameValue,
  type EncodingPolicy,
  type RankedRun,
  type StoredRun,
} from './stored-run.js';

/**
 * Merges two runs of either encoding into counted form: each distinct value
 * once, with its cumulative count. The outputs must hold at least the number
 * of distinct values of the union (a.distinct + b.distinct always suffices).
 * Returns how many entries it wrote. Equal values merge into one entry, ties
 * inside a plain input included; -0 and +0 stay apart, -0 first.
 */
export function mergeCountedInto(a: RankedRun, b: RankedRun, outValues: Float64Array, outEnds: Float64Array): number {
  const av = a.values;
  const bv = b.values;
  const ae = a.ends;
  const be = b.ends;
  const na = av.length;
  const nb = bv.length;
  let i = 0;
  let j = 0;
  let d = 0;
  let total = 0;
  let aBefore = 0; // values of a before index i (cumulative count)
  let bBefore = 0;
  while (i < na || j < nb) {
    let x: number;
    if (j >= nb || (i < na && !totalLess(bv[j], av[i]))) {
      x = av[i];
      const end = ae === null ? i + 1 : ae[i];
      total += end - aBefore;
      aBefore = end;
      i++;
    } else {
      x = bv[j];
      const end = be === null ? j + 1 : be[j];
      total += end - bBefore;
      bBefore = end;
      j++;
    }
    if (d > 0 && sameValue(x, outValues[d - 1])) {
      outEnds[d - 1] = total;
    } else {
      outValues[d] = x;
      outEnds[d++] = total;
    }
  }
  return d;
}

/** Both inputs merged into one counted run, whatever their encodings. */
function mergeCounted(a: StoredRun, b: StoredRun): StoredRun {
  const capacity = a.distinct + b.distinct;
  let values = allocateRun(capacity);
  let ends = allocateRun(capacity);
  const d = mergeCountedInto(a, b, values, ends);
  if (d < capacity) {
    // Shared values across the inputs: copy to exact size rather than pin the larger buffers.
    values = copyPrefix(values, d);
    ends = copyPrefix(ends, d);
  }
  return countedRun(trustSorted(values), ends);
}

function copyPrefix(source: Float64Array, d: number): Float64Array {
  const out = allocateRun(d);
  out.set(source.subarray(0, d));
  return out;
}

/** Both inputs merged into one plain run (counted inputs expanded first). */
function mergePlain(kernels: Kernels, a: StoredRun, b: StoredRun): StoredRun {
  const av = expandRun(a);
  const bv = expandRun(b);
  const out = allocateRun(av.length + bv.length);
  const distinct = kernels.mergeInto(av, bv, out);
  return plainRun(trustSorted(out), distinct);
}

/**
 * The union of two runs as one new run in the encoding `policy` gives it.
 * Neither input is changed; the result shares no memory with them.
 */
export function mergeRuns(kernels: Kernels, a: StoredRun, b: StoredRun, policy: EncodingPolicy): StoredRun {
  const count = a.count + b.count;
  const distinctBound = a.distinct + b.distinct;
  if (policy === 'counted' || (policy === 'auto' && chooseEncoding(count, distinctBound, 'auto') === 'counted')) {
    return mergeCounted(a, b);
  }
  const merged = mergePlain(kernels, a, b);
  return policy === 'auto' ? reencode(merged, 'auto') : merged;
}
