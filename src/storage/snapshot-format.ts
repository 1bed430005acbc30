// Snapshot format v1 (docs/storage-format.md has the byte tables). A snapshot
// `snapshot-<seq as 16 hex digits>.bin` holds every pool as of log sequence
// number `seq`:
//
//   header (64 bytes) | pool data (f64 LE, 8-byte aligned) | index
//
// Each pool is stored as its engine runs back to back (runs are immutable, so a
// snapshot needs no merge); the index at the end lists pools (id, data offset,
// value count, run count, CRC32C of the pool's bytes) and then every run
// length. The index goes last because the writer learns the CRCs while it
// streams the data; the header, written last of all at offset 0, points at it.
// Every value sits at an 8-aligned offset, so the file can be mapped and viewed
// in place, and loading reads the bytes into buffers whose slices become the runs.
//
// One encoder (`snapshotWrites`, a generator of positioned writes) feeds three
// drivers: async through a FileLayer (the default builder), sync through node:fs
// (`writeSnapshotFileSync`, for a worker thread) and in memory (`encodeSnapshot`).

import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { allocateRun, type SortedRun } from '../core/sorted-run.js';
import { asciiBytes, bytesEqual, bytesOf, crc32cOf, getU64, hex16, maskCrc, setU64, viewOf } from './binary.js';
import { writevFullySync, type FileHandle, type FileLayer } from './file-layer.js';

export const SNAPSHOT_MAGIC = asciiBytes('POOLQSNP');
export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 64;
export const POOL_ENTRY_BYTES = 32;
export const RUN_ENTRY_BYTES = 8;

/** A pool as the snapshot sees it: its runs, each sorted, in the engine's order. */
export interface SnapshotPool {
  poolId: number;
  runs: readonly SortedRun[];
}

export interface SnapshotSummary {
  seq: number;
  pools: number;
  runs: number;
  values: number;
  bytes: number;
}

/**
 * Writes a complete snapshot of `pools` at `seq` to `path` and makes it durable
 * (fdatasync) before resolving. The store does the rest (rename, directory
 * fsync, cleanup). Pluggable so a piscina worker can do the writing: see
 * `writeSnapshotFileSync`. Runs are shared, never transferred: they are the
 * engine's live, immutable arrays.
 */
export type SnapshotBuilder = (path: string, seq: number, pools: readonly SnapshotPool[]) => Promise<unknown>;

export interface PositionedWrite {
  chunks: Uint8Array[];
  position: number;
}

const SNAPSHOT_NAME = /^snapshot-([0-9a-f]{16})\.bin$/;

export function snapshotFileName(seq: number): string {
  return `snapshot-${hex16(seq)}.bin`;
}

export function parseSnapshotFileName(name: string): number | null {
  const m = SNAPSHOT_NAME.exec(name);
  if (m === null) return null;
  const n = Number.parseInt(m[1], 16);
  return Number.isSafeInteger(n) ? n : null;
}

/** Bytes per write and per CRC call: small enough not to hold the event loop for long. */
const DEFAULT_CHUNK_BYTES = 8 << 20;
const MAX_CHUNKS_PER_WRITE = 1024;

/**
 * The snapshot as a sequence of positioned writes: data first (CRC'd chunk by
 * chunk as it is produced), then the index, then the header at offset 0.
 * Chunks are views of the runs themselves (zero copy).
 */
export function* snapshotWrites(
  seq: number,
  pools: readonly SnapshotPool[],
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Generator<PositionedWrite, SnapshotSummary> {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`snapshot seq must be a non-negative safe integer, got ${seq}`);
  const kept = pools.filter((pool) => pool.runs.some((run) => run.length > 0));
  let runCount = 0;
  for (let i = 0; i < kept.length; i++) {
    const id = kept[i].poolId;
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`poolId must be a non-negative safe integer, got ${id}`);
    if (i > 0 && id <= kept[i - 1].poolId) throw new RangeError('snapshot pools must be in strictly ascending poolId order');
    for (const run of kept[i].runs) if (run.length > 0) runCount++;
  }

  const index = new Uint8Array(kept.length * POOL_ENTRY_BYTES + runCount * RUN_ENTRY_BYTES);
  const indexView = viewOf(index);
  let runSlot = kept.length * POOL_ENTRY_BYTES;
  let position = SNAPSHOT_HEADER_BYTES;
  let batch: Uint8Array[] = [];
  let batchStart = position;
  let batchBytes = 0;
  let values = 0;

  for (let p = 0; p < kept.length; p++) {
    const pool = kept[p];
    const dataOffset = position;
    let crc = 0;
    let poolValues = 0;
    let poolRuns = 0;
    for (const run of pool.runs) {
      if (run.length === 0) continue;
      const bytes = bytesOf(run);
      for (let at = 0; at < bytes.length; at += chunkBytes) {
        const chunk = bytes.subarray(at, Math.min(bytes.length, at + chunkBytes));
        crc = crc32cOf(chunk, crc);
        batch.push(chunk);
        batchBytes += chunk.length;
        position += chunk.length;
        if (batchBytes >= chunkBytes || batch.length >= MAX_CHUNKS_PER_WRITE) {
          yield { chunks: batch, position: batchStart };
          batch = [];
          batchStart = position;
          batchBytes = 0;
        }
      }
      setU64(indexView, runSlot, run.length);
      runSlot += RUN_ENTRY_BYTES;
      poolValues += run.length;
      poolRuns++;
    }
    const entry = p * POOL_ENTRY_BYTES;
    setU64(indexView, entry, pool.poolId);
    setU64(indexView, entry + 8, dataOffset);
    setU64(indexView, entry + 16, poolValues);
    indexView.setUint32(entry + 24, poolRuns, true);
    indexView.setUint32(entry + 28, maskCrc(crc), true);
    values += poolValues;
  }
  if (batch.length > 0) yield { chunks: batch, position: batchStart };

  const indexOffset = position;
  if (index.length > 0) yield { chunks: [index], position: indexOffset };
  const header = encodeSnapshotHeader({
    seq,
    poolCount: kept.length,
    runCount,
    indexOffset,
    indexLength: index.length,
    indexCrc: maskCrc(crc32cOf(index)),
  });
  yield { chunks: [header], position: 0 };
  return { seq, pools: kept.length, runs: runCount, values, bytes: indexOffset + index.length };
}

export interface SnapshotHeader {
  seq: number;
  poolCount: number;
  runCount: number;
  indexOffset: number;
  indexLength: number;
  /** Masked CRC32C of the index bytes. */
  indexCrc: number;
}

export function encodeSnapshotHeader(h: SnapshotHeader): Uint8Array {
  const bytes = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const view = viewOf(bytes);
  bytes.set(SNAPSHOT_MAGIC, 0);
  view.setUint32(8, SNAPSHOT_VERSION, true);
  view.setUint32(12, SNAPSHOT_HEADER_BYTES, true);
  setU64(view, 16, h.seq);
  setU64(view, 24, h.poolCount);
  setU64(view, 32, h.runCount);
  setU64(view, 40, h.indexOffset);
  setU64(view, 48, h.indexLength);
  view.setUint32(56, h.indexCrc, true);
  view.setUint32(60, maskCrc(crc32cOf(bytes.subarray(0, 60))), true);
  return bytes;
}

/** Thrown by the readers; recovery turns it into a fallback or a StorageCorruptionError. */
export class SnapshotInvalid extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${reason} (byte offset ${offset})`);
    this.name = 'SnapshotInvalid';
  }
}

export function decodeSnapshotHeader(bytes: Uint8Array, fileSize: number): SnapshotHeader {
  if (bytes.length < SNAPSHOT_HEADER_BYTES || fileSize < SNAPSHOT_HEADER_BYTES)
    throw new SnapshotInvalid(0, `file is ${fileSize} bytes, shorter than the header`);
  const view = viewOf(bytes);
  if (view.getUint32(60, true) !== maskCrc(crc32cOf(bytes.subarray(0, 60)))) throw new SnapshotInvalid(60, 'header CRC mismatch');
  if (!bytesEqual(bytes.subarray(0, 8), SNAPSHOT_MAGIC)) throw new SnapshotInvalid(0, 'bad magic');
  const version = view.getUint32(8, true);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotInvalid(8, `unsupported snapshot version ${version}`);
  if (view.getUint32(12, true) !== SNAPSHOT_HEADER_BYTES) throw new SnapshotInvalid(12, 'bad header length');
  const h: SnapshotHeader = {
    seq: getU64(view, 16),
    poolCount: getU64(view, 24),
    runCount: getU64(view, 32),
    indexOffset: getU64(view, 40),
    indexLength: getU64(view, 48),
    indexCrc: view.getUint32(56, true),
  };
  if (h.seq < 0 || h.poolCount < 0 || h.runCount < 0 || h.indexOffset < SNAPSHOT_HEADER_BYTES || h.indexOffset % 8 !== 0) {
    throw new SnapshotInvalid(16, 'header fields out of range');
  }
  if (h.indexLength !== h.poolCount * POOL_ENTRY_BYTES + h.runCount * RUN_ENTRY_BYTES)
    throw new SnapshotInvalid(48, 'index length does not match pool and run counts');
  if (h.indexOffset + h.indexLength !== fileSize) {
    throw new SnapshotInvalid(
      Math.min(fileSize, h.indexOffset + h.indexLength),
      `file is ${fileSize} bytes but the header says ${h.indexOffset + h.indexLength} (truncated or extended)`,
    );
  }
  return h;
}

interface PoolEntry {
  poolId: number;
  dataOffset: number;
  valueCount: number;
  runLengths: number[];
  crc: number;
}

function decodeIndex(h: SnapshotHeader, index: Uint8Array): PoolEntry[] {
  if (h.indexCrc !== maskCrc(crc32cOf(index))) throw new SnapshotInvalid(h.indexOffset, 'index CRC mismatch');
  const view = viewOf(index);
  const entries: PoolEntry[] = [];
  let runSlot = h.poolCount * POOL_ENTRY_BYTES;
  let expectedOffset = SNAPSHOT_HEADER_BYTES;
  for (let p = 0; p < h.poolCount; p++) {
    const at = p * POOL_ENTRY_BYTES;
    const where = h.indexOffset + at;
    const poolId = getU64(view, at);
    const dataOffset = getU64(view, at + 8);
    const valueCount = getU64(view, at + 16);
    const runCount = view.getUint32(at + 24, true);
    if (poolId < 0 || (p > 0 && poolId <= entries[p - 1].poolId)) throw new SnapshotInvalid(where, 'pool ids not strictly ascending');
    if (dataOffset !== expectedOffset) throw new SnapshotInvalid(where + 8, 'pool data offset out of place');
    if (runCount === 0 || runSlot + runCount * RUN_ENTRY_BYTES > index.length) throw new SnapshotInvalid(where + 24, 'bad run count');
    const runLengths: number[] = [];
    let sum = 0;
    for (let r = 0; r < runCount; r++, runSlot += RUN_ENTRY_BYTES) {
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

export interface LoadedSnapshot {
  seq: number;
  pools: SnapshotPool[];
  values: number;
  bytes: number;
}

async function readFully(file: FileHandle, into: Uint8Array, position: number): Promise<boolean> {
  return (await file.read(into, position)) === into.length;
}

/** Runs up to this size are read into shared slabs; larger ones get their own buffer. */
const SLAB_RUN_MAX_BYTES = 4 << 20;
/** Consecutive small runs are read together into one slab of at most this size. */
const SLAB_BYTES = 64 << 20;

interface ReadGroup {
  fileAt: number;
  bytes: number;
  /** Where each run of the group goes: pool index, run length, byte offset in the group. */
  runs: { pool: number; length: number; offset: number }[];
}

/**
 * Groups the runs, in file order, into reads: every large run alone, and
 * consecutive small runs together up to SLAB_BYTES. One read per group, into
 * one buffer whose slices become the runs. Why: with a buffer per run, loading
 * was dominated by first writes to fresh 4 KiB pages; large slabs get huge
 * pages and load several times faster (bench:storage). The price: a slab's
 * memory is freed only when every run in it has been merged away or deleted.
 */
function planReads(entries: readonly PoolEntry[]): ReadGroup[] {
  const groups: ReadGroup[] = [];
  let open: ReadGroup | null = null;
  entries.forEach((entry, pool) => {
    let at = entry.dataOffset;
    for (const length of entry.runLengths) {
      const bytes = length * 8;
      if (bytes > SLAB_RUN_MAX_BYTES) {
        open = null;
        groups.push({ fileAt: at, bytes, runs: [{ pool, length, offset: 0 }] });
      } else {
        if (open === null || open.bytes + bytes > SLAB_BYTES) {
          open = { fileAt: at, bytes: 0, runs: [] };
          groups.push(open);
        }
        open.runs.push({ pool, length, offset: open.bytes });
        open.bytes += bytes;
      }
      at += bytes;
    }
  });
  return groups;
}

/**
 * Reads and verifies a whole snapshot (header, index and every pool's CRC)
 * into runs viewed in place on the bytes read (planReads); throws
 * SnapshotInvalid naming the offset. Nothing is handed to an engine until all
 * of it has verified.
 */
export async function readSnapshotFile(files: FileLayer, path: string): Promise<LoadedSnapshot> {
  const file = await files.open(path, 'read');
  try {
    const size = await file.size();
    const headerBytes = new Uint8Array(SNAPSHOT_HEADER_BYTES);
    if (!(await readFully(file, headerBytes, 0))) throw new SnapshotInvalid(0, `file is ${size} bytes, shorter than the header`);
    const h = decodeSnapshotHeader(headerBytes, size);
    const index = new Uint8Array(h.indexLength);
    if (!(await readFully(file, index, h.indexOffset))) throw new SnapshotInvalid(h.indexOffset, 'index truncated');
    const entries = decodeIndex(h, index);
    const runsOfPool: SortedRun[][] = entries.map(() => []);
    for (const group of planReads(entries)) {
      const buffer = group.runs.length === 1 ? allocateRun(group.runs[0].length).buffer : new SharedArrayBuffer(group.bytes);
      if (!(await readFully(file, new Uint8Array(buffer, 0, group.bytes), group.fileAt))) {
        throw new SnapshotInvalid(group.fileAt, 'pool data truncated');
      }
      for (const run of group.runs) {
        // CRC-verified below before anything uses it; written from a SortedRun.
        runsOfPool[run.pool].push(new Float64Array(buffer, run.offset, run.length) as SortedRun);
      }
    }
    const pools: SnapshotPool[] = [];
    let values = 0;
    entries.forEach((entry, i) => {
      let crc = 0;
      for (const run of runsOfPool[i]) crc = crc32cOf(bytesOf(run), crc);
      if (maskCrc(crc) !== entry.crc) throw new SnapshotInvalid(entry.dataOffset, `CRC mismatch in the data of pool ${entry.poolId}`);
      pools.push({ poolId: entry.poolId, runs: runsOfPool[i] });
      values += entry.valueCount;
    });
    return { seq: h.seq, pools, values, bytes: size };
  } finally {
    await file.close();
  }
}

/** The snapshot as one byte array (tests and golden files). */
export function encodeSnapshot(seq: number, pools: readonly SnapshotPool[]): Uint8Array {
  const writes: PositionedWrite[] = [];
  const gen = snapshotWrites(seq, pools);
  let step = gen.next();
  while (!step.done) {
    writes.push(step.value);
    step = gen.next();
  }
  const out = new Uint8Array(step.value.bytes);
  for (const w of writes) {
    let at = w.position;
    for (const chunk of w.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
  }
  return out;
}

/** Writes and fdatasyncs a snapshot through a FileLayer, yielding to the event loop between chunks. */
export async function writeSnapshotFile(
  files: FileLayer,
  path: string,
  seq: number,
  pools: readonly SnapshotPool[],
): Promise<SnapshotSummary> {
  const file = await files.open(path, 'create');
  try {
    const gen = snapshotWrites(seq, pools);
    let step = gen.next();
    while (!step.done) {
      await file.write(step.value.chunks, step.value.position);
      step = gen.next();
    }
    await file.datasync();
    return step.value;
  } finally {
    await file.close();
  }
}

/**
 * The same, synchronously through node:fs: for a worker thread, where blocking
 * is the point. Writes `path` and fdatasyncs it; the caller renames it into place.
 */
export function writeSnapshotFileSync(
  path: string,
  seq: number,
  pools: readonly SnapshotPool[],
  /** Called once every byte is written, before the fdatasync (bench:storage times the two apart). */
  onWritten?: () => void,
): SnapshotSummary {
  const fd = openSync(path, 'w');
  try {
    const gen = snapshotWrites(seq, pools);
    let step = gen.next();
    while (!step.done) {
      writevFullySync(fd, step.value.chunks, step.value.position);
      step = gen.next();
    }
    onWritten?.();
    fdatasyncSync(fd);
    return step.value;
  } finally {
    closeSync(fd);
  }
}
