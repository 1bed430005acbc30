// The contents of the golden file of snapshot format version 2
// (test/golden/snapshot-v2/): pools with and without a retention window, with
// several arrival-time buckets, plain and counted runs, -0 beside +0, a pool
// whose window holds nothing, and the largest pool id. `writeGoldenSnapshotV2`
// regenerates the file from these definitions with the current encoder;
// test/storage-golden.test.ts reads it back and checks the encoder still
// produces it byte for byte. Run
//   UPDATE_GOLDEN=snapshot-v2 npx vitest run test/storage-golden.test.ts
// only when deliberately introducing this version's file.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSorted, type RunEncoding } from '../../src/core/stored-run.js';
import { encodeSnapshot, snapshotFileName, type SnapshotPool } from '../../src/storage/snapshot-format.js';
import { sortedRun } from '../helpers/storage-model.js';

export const GOLDEN_SNAPSHOT_V2_DIR = new URL('./snapshot-v2/', import.meta.url).pathname;

/** 2023-11-14T22:13:20Z. */
export const GOLDEN_SNAPSHOT_V2_T0 = 1_700_000_000_000;
const T0 = GOLDEN_SNAPSHOT_V2_T0;
export const GOLDEN_SNAPSHOT_V2_SEQ = 9;
export const GOLDEN_SNAPSHOT_V2_FILE = snapshotFileName(GOLDEN_SNAPSHOT_V2_SEQ);

export interface GoldenRun {
  encoding: RunEncoding;
  /** Every value of the run, sorted or not (the run is their sorted form). */
  values: number[];
}

export interface GoldenPool {
  poolId: number;
  windowSeconds: number | null;
  buckets: { startMs: number; endMs: number; runs: GoldenRun[] }[];
}

export const GOLDEN_SNAPSHOT_V2_POOLS: readonly GoldenPool[] = [
  {
    poolId: 0,
    windowSeconds: null,
    buckets: [
      {
        startMs: T0,
        endMs: T0 + 1,
        runs: [
          { encoding: 'plain', values: [-0, 0, 0.5, 0.5] },
          { encoding: 'plain', values: [1e-310] },
        ],
      },
    ],
  },
  {
    poolId: 7,
    windowSeconds: 3600,
    buckets: [
      { startMs: T0, endMs: T0 + 60_000, runs: [{ encoding: 'counted', values: [1, 1, 1, 2, 2, 5] }] },
      {
        startMs: T0 + 60_000,
        endMs: T0 + 120_000,
        runs: [
          { encoding: 'plain', values: [3, 4.5] },
          { encoding: 'counted', values: [-0, -0, 0, 0, 0, -7] },
        ],
      },
    ],
  },
  { poolId: 42, windowSeconds: 60, buckets: [] },
  {
    poolId: Number.MAX_SAFE_INTEGER,
    windowSeconds: null,
    buckets: [{ startMs: T0 + 5, endMs: T0 + 999, runs: [{ encoding: 'plain', values: [-Number.MAX_VALUE, 1.7e308] }] }],
  },
];

export function goldenSnapshotV2Pools(): SnapshotPool[] {
  return GOLDEN_SNAPSHOT_V2_POOLS.map((pool) => ({
    poolId: pool.poolId,
    windowSeconds: pool.windowSeconds,
    buckets: pool.buckets.map((bucket) => ({
      startMs: bucket.startMs,
      endMs: bucket.endMs,
      runs: bucket.runs.map((run) => encodeSorted(sortedRun(run.values), run.encoding)),
    })),
  }));
}

export function encodeGoldenSnapshotV2(): Uint8Array {
  return encodeSnapshot(GOLDEN_SNAPSHOT_V2_SEQ, goldenSnapshotV2Pools());
}

export function writeGoldenSnapshotV2(dir = GOLDEN_SNAPSHOT_V2_DIR): void {
  writeFileSync(join(dir, GOLDEN_SNAPSHOT_V2_FILE), encodeGoldenSnapshotV2());
}
