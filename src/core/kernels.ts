// The numeric kernels an engine is made of. The TS engine and the WASM engine
// differ only here; PoolStore (pool-store.ts) holds the pools and calls these.
// Keeping pool bookkeeping in one shared class is what makes the two engines
// behave identically in everything but arithmetic speed.

import type { SortedRun } from './sorted-run.js';

export type EngineKind = 'wasm' | 'ts';

/**
 * Where a quantile comes from, in numpy's terms (numpy/lib/_function_base_impl.py,
 * `_quantile`): either `take` the order statistic at rank `lo`, or `_lerp` between
 * ranks `lo` and `hi` with weight `gamma`. Ranks are 0-based and already clipped.
 */
export interface QuantilePlan {
  lo: number;
  hi: number;
  gamma: number;
  take: boolean;
}

export interface Kernels {
  readonly kind: EngineKind;
  /** Sorts in place ascending (-0 before +0; input has no NaN) and returns the same array. */
  sortInPlace(values: Float64Array): SortedRun;
  /**
   * Merges two sorted runs into `out` (out.length === a.length + b.length) and
   * returns how many distinct values `out` holds (-0 and +0 differ), which
   * decides the merged run's encoding (stored-run.ts).
   */
  mergeInto(a: SortedRun, b: SortedRun, out: Float64Array): number;
  /** numpy's virtual index / gamma for `percentile` p in [0, 100] over n >= 1 values. */
  planQuantile(n: number, percentile: number, methodId: number, plan: QuantilePlan): void;
  /** numpy's `_lerp(a, b, t)`, finite where numpy's `b - a` overflows. */
  interpolate(a: number, b: number, t: number): number;
  /** Bytes of memory the kernels keep for themselves (WASM linear memory; 0 for TS). */
  memoryBytes(): number;
}
