// The idempotency keys as of a snapshot: `keys-<seq as 16 hex digits>.bin`,
// written and made durable before `snapshot-<seq>.bin` is renamed into place,
// so every snapshot this version writes has its keys beside it; the log after
// the snapshot holds the rest. Layout in docs/storage-format.md, "Key file".

import { bestEffort } from './errors.js';
import { asciiBytes, bytesEqual, crc32cOf, getU64, hex16, maskCrc, setU64, viewOf } from './binary.js';
import type { FileLayer } from './file-layer.js';
import type { KeyEntry } from './idempotency-keys.js';
import { paddedKeyBytes } from './wal-format.js';

export const KEYS_MAGIC = asciiBytes('POOLQKEY');
export const KEYS_VERSION = 1;
export const KEYS_HEADER_BYTES = 48;
const ENTRY_BYTES = 32;
const ITEM_BYTES = 24;

const KEYS_NAME = /^keys-([0-9a-f]{16})\.bin$/;

export function keysFileName(seq: number): string {
  return `keys-${hex16(seq)}.bin`;
}

export function parseKeysFileName(name: string): number | null {
  const m = KEYS_NAME.exec(name);
  if (m === null) return null;
  const n = Number.parseInt(m[1], 16);
  return Number.isSafeInteger(n) ? n : null;
}

export interface KeysFileContents {
  seq: number;
  latestMs: number;
  entries: [string, KeyEntry][];
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeKeysFile({ seq, latestMs, entries }: KeysFileContents): Uint8Array {
  const keys = entries.map(([key]) => utf8.encode(key));
  let size = KEYS_HEADER_BYTES;
  entries.forEach(([, e], i) => (size += ENTRY_BYTES + paddedKeyBytes(keys[i].length) + ITEM_BYTES * e.items.length));
  const bytes = new Uint8Array(size);
  const view = viewOf(bytes);
  let at = KEYS_HEADER_BYTES;
  entries.forEach(([, e], i) => {
    setU64(view, at, e.seq);
    setU64(view, at + 8, e.atMs);
    setU64(view, at + 16, e.windowFromMs);
    view.setUint32(at + 24, e.items.length, true);
    view.setUint8(at + 28, keys[i].length);
    bytes.set(keys[i], at + ENTRY_BYTES);
    at += ENTRY_BYTES + paddedKeyBytes(keys[i].length);
    e.items.forEach((item, j) => {
      setU64(view, at, item.poolId);
      setU64(view, at + 8, e.outcomes[j].count);
      view.setUint32(at + 16, item.valueCount, true);
      view.setUint8(at + 20, e.outcomes[j].created ? 1 : 0);
      at += ITEM_BYTES;
    });
  });
  bytes.set(KEYS_MAGIC, 0);
  view.setUint32(8, KEYS_VERSION, true);
  view.setUint32(12, KEYS_HEADER_BYTES, true);
  setU64(view, 16, seq);
  setU64(view, 24, entries.length);
  setU64(view, 32, latestMs);
  view.setUint32(40, maskCrc(crc32cOf(bytes.subarray(KEYS_HEADER_BYTES))), true);
  view.setUint32(44, maskCrc(crc32cOf(bytes.subarray(0, 44))), true);
  return bytes;
}

/** Thrown by decodeKeysFile; recovery turns it into a StorageCorruptionError. */
export class KeysFileInvalid extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${reason} (byte offset ${offset})`);
    this.name = 'KeysFileInvalid';
  }
}

export function decodeKeysFile(bytes: Uint8Array): KeysFileContents {
  if (bytes.length < KEYS_HEADER_BYTES) throw new KeysFileInvalid(0, `file is ${bytes.length} bytes, shorter than the header`);
  const view = viewOf(bytes);
  if (view.getUint32(44, true) !== maskCrc(crc32cOf(bytes.subarray(0, 44)))) throw new KeysFileInvalid(44, 'header CRC mismatch');
  if (!bytesEqual(bytes.subarray(0, 8), KEYS_MAGIC)) throw new KeysFileInvalid(0, 'bad magic');
  if (view.getUint32(8, true) !== KEYS_VERSION) throw new KeysFileInvalid(8, `unsupported key file version ${view.getUint32(8, true)}`);
  if (view.getUint32(12, true) !== KEYS_HEADER_BYTES) throw new KeysFileInvalid(12, 'bad header length');
  if (view.getUint32(40, true) !== maskCrc(crc32cOf(bytes.subarray(KEYS_HEADER_BYTES)))) throw new KeysFileInvalid(40, 'body CRC mismatch');
  const seq = getU64(view, 16);
  const count = getU64(view, 24);
  const latestMs = getU64(view, 32);
  if (seq < 0 || count < 0 || latestMs < 0) throw new KeysFileInvalid(16, 'header fields out of range');
  const entries: [string, KeyEntry][] = [];
  let at = KEYS_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + ENTRY_BYTES > bytes.length) throw new KeysFileInvalid(at, 'entry runs past the end of the file');
    const itemCount = view.getUint32(at + 24, true);
    const keyLength = view.getUint8(at + 28);
    const itemsAt = at + ENTRY_BYTES + paddedKeyBytes(keyLength);
    if (keyLength === 0 || itemCount === 0 || itemsAt + ITEM_BYTES * itemCount > bytes.length) throw new KeysFileInvalid(at, 'bad entry');
    let key: string;
    try {
      key = fromUtf8.decode(bytes.subarray(at + ENTRY_BYTES, at + ENTRY_BYTES + keyLength));
    } catch {
      throw new KeysFileInvalid(at + ENTRY_BYTES, 'key is not UTF-8');
    }
    const entry: KeyEntry = {
      seq: getU64(view, at),
      atMs: getU64(view, at + 8),
      windowFromMs: getU64(view, at + 16),
      items: [],
      outcomes: [],
    };
    for (let j = 0, p = itemsAt; j < itemCount; j++, p += ITEM_BYTES) {
      entry.items.push({ poolId: getU64(view, p), valueCount: view.getUint32(p + 16, true) });
      entry.outcomes.push({ created: view.getUint8(p + 20) === 1, count: getU64(view, p + 8) });
    }
    entries.push([key, entry]);
    at = itemsAt + ITEM_BYTES * itemCount;
  }
  if (at !== bytes.length) throw new KeysFileInvalid(at, 'bytes after the last entry');
  return { seq, latestMs, entries };
}

/** Writes `contents` to `<dataDir>/keys-<seq>.bin` durably: temp file, fdatasync, rename, directory fsync. */
export async function writeKeysFile(files: FileLayer, dataDir: string, contents: KeysFileContents): Promise<string> {
  const name = keysFileName(contents.seq);
  const tmpPath = `${dataDir}/${name}.tmp`;
  const file = await files.open(tmpPath, 'create');
  try {
    await file.write([encodeKeysFile(contents)], 0);
    await file.datasync();
  } catch (err) {
    await bestEffort(() => file.close());
    await bestEffort(() => files.unlink(tmpPath));
    throw err;
  }
  await file.close();
  await files.rename(tmpPath, `${dataDir}/${name}`);
  await files.fsyncDir(dataDir);
  return name;
}

/** Reads and verifies a whole key file. */
export async function readKeysFile(files: FileLayer, path: string): Promise<KeysFileContents> {
  const file = await files.open(path, 'read');
  try {
    const bytes = new Uint8Array(await file.size());
    if ((await file.read(bytes, 0)) !== bytes.length) throw new KeysFileInvalid(0, 'file shorter than its size');
    return decodeKeysFile(bytes);
  } finally {
    await bestEffort(() => file.close());
  }
}
