// Data for `npm run bench:storage`: sorted runs made fast (a running sum of
// random increments, so no sort is needed and 1e8 values take well under a
// second), pools of them, and a snapshot write through the store's own
// writeSnapshotFileSync that times the write phase and the fdatasync apart.

import { closeSync, fsyncSync, openSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { allocateRun, trustSorted, type SortedRun } from '../../src/core/sorted-run.js';
import { plainRun } from '../../src/core/stored-run.js';
import { rng32 } from './data.js';
import { snapshotFileName, writeSnapshotFileSync, type SnapshotPool, type SnapshotSummary } from '../../src/storage/snapshot-format.js';

/**
 * `n` strictly increasing doubles starting near `base`: a running sum of
 * increments in (0, 1]. Stored like pool runs (allocateRun: a
 * SharedArrayBuffer from 32 Ki values on), full 52-bit mantissas, so the bytes
 * look like real measurements to the disk and the CRC.
 */
export function fastSortedRun(n: number, base: number, next: () => number): SortedRun {
  const run = allocateRun(n);
  let v = base;
  for (let i = 0; i < n; i++) {
    v += (next() + 1) * 2.3283064365386963e-10; // (0, 1]
    run[i] = v;
  }
  return trustSorted(run);
}

/** `pools` pools (ids 0 … pools − 1) of one run of `perPool` values each. */
export function buildPools(pools: number, perPool: number, seed: number): SnapshotPool[] {
  const next = rng32(seed);
  const out: SnapshotPool[] = [];
  for (let p = 0; p < pools; p++) {
    const run = fastSortedRun(perPool, p * 1000, next); // strictly increasing: every value distinct
    out.push({ poolId: p, windowSeconds: null, buckets: [{ startMs: 0, endMs: 1, runs: [plainRun(run, run.length)] }] });
  }
  return out;
}

export interface TimedSnapshotWrite {
  summary: SnapshotSummary;
  file: string;
  /** Encoding + CRC + writev into the page cache. */
  writeMs: number;
  /** The final fdatasync of the file (the disk). */
  fdatasyncMs: number;
  /** rename + directory fsync. */
  renameMs: number;
  totalMs: number;
}

/**
 * Writes `snapshot-<seq>.bin` into `dataDir` exactly as the store would (same
 * writer, same bytes: writeSnapshotFileSync into `.tmp` — write, fdatasync —
 * then rename and fsync the directory), timing each step.
 */
export function writeSnapshotTimed(dataDir: string, seq: number, pools: readonly SnapshotPool[]): TimedSnapshotWrite {
  const file = join(dataDir, snapshotFileName(seq));
  const t0 = performance.now();
  let t1 = t0;
  const summary = writeSnapshotFileSync(`${file}.tmp`, seq, pools, () => (t1 = performance.now()));
  const t2 = performance.now();
  renameSync(`${file}.tmp`, file);
  const dirFd = openSync(dirname(file), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  const t3 = performance.now();
  return { summary, file, writeMs: t1 - t0, fdatasyncMs: t2 - t1, renameMs: t3 - t2, totalMs: t3 - t0 };
}

/** Bytes of a WAL holding `appends` appends of `values` values (header + records). */
export function walBytesFor(appends: number, values: number): number {
  return 32 + appends * (40 + 8 * values);
}
