// Snapshot format version 1, read only (docs/storage-format.md): every pool
// as plain runs of float64, no windows, no arrival times. Data directories
// written before version 2 still open; their pools come back without a
// window, their values counted as arriving when they are loaded, and the
// next snapshot is written as version 2.

import { allocateRun, type SortedRun } from '../core/sorted-run.js';
import { bytesOf, crc32cOf, getU64, maskCrc, viewOf } from './binary.js';
import type { FileHandle } from './file-layer.js';
import { readPieces, SNAPSHOT_HEADER_BYTES, SnapshotInvalid, type DataPiece, type SnapshotHeader } from './snapshot-header.js';

export const POOL_ENTRY_BYTES_V1 = 32;
export const RUN_ENTRY_BYTES_V1 = 8;

/** A version 1 pool: plain sorted runs. */
export interface SnapshotPoolV1 {
  poolId: number;
  runs: readonly SortedRun[];
}

interface PoolEntry {
  poolId: number;
  dataOffset: number;
  valueCount: number;
  runLengths: number[];
  crc: number;
}

function decodeIndex(h: SnapshotHeader, index: Uint8Array): PoolEntry[] {
  if (h.indexLength !== h.poolCount * POOL_ENTRY_BYTES_V1 + h.runCount * RUN_ENTRY_BYTES_V1)
    throw new SnapshotInvalid(48, 'index length does not match pool and run counts');
  if (h.indexCrc !== maskCrc(crc32cOf(index))) throw new SnapshotInvalid(h.indexOffset, 'index CRC mismatch');
  const view = viewOf(index);
  const entries: PoolEntry[] = [];
  let runSlot = h.poolCount * POOL_ENTRY_BYTES_V1;
  let expectedOffset = SNAPSHOT_HEADER_BYTES;
  for (let p = 0; p < h.poolCount; p++) {
    const at = p * POOL_ENTRY_BYTES_V1;
    const where = h.indexOffset + at;
    const poolId = getU64(view, at);
    const dataOffset = getU64(view, at + 8);
    const valueCount = getU64(view, at + 16);
    const runCount = view.getUint32(at + 24, true);
    if (poolId < 0 || (p > 0 && poolId <= entries[p - 1].poolId)) throw new SnapshotInvalid(where, 'pool ids not strictly ascending');
    if (dataOffset !== expectedOffset) throw new SnapshotInvalid(where + 8, 'pool data offset out of place');
    if (runCount === 0 || runSlot + runCount * RUN_ENTRY_BYTES_V1 > index.length) throw new SnapshotInvalid(where + 24, 'bad run count');
    const runLengths: number[] = [];
    let sum = 0;
    for (let r = 0; r < runCount; r++, runSlot += RUN_ENTRY_BYTES_V1) {
      const len = getU64(view, runSlot);
      if (len < 1) throw new SnapshotInvalid(h.indexOffset + runSlot, 'bad run length');
      runLengths.push(len);
      sum += len;
    }
    if (sum !== valueCount) throw new SnapshotInvalid(where + 16, 'run lengths do not add up to the value count');
    entries.push({ poolId, dataOffset, valueCount, runLengths, crc: view.getUint32(at + 28, true) });
    expectedOffset += valueCount * 8;
  }
  if (runSlot !== index.length) throw new SnapshotInvalid(h.indexOffset, 'run table length mismatch');
  if (expectedOffset !== h.indexOffset) throw new SnapshotInvalid(40, 'index offset does not follow the pool data');
  return entries;
}

/** Reads and verifies (index, every pool's CRC) the pools of a version 1 snapshot whose header and index were read. */
export async function readPoolsV1(
  file: FileHandle,
  h: SnapshotHeader,
  index: Uint8Array,
): Promise<{ pools: SnapshotPoolV1[]; values: number }> {
  const entries = decodeIndex(h, index);
  const pieces: DataPiece[] = [];
  for (const entry of entries) {
    let at = entry.dataOffset;
    for (const length of entry.runLengths) {
      pieces.push({ fileAt: at, length });
      at += length * 8;
    }
  }
  const arrays = await readPieces(file, pieces, allocateRun);
  const pools: SnapshotPoolV1[] = [];
  let values = 0;
  let next = 0;
  for (const entry of entries) {
    // CRC-verified here before anything uses them; written from sorted runs.
    const runs = arrays.slice(next, next + entry.runLengths.length) as SortedRun[];
    next += entry.runLengths.length;
    let crc = 0;
    for (const run of runs) crc = crc32cOf(bytesOf(run), crc);
    if (maskCrc(crc) !== entry.crc) throw new SnapshotInvalid(entry.dataOffset, `CRC mismatch in the data of pool ${entry.poolId}`);
    pools.push({ poolId: entry.poolId, runs });
    values += entry.valueCount;
  }
  return { pools, values };
}
