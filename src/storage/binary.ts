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

/** crc32c of `bytes`, continuing from `initial` (0 starts a new CRC). */
export function crc32cOf(bytes: Uint8Array, initial = 0): number {
  return crc32c(bytes, initial) >>> 0;
}

/**
 * CRC32C of the bytes of runs whose CRC was computed where they were made (a
 * worker that sorted a large batch), so the write-ahead log does not compute it
 * again on the event loop: 8 MB took 1.2–1.8 ms on an idle core and 5–9 ms
 * under bench:latency's load. Runs are immutable, so the CRC stays right.
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
