// Storage for runs and incoming batches (src/core/sorted-run.ts).

import { describe, expect, it } from 'vitest';
import { allocateBatch, allocateRun, SHARED_RUN_MIN_LENGTH, SLAB_BATCH_MAX_VALUES } from '../src/core/sorted-run.js';

describe('allocateBatch', () => {
  it('carves small batches out of shared slabs without overlap, across slab boundaries', () => {
    const batches: Float64Array[] = [];
    // Enough 100-value batches to fill several 256 KiB slabs.
    for (let i = 0; i < 1000; i++) batches.push(allocateBatch(100).fill(i));
    for (let i = 0; i < batches.length; i++) {
      expect(batches[i].length).toBe(100);
      expect(batches[i].every((v) => v === i)).toBe(true); // no later batch wrote into it
    }
    expect(new Set(batches.map((b) => b.buffer)).size).toBeGreaterThan(1);
    expect(batches[1].buffer).toBe(batches[0].buffer); // small ones do share
  });

  it('gives larger batches storage of their own, as allocateRun does', () => {
    const big = allocateBatch(SLAB_BATCH_MAX_VALUES + 1);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe((SLAB_BATCH_MAX_VALUES + 1) * 8);
    expect(allocateBatch(SHARED_RUN_MIN_LENGTH).buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(allocateRun(3).length).toBe(3);
  });
});
