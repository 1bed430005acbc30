// The merge policy of a pool's buckets (pool-store.ts): adjacent runs of a
// bucket merge while the older one is at most MERGE_RATIO times the newer one
// (by values), so a bucket of n values keeps O(log n) runs and each value is
// merged O(log n) times; a bucket that takes no more values merges into one
// run. Merges of at least offloadMinValues stored entries go to a
// MergeOffloader (a worker) while queries keep reading the inputs; the result
// is swapped in only if its pool and bucket still hold both inputs.

import type { MergeOffloader } from './engine.js';
import type { Kernels } from './kernels.js';
import type { Bucket, Pool } from './pool.js';
import { mergeRuns } from './run-merge.js';
import { runBytes, type EncodingPolicy, type StoredRun } from './stored-run.js';

/** Merge runs i, i+1 while runs[i].count <= MERGE_RATIO * runs[i+1].count. */
const MERGE_RATIO = 2;
export const DEFAULT_OFFLOAD_MIN_VALUES = 1 << 20;

export class RunCompactor {
  private offloader: MergeOffloader | null = null;
  private offloadMinValues = DEFAULT_OFFLOAD_MIN_VALUES;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly kernels: Kernels,
    private readonly encoding: EncodingPolicy,
    /** Told the bytes of runs merged away. */
    private readonly released: (bytes: number) => void,
  ) {}

  setOffloader(offloader: MergeOffloader | null, minValues: number): void {
    this.offloader = offloader;
    this.offloadMinValues = minValues;
  }

  get mergesInFlight(): number {
    return this.inFlight.size;
  }

  async whenSettled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /**
   * Applies the policy to one bucket of `pool` until no adjacent pair
   * qualifies. `isCurrent` tells, when an offloaded merge lands, whether
   * `pool` is still the engine's (not deleted or replaced meanwhile).
   */
  compact(isCurrent: () => boolean, pool: Pool, bucket: Bucket, closed = bucket !== pool.newestBucket()): void {
    const runs = bucket.runs;
    for (let i = runs.length - 2; i >= 0;) {
      const a = runs[i];
      const b = runs[i + 1];
      if ((!closed && a.count > MERGE_RATIO * b.count) || pool.merging.has(a) || pool.merging.has(b)) {
        i--;
        continue;
      }
      if (this.offloader !== null && a.values.length + b.values.length >= this.offloadMinValues) {
        this.startOffloadedMerge(isCurrent, pool, a, b, this.offloader);
        i--;
        continue;
      }
      runs.splice(i, 2, mergeRuns(this.kernels, a, b, this.encoding));
      this.released(runBytes(a) + runBytes(b));
      pool.changed();
      i = Math.min(i, runs.length - 2);
    }
  }

  private startOffloadedMerge(isCurrent: () => boolean, pool: Pool, a: StoredRun, b: StoredRun, offloader: MergeOffloader): void {
    pool.merging.add(a);
    pool.merging.add(b);
    const task = offloader(a, b, this.encoding)
      .catch(() => mergeRuns(this.kernels, a, b, this.encoding)) // a failed worker task is redone inline, never lost
      .then((merged) => this.swapInMerged(isCurrent, pool, a, b, merged))
      .finally(() => this.inFlight.delete(task));
    this.inFlight.add(task);
  }

  private swapInMerged(isCurrent: () => boolean, pool: Pool, a: StoredRun, b: StoredRun, merged: StoredRun): void {
    pool.merging.delete(a);
    pool.merging.delete(b);
    if (!isCurrent()) return; // deleted or replaced meanwhile
    const bucket = pool.buckets.find((candidate) => candidate.runs.includes(a) && candidate.runs.includes(b));
    if (bucket === undefined || merged.count !== a.count + b.count) return; // expired meanwhile
    const runs = bucket.runs;
    const ia = runs.indexOf(a);
    const ib = runs.indexOf(b);
    runs.splice(Math.max(ia, ib), 1);
    runs.splice(Math.min(ia, ib), 1, merged); // same values: cached answers stay valid
    this.released(runBytes(a) + runBytes(b));
    pool.changed();
    this.compact(isCurrent, pool, bucket);
  }
}
