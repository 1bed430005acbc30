// The WASM engine's kernels: a thin adapter over the AssemblyScript module
// (assembly/) implementing the same Kernels interface as ts-kernels.ts.
//
// The adapter owns every address. Linear memory above __heap_base is laid out
// once per instance:
//
//   planSlot   32 B      lo, hi, gamma, take written by planQuantile
//   histogram  48 KiB    radix-sort digit counters
//   data …                per call: the operands, then the scratch/output
//
// Values are copied into `data`, the kernel runs, the result is copied out
// (1–5 % of the work, docs/performance). Memory grows on demand with
// memory.grow and is kept for reuse (wasm memory cannot shrink). Growing
// detaches the old ArrayBuffer, so typed-array views are taken from
// `memory.buffer` afresh after any growth, never carried across one. Needs
// beyond maxMemoryBytes (wasm32 caps memory at 4 GiB) or a refused grow become
// PoolqError 'unavailable' via wasmMemoryExhausted, and the engine stays usable.

import { wasmMemoryExhausted, invalidOption } from './errors.js';
import type { Kernels, QuantilePlan } from './kernels.js';
import { QUANTILE_METHODS } from './methods.js';
import { totalLess, trustSorted, type SortedRun } from './sorted-run.js';
import { countDistinct, sameValue } from './stored-run.js';
import {
  assertWasmBuild,
  instantiatePoolqModule,
  loadWasmModule,
  PLAN_UNKNOWN_METHOD,
  type WasmBuild,
  type WasmModule,
} from './wasm-module.js';

export { loadWasmModule, type WasmBuild, type WasmModule } from './wasm-module.js';

const PAGE_BYTES = 65536;
/** wasm32 addresses 2^16 pages of 64 KiB. */
export const WASM32_MAX_MEMORY_BYTES = 65536 * PAGE_BYTES;
/** Room for the fixed layout (≈ 49 KiB) plus a small warm-up; smaller limits are refused. */
export const MIN_MEMORY_BYTES = 2 * PAGE_BYTES;

/**
 * Below this length sortInPlace uses Float64Array.prototype.sort: the call and
 * copies cost more than the sort (bench/engine-sort.ts: 10 values 176 ns WASM vs
 * 139 ns TS; 1e3 values 18.8 µs vs 57.9 µs). Same result, bit for bit.
 */
export const SMALL_SORT_LENGTH = 64;
/**
 * Merges stream through windows of this many values per input, so linear
 * memory stays near 4 × 8 × MERGE_WINDOW bytes (512 KiB) however large the
 * runs: wasm memory never shrinks, and every instance that merges keeps it.
 * Merging 10^6 + 10^6 values took the same time with windows of 2^14, 2^16 and
 * 2^20 values (docs/performance.md).
 */
export const MERGE_WINDOW = 1 << 14;
/**
 * Sorts needing more linear memory than this run on a throwaway instance whose
 * memory is freed afterwards, for the same reason.
 */
export const PERSISTENT_SORT_BYTES = 64 << 20;

/**
 * Warm-up sort length and rounds. V8 runs fresh wasm in its baseline tier and
 * tiers a function up only after it has used its budget, on a background
 * thread; cold radix sort ran 2× slower (docs/performance).
 */
const WARMUP_LENGTH = 1 << 13;
const WARMUP_ROUNDS = 16;

export interface WasmKernelOptions {
  /** Which asc target to load; tests use 'debug' (asserts on). Default 'release'. */
  build?: WasmBuild;
  /** Upper bound on the instance's linear memory in bytes. Default and maximum 4 GiB (wasm32). */
  maxMemoryBytes?: number;
  /** Values per input window when merging (tests use tiny windows). Default MERGE_WINDOW. */
  mergeWindow?: number;
}

export interface WasmKernels extends Kernels {
  readonly kind: 'wasm';
  /** Current size of this instance's linear memory (grows on demand, never shrinks). */
  memoryBytes(): number;
}

/** Compiles (once per thread and build) and instantiates; see instantiateWasmKernels. */
export async function createWasmKernels(opts: WasmKernelOptions = {}): Promise<WasmKernels> {
  const build = opts.build ?? 'release';
  assertWasmBuild(build);
  readMaxMemoryBytes(opts);
  return instantiateWasmKernels(await loadWasmModule(build), opts);
}

/**
 * Synchronous instantiation from an already compiled module, for piscina
 * workers that compile once (loadWasmModule) and create one instance each:
 * every instance has its own memory, hence its own scratch space.
 * `opts.build` is ignored here; the module decides.
 */
export function instantiateWasmKernels(module: WasmModule, opts: WasmKernelOptions = {}): WasmKernels {
  const maxMemoryBytes = readMaxMemoryBytes(opts);
  const main = bindInstance(module, maxMemoryBytes);
  const { wasm, planSlot } = main;
  const window = opts.mergeWindow ?? MERGE_WINDOW;
  if (!Number.isSafeInteger(window) || window < 1) throw invalidOption('mergeWindow', 'a positive integer', window);

  function sortInPlace(values: Float64Array): SortedRun {
    const n = values.length;
    if (n < SMALL_SORT_LENGTH) return trustSorted(values.sort());
    const needed = main.dataStart + n * 16;
    if (needed <= Math.max(PERSISTENT_SORT_BYTES, main.memoryBytes())) return main.sort(values);
    return bindInstance(module, maxMemoryBytes).sort(values); // memory dropped with the instance
  }

  function mergeInto(a: SortedRun, b: SortedRun, out: Float64Array): number {
    const na = a.length;
    const nb = b.length;
    if (out.length !== na + nb) {
      throw new RangeError(`mergeInto: out.length ${out.length} must equal a.length + b.length = ${na + nb}`);
    }
    let i = 0;
    let j = 0;
    let k = 0;
    let distinct = 0;
    while (i < na && j < nb) {
      // Take a window of each input and cut both at the smaller window end x:
      // everything <= x on both sides merges now; whatever remains is > x.
      const ea = Math.min(na, i + window);
      const eb = Math.min(nb, j + window);
      const lastA = a[ea - 1];
      const lastB = b[eb - 1];
      let ca = ea;
      let cb = eb;
      if (totalLess(lastA, lastB)) cb = upperBoundTotal(b, lastA, j, eb);
      else ca = upperBoundTotal(a, lastB, i, ea);
      // A window may start with another copy of the value the last one ended on.
      distinct += main.merge(a, i, ca, b, j, cb, out, k) - (k > 0 && sameValue(out[k - 1], out[k]) ? 1 : 0);
      k += ca - i + (cb - j);
      i = ca;
      j = cb;
    }
    if (k < na + nb) {
      if (i < na) out.set(a.subarray(i), k);
      else out.set(b.subarray(j), k);
      distinct += countDistinct(out, k) - (k > 0 && sameValue(out[k - 1], out[k]) ? 1 : 0);
    }
    return distinct;
  }

  function planQuantile(n: number, percentile: number, methodId: number, plan: QuantilePlan): void {
    // A non-integer (or out-of-i32) id would be truncated by the i32 parameter;
    // the TS twin rejects it, so reject it before it crosses.
    if ((methodId | 0) !== methodId || wasm.planQuantile(n, percentile, methodId, planSlot) === PLAN_UNKNOWN_METHOD) {
      throw new RangeError(`unknown quantile method id ${methodId}`);
    }
    const view = main.heapView();
    const at = planSlot / 8;
    plan.lo = view[at];
    plan.hi = view[at + 1];
    plan.gamma = view[at + 2];
    plan.take = view[at + 3] !== 0;
  }

  const kernels: WasmKernels = {
    kind: 'wasm',
    sortInPlace,
    mergeInto,
    planQuantile,
    interpolate: wasm.lerp,
    memoryBytes: main.memoryBytes,
  };
  warmUp(kernels, Math.min(WARMUP_LENGTH, Math.floor((maxMemoryBytes - main.dataStart) / 16)));
  return kernels;
}

/** First index in [lo, hi) whose value is after x in the total order. */
function upperBoundTotal(run: Float64Array, x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (totalLess(x, run[mid])) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

interface BoundInstance {
  wasm: ReturnType<typeof instantiatePoolqModule>;
  planSlot: number;
  dataStart: number;
  heapView(): Float64Array;
  memoryBytes(): number;
  /** Sorts `values` in place through this instance's memory. */
  sort(values: Float64Array): SortedRun;
  /** Merges a[ia, ea) and b[ib, eb) into out at `at`; returns the distinct values written. */
  merge(a: Float64Array, ia: number, ea: number, b: Float64Array, ib: number, eb: number, out: Float64Array, at: number): number;
}

/** One instance and the layout of its memory; every address lives here. */
function bindInstance(module: WasmModule, maxMemoryBytes: number): BoundInstance {
  const wasm = instantiatePoolqModule(module);
  const memory = wasm.memory;
  const planSlot = align16(wasm.heapBase() >>> 0);
  const histogram = planSlot + 32;
  const dataStart = align16(histogram + (wasm.sortHistogramBytes() >>> 0));

  // One Float64Array over all of memory, replaced whenever memory.buffer
  // changes (i.e. after a grow detached the old buffer).
  let heapBuffer: ArrayBuffer | undefined;
  let heap = new Float64Array(0);
  function heapView(): Float64Array {
    const buffer = memory.buffer;
    if (buffer !== heapBuffer) {
      heapBuffer = buffer;
      heap = new Float64Array(buffer);
    }
    return heap;
  }

  /** Makes bytes [0, end) addressable, growing memory if needed. */
  function reserve(end: number): void {
    if (end > maxMemoryBytes) throw wasmMemoryExhausted(end, maxMemoryBytes);
    const have = memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE_BYTES);
    let previous: number;
    try {
      previous = memory.grow(pages);
    } catch {
      // V8 throws RangeError when it cannot commit the pages (limit or OOM).
      throw wasmMemoryExhausted(end, maxMemoryBytes);
    }
    if (previous < 0) throw wasmMemoryExhausted(end, maxMemoryBytes);
  }

  return {
    wasm,
    planSlot,
    dataStart,
    heapView,
    memoryBytes: () => memory.buffer.byteLength,
    sort(values: Float64Array): SortedRun {
      const n = values.length;
      const bytes = n * 8;
      const data = dataStart;
      const scratch = dataStart + bytes;
      reserve(scratch + bytes);
      const view = heapView();
      view.set(values, data / 8);
      const sorted = wasm.sortF64(data, n, scratch, histogram) >>> 0;
      values.set(view.subarray(sorted / 8, sorted / 8 + n));
      return trustSorted(values);
    },
    merge(a, ia, ea, b, ib, eb, out, at) {
      const na = ea - ia;
      const nb = eb - ib;
      const pa = dataStart;
      const pb = pa + na * 8;
      const po = pb + nb * 8;
      reserve(po + (na + nb) * 8);
      const view = heapView();
      view.set(a.subarray(ia, ea), pa / 8);
      view.set(b.subarray(ib, eb), pb / 8);
      const distinct = wasm.mergeF64(pa, na, pb, nb, po);
      out.set(view.subarray(po / 8, po / 8 + na + nb), at);
      return distinct;
    },
  };
}

function readMaxMemoryBytes(opts: WasmKernelOptions): number {
  const max = opts.maxMemoryBytes ?? WASM32_MAX_MEMORY_BYTES;
  if (!Number.isInteger(max) || max < MIN_MEMORY_BYTES || max > WASM32_MAX_MEMORY_BYTES) {
    throw invalidOption('maxMemoryBytes', `an integer from ${MIN_MEMORY_BYTES} to ${WASM32_MAX_MEMORY_BYTES}`, max);
  }
  return max;
}

function align16(address: number): number {
  return Math.ceil(address / 16) * 16;
}

/**
 * Runs every kernel until V8 has had reason to tier it up, and checks the
 * last sort so a broken build fails at start rather than on the first request.
 */
function warmUp(kernels: Kernels, length: number): void {
  const source = warmUpData(length);
  const values = new Float64Array(length);
  const half = length >> 1;
  const merged = new Float64Array(length);
  const plan: QuantilePlan = { lo: 0, hi: 0, gamma: 0, take: false };
  for (let round = 0; round < WARMUP_ROUNDS; round++) {
    values.set(source);
    const sorted = kernels.sortInPlace(values);
    kernels.mergeInto(trustSorted(sorted.subarray(0, half)), trustSorted(sorted.subarray(half)), merged);
    kernels.sortInPlace(values.subarray(0, 50)); // the insertion-sort path
    for (let method = 0; method < QUANTILE_METHODS.length; method++) {
      kernels.planQuantile(length, round * 6.25, method, plan);
      kernels.interpolate(values[plan.lo], values[plan.hi], plan.gamma);
    }
  }
  values.set(source);
  kernels.sortInPlace(values);
  for (let i = 1; i < length; i++) {
    if (totalLess(values[i], values[i - 1])) {
      throw new Error(`WASM sort self-check failed at index ${i}: the module is broken`);
    }
  }
}

/** Deterministic data touching every radix pass: wide exponents, both signs, zeros. */
function warmUpData(length: number): Float64Array {
  const data = new Float64Array(length);
  let x = 0x2545f491;
  for (let i = 0; i < length; i++) {
    // xorshift32: no Math.random, so warm-up is reproducible.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const u = (x >>> 0) / 4294967296;
    data[i] = i % 97 === 0 ? (i % 2 ? -0 : 0) : (u - 0.5) * 2 ** ((x & 0x3ff) - 512);
  }
  return data;
}
