// What every snapshot version shares (docs/storage-format.md): the file name,
// the 64-byte header, the error readers throw, and reading pool data in few
// large reads. The versions differ in their index and what their data holds
// (snapshot-v1.ts, snapshot-v2.ts); snapshot-format.ts is the public face.

import { asciiBytes, bytesEqual, crc32cOf, getU64, hex16, maskCrc, setU64, viewOf } from './binary.js';
import type { FileHandle } from './file-layer.js';

export const SNAPSHOT_MAGIC = asciiBytes('POOLQSNP');
/** The version the writer writes. */
export const SNAPSHOT_VERSION = 2;
/** Read only: data directories written before run encodings and windows. */
export const SNAPSHOT_VERSION_1 = 1;
export const SNAPSHOT_HEADER_BYTES = 64;

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

export interface PositionedWrite {
  chunks: Uint8Array[];
  position: number;
}

export interface SnapshotHeader {
  version: number;
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
  view.setUint32(8, h.version, true);
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

/** Checks what the header can check alone; each version then checks its index length. */
export function decodeSnapshotHeader(bytes: Uint8Array, fileSize: number): SnapshotHeader {
  if (bytes.length < SNAPSHOT_HEADER_BYTES || fileSize < SNAPSHOT_HEADER_BYTES)
    throw new SnapshotInvalid(0, `file is ${fileSize} bytes, shorter than the header`);
  const view = viewOf(bytes);
  if (view.getUint32(60, true) !== maskCrc(crc32cOf(bytes.subarray(0, 60)))) throw new SnapshotInvalid(60, 'header CRC mismatch');
  if (!bytesEqual(bytes.subarray(0, 8), SNAPSHOT_MAGIC)) throw new SnapshotInvalid(0, 'bad magic');
  const version = view.getUint32(8, true);
  if (version !== SNAPSHOT_VERSION && version !== SNAPSHOT_VERSION_1)
    throw new SnapshotInvalid(8, `unsupported snapshot version ${version}`);
  if (view.getUint32(12, true) !== SNAPSHOT_HEADER_BYTES) throw new SnapshotInvalid(12, 'bad header length');
  const h: SnapshotHeader = {
    version,
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
  if (h.indexOffset + h.indexLength !== fileSize) {
    throw new SnapshotInvalid(
      Math.min(fileSize, h.indexOffset + h.indexLength),
      `file is ${fileSize} bytes but the header says ${h.indexOffset + h.indexLength} (truncated or extended)`,
    );
  }
  return h;
}

export async function readFully(file: FileHandle, into: Uint8Array, position: number): Promise<boolean> {
  return (await file.read(into, position)) === into.length;
}

/** One float64 array of pool data: where it is in the file and how long it is. */
export interface DataPiece {
  fileAt: number;
  length: number;
}

/** Pieces up to this size are read into shared slabs; larger ones get their own buffer. */
const SLAB_PIECE_MAX_BYTES = 4 << 20;
/** Consecutive small pieces are read together into one slab of at most this size. */
const SLAB_BYTES = 64 << 20;

/**
 * Reads pieces (in file order, back to back) into float64 arrays: every large
 * piece alone into storage of its own (shared from 32 Ki values, like a run),
 * consecutive small ones together into one shared slab whose slices they
 * become. Why: with a buffer per run, loading was dominated by first writes to
 * fresh 4 KiB pages, and large reads load several times faster
 * (bench:storage). The price: a slab's memory is freed only when every run in
 * it has been merged away or deleted.
 */
export async function readPieces(
  file: FileHandle,
  pieces: readonly DataPiece[],
  allocate: (length: number) => Float64Array,
): Promise<Float64Array[]> {
  const out = new Array<Float64Array>(pieces.length);
  let i = 0;
  while (i < pieces.length) {
    const first = pieces[i];
    const bytes = first.length * 8;
    if (bytes > SLAB_PIECE_MAX_BYTES) {
      const array = allocate(first.length);
      if (!(await readFully(file, new Uint8Array(array.buffer, array.byteOffset, bytes), first.fileAt))) {
        throw new SnapshotInvalid(first.fileAt, 'pool data truncated');
      }
      out[i++] = array;
      continue;
    }
    let end = i;
    let slabBytes = 0;
    while (end < pieces.length && pieces[end].length * 8 <= SLAB_PIECE_MAX_BYTES && slabBytes + pieces[end].length * 8 <= SLAB_BYTES) {
      slabBytes += pieces[end].length * 8;
      end++;
    }
    const slab = new SharedArrayBuffer(slabBytes);
    if (!(await readFully(file, new Uint8Array(slab), first.fileAt))) throw new SnapshotInvalid(first.fileAt, 'pool data truncated');
    for (let offset = 0; i < end; i++) {
      out[i] = new Float64Array(slab, offset, pieces[i].length);
      offset += pieces[i].length * 8;
    }
  }
  return out;
}
