// Snapshots (docs/storage-format.md has the byte tables). A snapshot
// `snapshot-<seq as 16 hex digits>.bin` holds every pool as of log sequence
// number `seq`:
//
//   header (64 bytes) | pool data (f64 LE, 8-byte aligned) | index
//
// The writer writes version 2 (snapshot-v2.ts: windows, arrival-time buckets,
// plain and counted runs); version 1 files (snapshot-v1.ts: plain runs only)
// are still read. Every value sits at an 8-aligned offset, so the file can be
// mapped and viewed in place, and loading reads the bytes into buffers whose
// slices become the runs.
//
// One encoder (`snapshotWrites`, a generator of positioned writes) feeds three
// drivers: async through a FileLayer (the default builder), sync through node:fs
// (`writeSnapshotFileSync`, for a worker thread) and in memory (`encodeSnapshot`).

import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { writevFullySync, type FileLayer } from './file-layer.js';
import { decodeSnapshotHeader, readFully, SNAPSHOT_HEADER_BYTES, SnapshotInvalid, type PositionedWrite } from './snapshot-header.js';
import { readPoolsV1, type SnapshotPoolV1 } from './snapshot-v1.js';
import { readPoolsV2, snapshotWritesV2, type SnapshotPool, type SnapshotSummary } from './snapshot-v2.js';

export {
  decodeSnapshotHeader,
  encodeSnapshotHeader,
  parseSnapshotFileName,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  SNAPSHOT_VERSION,
  SNAPSHOT_VERSION_1,
  snapshotFileName,
  SnapshotInvalid,
  type PositionedWrite,
  type SnapshotHeader,
} from './snapshot-header.js';
export { BUCKET_ENTRY_BYTES, POOL_ENTRY_BYTES, RUN_ENTRY_BYTES, type SnapshotPool, type SnapshotSummary } from './snapshot-v2.js';
export { POOL_ENTRY_BYTES_V1, RUN_ENTRY_BYTES_V1, type SnapshotPoolV1 } from './snapshot-v1.js';

/**
 * Writes a complete snapshot of `pools` at `seq` to `path` and makes it durable
 * (fdatasync) before resolving. The store does the rest (rename, directory
 * fsync, cleanup). Pluggable so a piscina worker can do the writing: see
 * `writeSnapshotFileSync`. Runs are shared, never transferred: they are the
 * engine's live, immutable arrays.
 */
export type SnapshotBuilder = (path: string, seq: number, pools: readonly SnapshotPool[]) => Promise<unknown>;

/** Bytes per write and per CRC call: small enough not to hold the event loop for long. */
const DEFAULT_CHUNK_BYTES = 8 << 20;

/** The snapshot (version 2) as positioned writes: data, index, then the header at offset 0. */
export function snapshotWrites(
  seq: number,
  pools: readonly SnapshotPool[],
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Generator<PositionedWrite, SnapshotSummary> {
  return snapshotWritesV2(seq, pools, chunkBytes);
}

/** A verified snapshot: version 2 pools as the engine restores them, or version 1's plain runs. */
export type LoadedSnapshot = { seq: number; values: number; bytes: number } & (
  { version: 2; pools: SnapshotPool[] } | { version: 1; pools: SnapshotPoolV1[] }
);

/**
 * Reads and verifies a whole snapshot (header, index and every pool's CRC)
 * into runs viewed in place on the bytes read; throws SnapshotInvalid naming
 * the offset. Nothing is handed to an engine until all of it has verified.
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
    if (h.version === 1) return { version: 1, seq: h.seq, bytes: size, ...(await readPoolsV1(file, h, index)) };
    return { version: 2, seq: h.seq, bytes: size, ...(await readPoolsV2(file, h, index)) };
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
