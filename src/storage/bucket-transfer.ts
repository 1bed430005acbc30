// Moving pools between cluster instances (docs/cluster.md, "Moving buckets").
// An export is a snapshot file (snapshot-format.ts, format v1, seq 0) holding
// just the exported pools, so the bytes are checked by the same CRCs and the
// same reader as a snapshot on disk. An import goes through the PoolWriter like
// any change: per pool a delete record, then the pool's runs as append records
// (one transaction when they fit in IMPORT_WAVE_BYTES, so a crash leaves such a
// pool whole or absent), as durable as appends under the same --fsync. It
// replaces what the instance held for those pools, which makes a repeated
// import after a failed one converge to the exported state.

import type { QuantileEngine } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';
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

/** The pools (ascending ids, each present in the engine) as snapshot bytes. */
export function encodePoolsExport(engine: QuantileEngine, poolIds: readonly number[]): EncodedExport {
  const pools: SnapshotPool[] = poolIds.map((poolId) => ({ poolId, runs: engine.runsOf(poolId) }));
  let values = 0;
  for (const pool of pools) for (const run of pool.runs) values += run.length;
  return { bytes: encodeSnapshot(0, pools), pools: pools.length, values };
}

/** Reads back an export, verifying every CRC; throws SnapshotInvalid naming the offset. */
export async function decodePoolsExport(bytes: Uint8Array): Promise<SnapshotPool[]> {
  const loaded = await readSnapshotFile(memoryFileLayer(bytes), 'export.bin');
  return loaded.pools;
}

/** Bytes of records submitted before waiting for them: the store refuses past 64 MiB pending. */
const IMPORT_WAVE_BYTES = 8 << 20;

/**
 * Writes `pools` through `writer`, replacing each: a delete, then its runs in
 * records of at most MAX_RECORD_VALUES (a slice of a sorted run is sorted).
 * Resolves once every record is as durable as the writer promises.
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
    await submit(writer.deletePool(pool.poolId), 0);
    const parts: SortedRun[] = [];
    for (const run of pool.runs) {
      for (let at = 0; at < run.length; at += MAX_RECORD_VALUES) {
        parts.push((at === 0 && run.length <= MAX_RECORD_VALUES ? run : run.subarray(at, at + MAX_RECORD_VALUES)) as SortedRun);
      }
    }
    const count = parts.reduce((n, part) => n + part.length, 0);
    values += count;
    if (count * 8 <= IMPORT_WAVE_BYTES) {
      await submit(writer.appendAll(parts.map((run) => ({ poolId: pool.poolId, run }))), count * 8);
    } else {
      for (const part of parts) await submit(writer.append(pool.poolId, part), part.length * 8);
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
