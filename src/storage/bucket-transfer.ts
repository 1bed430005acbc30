// Moving pools between cluster instances (docs/cluster.md, "Moving buckets").
// An export is a snapshot file (snapshot-format.ts, seq 0) holding just the
// exported pools — retention window, arrival-time buckets, plain and counted
// runs — so the bytes are checked by the same CRCs and the same reader as a
// snapshot on disk. An import goes through the PoolWriter like any change:
// per pool a delete record, its retention window, then each bucket's values as
// append records stamped with the bucket's start time (one transaction per
// bucket when it fits IMPORT_WAVE_BYTES, so a crash leaves such a bucket whole
// or absent), as durable as appends under the same --fsync. It replaces what
// the instance held for those pools, which makes a repeated import after a
// failed one converge to the exported state.

import type { QuantileEngine } from '../core/engine.js';
import { trustSorted, type SortedRun } from '../core/sorted-run.js';
import { countDistinct, plainRun, type RankedRun } from '../core/stored-run.js';
import type { FileHandle, FileLayer } from './file-layer.js';
import type { PoolWriter } from './pool-writer.js';
import { encodeSnapshot, readSnapshotFile, type SnapshotPool } from './snapshot-format.js';
import { MAX_RECORD_VALUES } from './wal-record-v2.js';

export interface TransferSummary {
  pools: number;
  values: number;
}

export interface EncodedExport extends TransferSummary {
  bytes: Uint8Array;
}

function valuesOf(pool: SnapshotPool): number {
  let values = 0;
  for (const bucket of pool.buckets) for (const run of bucket.runs) values += run.count;
  return values;
}

/** The pools (ascending ids, each present in the engine) as snapshot bytes. */
export function encodePoolsExport(engine: QuantileEngine, poolIds: readonly number[]): EncodedExport {
  const pools: SnapshotPool[] = poolIds.map((poolId) => ({ poolId, ...engine.poolImage(poolId) }));
  const values = pools.reduce((n, pool) => n + valuesOf(pool), 0);
  return { bytes: encodeSnapshot(0, pools), pools: pools.length, values };
}

/** Reads back an export, verifying every CRC; throws SnapshotInvalid naming the offset. */
export async function decodePoolsExport(bytes: Uint8Array): Promise<SnapshotPool[]> {
  const loaded = await readSnapshotFile(memoryFileLayer(bytes), 'export.bin');
  if (loaded.version === 2) return loaded.pools;
  // version 1 (plain runs, no window or arrival times): every value counts as arriving now
  const now = Date.now();
  return loaded.pools.map(({ poolId, runs }) => ({
    poolId,
    windowSeconds: null,
    buckets: [{ startMs: now, endMs: now + 1, runs: runs.map((values) => plainRun(values, countDistinct(values))) }],
  }));
}

/** Bytes of records submitted before waiting for them: the store refuses past 64 MiB pending. */
const IMPORT_WAVE_BYTES = 8 << 20;
/** Values per appended record (8 MiB). */
const PART_VALUES = Math.min(MAX_RECORD_VALUES, 1 << 20);

/**
 * A run's values as sorted parts of at most PART_VALUES: slices of a plain run,
 * or a counted run's distinct values repeated as often as they occur, made one
 * part at a time so a heavily repeated value never needs its full size at once.
 */
function* partsOf(run: RankedRun): Generator<SortedRun> {
  const { values, ends } = run;
  if (ends === null) {
    for (let at = 0; at < values.length; at += PART_VALUES) yield values.subarray(at, at + PART_VALUES) as SortedRun;
    return;
  }
  let part = new Float64Array(Math.min(PART_VALUES, run.count));
  let filled = 0;
  for (let i = 0; i < values.length; i++) {
    let copies = ends[i] - (i === 0 ? 0 : ends[i - 1]);
    while (copies > 0) {
      const n = Math.min(copies, part.length - filled);
      part.fill(values[i], filled, filled + n);
      filled += n;
      copies -= n;
      if (filled === part.length) {
        yield trustSorted(part);
        part = new Float64Array(Math.min(PART_VALUES, run.count));
        filled = 0;
      }
    }
  }
  if (filled > 0) yield trustSorted(part.subarray(0, filled));
}

/**
 * Writes `pools` through `writer`, replacing each: a delete, its window, then
 * every bucket's values appended at the bucket's start time. Resolves once
 * every record is as durable as the writer promises.
 */
export async function importPools(writer: PoolWriter, pools: readonly SnapshotPool[]): Promise<TransferSummary> {
  let wave: Promise<unknown>[] = [];
  let waveBytes = 0;
  const submit = async (result: unknown, bytes: number): Promise<void> => {
    if (result instanceof Promise) wave.push(result);
    waveBytes += bytes;
    if (waveBytes < IMPORT_WAVE_BYTES) return;
    const pending = wave;
    wave = [];
    waveBytes = 0;
    await Promise.all(pending);
  };
  let values = 0;
  for (const pool of pools) {
    const { poolId } = pool;
    await submit(writer.deletePool(poolId), 0);
    if (pool.windowSeconds !== null) await submit(writer.setRetention(poolId, pool.windowSeconds), 0);
    for (const bucket of pool.buckets) {
      const atMs = bucket.startMs;
      const count = bucket.runs.reduce((n, run) => n + run.count, 0);
      values += count;
      if (count * 8 <= IMPORT_WAVE_BYTES) {
        const items = bucket.runs.flatMap((run) => [...partsOf(run)].map((part) => ({ poolId, run: part })));
        await submit(writer.appendAll(items, { atMs }), count * 8);
      } else {
        for (const run of bucket.runs)
          for (const part of partsOf(run)) await submit(writer.append(poolId, part, { atMs }), part.length * 8);
      }
    }
  }
  await Promise.all(wave);
  return { pools: pools.length, values };
}

/** A read-only FileLayer over bytes in memory, so an export is read by the snapshot reader itself. */
function memoryFileLayer(bytes: Uint8Array): FileLayer {
  const handle: FileHandle = {
    size: async () => bytes.length,
    read: async (into, position) => {
      const part = bytes.subarray(position, position + into.length);
      into.set(part);
      return part.length;
    },
    write: () => Promise.reject(new Error('an export is read-only')),
    datasync: async () => {},
    truncate: () => Promise.reject(new Error('an export is read-only')),
    close: async () => {},
  };
  const refuse = (): Promise<never> => Promise.reject(new Error('an export is read-only'));
  return { mkdir: refuse, readdir: refuse, open: async () => handle, rename: refuse, unlink: refuse, fsyncDir: refuse };
}
