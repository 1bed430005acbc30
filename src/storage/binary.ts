// Little-endian helpers shared by the WAL and snapshot formats, and the CRC.
//
// CRC32C (Castagnoli), masked as in LevelDB's log format (util/crc32c.h): a CRC
// stored next to data it covers — or inside data that is itself CRC'd, as when
// a WAL segment is embedded in a snapshot test fixture — is rotated and offset
// so that the CRC of a string that contains its own CRC is not trivially zero.

import { crc32c } from '@node-rs/crc32';
import { endianness } from 'node:os';
import { crc32cCombine } from './crc32c-combine.js';

// Values are written from Float64Arrays byte for byte; the formats are little-endian.
if (endianness() !== 'LE') throw new Error('poolq storage requires a little-endian host');

const MASK_DELTA = 0xa282ead8;

/**
 * Inputs up to this many bytes are hashed in JS (slicing-by-8 tables), larger
 * ones by @node-rs/crc32 (SSE4.2): a native call has a fixed cost (~140 ns)
 * that the JS loop only reaches at about this size, and a small WAL record is
 * hashed in three such pieces (docs/durability.md, "The write path").
 */
const JS_CRC_MAX_BYTES = 128;
const CRC32C_POLY = 0x82f63b78; // reflected Castagnoli polynomial
/** CRC_TABLES[t * 256 + b]: the CRC of byte b followed by t zero bytes. */
const CRC_TABLES = new Int32Array(8 * 256);
for (let b = 0; b < 256; b++) {
  let c = b;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY : c >>> 1;
  CRC_TABLES[b] = c;
}
for (let t = 1; t < 8; t++) {
  for (let b = 0; b < 256; b++) {
    const prev = CRC_TABLES[(t - 1) * 256 + b];
    CRC_TABLES[t * 256 + b] = (prev >>> 8) ^ CRC_TABLES[prev & 255];
  }
}

/** crc32c of bytes[start, end) in JS, continuing from `initial`. */
function crc32cSmall(bytes: Uint8Array, initial: number, start: number, end: number): number {
  const T = CRC_TABLES;
  const n = end;
  let crc = ~initial;
  let i = start;
  for (; i + 8 <= n; i += 8) {
    const a = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc =
      T[1792 + (a & 255)] ^
      T[1536 + ((a >>> 8) & 255)] ^
      T[1280 + ((a >>> 16) & 255)] ^
      T[1024 + (a >>> 24)] ^
      T[768 + bytes[i + 4]] ^
      T[512 + bytes[i + 5]] ^
      T[256 + bytes[i + 6]] ^
      T[bytes[i + 7]];
  }
  for (; i < n; i++) crc = T[(crc ^ bytes[i]) & 255] ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** crc32c of `bytes`, continuing from `initial` (0 starts a new CRC). */
export function crc32cOf(bytes: Uint8Array, initial = 0): number {
  return crc32cOfRange(bytes, 0, bytes.length, initial);
}

/** crc32c of `bytes[start, end)`, continuing from `initial`; no view is made for small ranges. */
export function crc32cOfRange(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  if (end - start <= JS_CRC_MAX_BYTES) return crc32cSmall(bytes, initial, start, end);
  return crc32c(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end), initial) >>> 0;
}

/**
 * CRC32C of the bytes of runs whose CRC was computed where they were made (a
 * worker that sorted a large batch), so the write-ahead log does not hash
 * megabytes again on the event loop (milliseconds per 8 MB run). Runs are
 * immutable, so the CRC stays right.
 */
const knownValueCrcs = new WeakMap<Float64Array, number>();

export function rememberValuesCrc(values: Float64Array, crc: number): void {
  knownValueCrcs.set(values, crc >>> 0);
}

/** The remembered CRC32C of `values`' bytes, if any (tests). */
export function rememberedValuesCrc(values: Float64Array): number | undefined {
  return knownValueCrcs.get(values);
}

/** crc32c of `bytesOf(values)` continuing from `initial`: combined from a remembered CRC when there is one. */
export function crc32cOfValues(values: Float64Array, initial: number): number {
  const known = knownValueCrcs.get(values);
  if (known === undefined) return crc32cOf(bytesOf(values), initial);
  return crc32cCombine(initial, known, values.byteLength);
}

export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0;
}

export function unmaskCrc(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

const TWO_32 = 0x1_0000_0000;

/** Writes a non-negative safe integer as u64 LE. */
export function setU64(view: DataView, offset: number, value: number): void {
  const lo = value % TWO_32;
  view.setUint32(offset, lo, true);
  view.setUint32(offset + 4, (value - lo) / TWO_32, true);
}

/** Reads a u64 LE; -1 when it exceeds Number.MAX_SAFE_INTEGER (never written by poolq). */
export function getU64(view: DataView, offset: number): number {
  const hi = view.getUint32(offset + 4, true);
  if (hi >= 0x20_0000) return -1;
  return hi * TWO_32 + view.getUint32(offset, true);
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The bytes of a Float64Array, without copying (works for SharedArrayBuffer-backed runs). */
export function bytesOf(values: Float64Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function asciiBytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
