// Snapshot format version 2 (docs/storage-format.md has the byte tables): each
// pool with its retention window, its arrival-time buckets, and each bucket's
// runs as the engine stores them — plain (every value) or counted (distinct
// values, then their cumulative counts).
//
//   header (64 bytes) | pool data (f64 LE, 8-byte aligned) | index
//
// The index (pools, then buckets, then runs) goes last because the writer
// learns the CRCs while it streams the data; the header, written last of all
// at offset 0, points at it. Runs are immutable, so a snapshot copies nothing:
// the chunks it writes are views of the runs themselves.

import type { BucketImage } from '../core/engine.js';
import { allocateRun, trustSorted } from '../core/sorted-run.js';
import { countedRun, type StoredRun } from '../core/stored-run.js';
import { isValidWindowSeconds } from '../core/time-window.js';
import { bytesOf, crc32cOf, getU64, maskCrc, setU64, viewOf } from './binary.js';
import type { FileHandle } from './file-layer.js';
import {
  encodeSnapshotHeader,
  readPieces,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_VERSION,
  SnapshotInvalid,
  type DataPiece,
  type PositionedWrite,
  type SnapshotHeader,
} from './snapshot-header.js';

export const POOL_ENTRY_BYTES = 48;
export const BUCKET_ENTRY_BYTES = 24;
export const RUN_ENTRY_BYTES = 32;
const PLAIN = 0;
const COUNTED = 1;

/** A pool as a snapshot keeps it: the engine's PoolImage with its id. */
export interface SnapshotPool {
  poolId: number;
  windowSeconds: number | null;
  buckets: readonly BucketImage[];
}

export interface SnapshotSummary {
  seq: number;
  pools: number;
  runs: number;
  /** Values the pools stand for (counted runs count every copy). */
  values: number;
  bytes: number;
}

/** The arrays a run writes, in order: its values, then (counted) its cumulative counts. */
function arraysOf(run: StoredRun): Float64Array[] {
  return run.ends === null ? [run.values] : [run.values, run.ends];
}

/**
 * The snapshot as a sequence of positioned writes: data first (CRC'd chunk by
 * chunk as it is produced), then the index, then the header at offset 0.
 */
export function* snapshotWritesV2(
  seq: number,
  pools: readonly SnapshotPool[],
  chunkBytes: number,
): Generator<PositionedWrite, SnapshotSummary> {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`snapshot seq must be a non-negative safe integer, got ${seq}`);
  let bucketCount = 0;
  let runCount = 0;
  for (let i = 0; i < pools.length; i++) {
    const id = pools[i].poolId;
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`poolId must be a non-negative safe integer, got ${id}`);
    if (i > 0 && id <= pools[i - 1].poolId) throw new RangeError('snapshot pools must be in strictly ascending poolId order');
    for (const bucket of pools[i].buckets) {
      if (bucket.runs.length === 0) throw new RangeError(`pool ${id}: a bucket without runs`);
      bucketCount++;
      runCount += bucket.runs.length;
    }
  }

  const index = new Uint8Array(pools.length * POOL_ENTRY_BYTES + bucketCount * BUCKET_ENTRY_BYTES + runCount * RUN_ENTRY_BYTES);
  const indexView = viewOf(index);
  let bucketSlot = pools.length * POOL_ENTRY_BYTES;
  let runSlot = bucketSlot + bucketCount * BUCKET_ENTRY_BYTES;
  let position = SNAPSHOT_HEADER_BYTES;
  let batch: Uint8Array[] = [];
  let batchStart = position;
  let batchBytes = 0;
  let values = 0;

  for (let p = 0; p < pools.length; p++) {
    const pool = pools[p];
    const dataOffset = position;
    let crc = 0;
    let poolValues = 0;
    let poolRuns = 0;
    for (const bucket of pool.buckets) {
      for (const run of bucket.runs) {
        for (const array of arraysOf(run)) {
          const bytes = bytesOf(array);
          for (let at = 0; at < bytes.length; at += chunkBytes) {
            const chunk = bytes.subarray(at, Math.min(bytes.length, at + chunkBytes));
            crc = crc32cOf(chunk, crc);
            batch.push(chunk);
            batchBytes += chunk.length;
            position += chunk.length;
            if (batchBytes >= chunkBytes || batch.length >= 1024) {
              yield { chunks: batch, position: batchStart };
              batch = [];
              batchStart = position;
              batchBytes = 0;
            }
          }
        }
        indexView.setUint32(runSlot, run.ends === null ? PLAIN : COUNTED, true);
        indexView.setUint32(runSlot + 4, 0, true);
        setU64(indexView, runSlot + 8, run.count);
        setU64(indexView, runSlot + 16, run.values.length);
        setU64(indexView, runSlot + 24, run.distinct);
        runSlot += RUN_ENTRY_BYTES;
        poolValues += run.count;
      }
      setU64(indexView, bucketSlot, bucket.startMs);
      setU64(indexView, bucketSlot + 8, bucket.endMs);
      indexView.setUint32(bucketSlot + 16, bucket.runs.length, true);
      indexView.setUint32(bucketSlot + 20, 0, true);
      bucketSlot += BUCKET_ENTRY_BYTES;
      poolRuns += bucket.runs.length;
    }
    const entry = p * POOL_ENTRY_BYTES;
    setU64(indexView, entry, pool.poolId);
    setU64(indexView, entry + 8, dataOffset);
    setU64(indexView, entry + 16, poolValues);
    setU64(indexView, entry + 24, position - dataOffset);
    indexView.setUint32(entry + 32, pool.windowSeconds ?? 0, true);
    indexView.setUint32(entry + 36, pool.buckets.length, true);
    indexView.setUint32(entry + 40, poolRuns, true);
    indexView.setUint32(entry + 44, maskCrc(crc), true);
    values += poolValues;
  }
  if (batch.length > 0) yield { chunks: batch, position: batchStart };

  const indexOffset = position;
  if (index.length > 0) yield { chunks: [index], position: indexOffset };
  const header = encodeSnapshotHeader({
    version: SNAPSHOT_VERSION,
    seq,
    poolCount: pools.length,
    runCount,
    indexOffset,
    indexLength: index.length,
    indexCrc: maskCrc(crc32cOf(index)),
  });
  yield { chunks: [header], position: 0 };
  return { seq, pools: pools.length, runs: runCount, values, bytes: indexOffset + index.length };
}

interface RunEntry {
  counted: boolean;
  count: number;
  length: number;
  distinct: number;
}

interface PoolEntry {
  poolId: number;
  dataOffset: number;
  valueCount: number;
  crc: number;
  windowSeconds: number | null;
  buckets: { startMs: number; endMs: number; runs: RunEntry[] }[];
}

function decodeIndex(h: SnapshotHeader, index: Uint8Array): PoolEntry[] {
  if (h.indexCrc !== maskCrc(crc32cOf(index))) throw new SnapshotInvalid(h.indexOffset, 'index CRC mismatch');
  const view = viewOf(index);
  const fail = (slot: number, reason: string): never => {
    throw new SnapshotInvalid(h.indexOffset + slot, reason);
  };
  if (h.poolCount * POOL_ENTRY_BYTES > index.length) fail(0, 'index shorter than its pool table');
  let bucketSlot = h.poolCount * POOL_ENTRY_BYTES;
  let totalBuckets = 0;
  for (let p = 0; p < h.poolCount; p++) totalBuckets += view.getUint32(p * POOL_ENTRY_BYTES + 36, true);
  if (index.length !== h.poolCount * POOL_ENTRY_BYTES + totalBuckets * BUCKET_ENTRY_BYTES + h.runCount * RUN_ENTRY_BYTES) {
    throw new SnapshotInvalid(48, 'index length does not match pool, bucket and run counts');
  }
  let runSlot = bucketSlot + totalBuckets * BUCKET_ENTRY_BYTES;
  let expectedOffset = SNAPSHOT_HEADER_BYTES;
  const entries: PoolEntry[] = [];
  for (let p = 0; p < h.poolCount; p++) {
    const at = p * POOL_ENTRY_BYTES;
    const poolId = getU64(view, at);
    if (p > 0 && poolId <= entries[p - 1].poolId) fail(at, 'pool ids not strictly ascending');
    if (getU64(view, at + 8) !== expectedOffset) fail(at + 8, 'pool data offset out of place');
    const window = view.getUint32(at + 32, true);
    if (window !== 0 && !isValidWindowSeconds(window)) fail(at + 32, `bad window ${window}`);
    const bucketCount = view.getUint32(at + 36, true);
    const runCount = view.getUint32(at + 40, true);
    const entry: PoolEntry = {
      poolId,
      dataOffset: expectedOffset,
      valueCount: getU64(view, at + 16),
      crc: view.getUint32(at + 44, true),
      windowSeconds: window === 0 ? null : window,
      buckets: [],
    };
    let values = 0;
    let bytes = 0;
    let runs = 0;
    for (let b = 0; b < bucketCount; b++, bucketSlot += BUCKET_ENTRY_BYTES) {
      const startMs = getU64(view, bucketSlot);
      const endMs = getU64(view, bucketSlot + 8);
      const bucketRuns = view.getUint32(bucketSlot + 16, true);
      if (!(startMs < endMs) || bucketRuns === 0 || view.getUint32(bucketSlot + 20, true) !== 0) fail(bucketSlot, 'bad bucket');
      const bucket = { startMs, endMs, runs: [] as RunEntry[] };
      for (let r = 0; r < bucketRuns; r++, runSlot += RUN_ENTRY_BYTES) {
        if (runSlot + RUN_ENTRY_BYTES > index.length) fail(runSlot, 'run table overflows the index');
        const encoding = view.getUint32(runSlot, true);
        const run: RunEntry = {
          counted: encoding === COUNTED,
          count: getU64(view, runSlot + 8),
          length: getU64(view, runSlot + 16),
          distinct: getU64(view, runSlot + 24),
        };
        const plainOk = encoding === PLAIN && run.length === run.count && run.distinct >= 1 && run.distinct <= run.length;
        const countedOk = encoding === COUNTED && run.length >= 1 && run.length <= run.count && run.distinct === run.length;
        if (!(plainOk || countedOk) || view.getUint32(runSlot + 4, true) !== 0) fail(runSlot, 'bad run entry');
        bucket.runs.push(run);
        values += run.count;
        bytes += run.length * 8 * (run.counted ? 2 : 1);
        runs++;
      }
      entry.buckets.push(bucket);
    }
    if (runs !== runCount) fail(at + 40, 'run count does not match the buckets');
    if (values !== entry.valueCount) fail(at + 16, 'runs do not add up to the value count');
    if (bytes !== getU64(view, at + 24)) fail(at + 24, 'runs do not add up to the data length');
    expectedOffset += bytes;
    entries.push(entry);
  }
  if (runSlot !== index.length) fail(runSlot, 'run table length mismatch');
  if (expectedOffset !== h.indexOffset) throw new SnapshotInvalid(40, 'index offset does not follow the pool data');
  return entries;
}

/** Reads and verifies (index, every pool's CRC) the pools of a version 2 snapshot whose header and index were read. */
export async function readPoolsV2(
  file: FileHandle,
  h: SnapshotHeader,
  index: Uint8Array,
): Promise<{ pools: SnapshotPool[]; values: number }> {
  const entries = decodeIndex(h, index);
  const pieces: DataPiece[] = [];
  for (const entry of entries) {
    let at = entry.dataOffset;
    for (const bucket of entry.buckets) {
      for (const run of bucket.runs) {
        for (let k = run.counted ? 2 : 1; k > 0; k--) {
          pieces.push({ fileAt: at, length: run.length });
          at += run.length * 8;
        }
      }
    }
  }
  const arrays = await readPieces(file, pieces, allocateRun);
  const pools: SnapshotPool[] = [];
  let values = 0;
  let next = 0;
  for (const entry of entries) {
    let pieceCount = 0;
    for (const bucket of entry.buckets) for (const run of bucket.runs) pieceCount += run.counted ? 2 : 1;
    let crc = 0;
    for (let i = next; i < next + pieceCount; i++) crc = crc32cOf(bytesOf(arrays[i]), crc);
    if (maskCrc(crc) !== entry.crc) throw new SnapshotInvalid(entry.dataOffset, `CRC mismatch in the data of pool ${entry.poolId}`);
    const buckets: BucketImage[] = entry.buckets.map((bucket) => ({
      startMs: bucket.startMs,
      endMs: bucket.endMs,
      runs: bucket.runs.map((run): StoredRun => {
        // CRC-verified above; written from the engine's runs.
        const runValues = trustSorted(arrays[next++]);
        if (!run.counted) return { values: runValues, ends: null, count: run.count, distinct: run.distinct };
        const ends = arrays[next++];
        if (ends[ends.length - 1] !== run.count) {
          throw new SnapshotInvalid(entry.dataOffset, `a counted run of pool ${entry.poolId} does not end at its count ${run.count}`);
        }
        return countedRun(runValues, ends);
      }),
    }));
    pools.push({ poolId: entry.poolId, windowSeconds: entry.windowSeconds, buckets });
    values += entry.valueCount;
  }
  return { pools, values };
}
