// Parses one import file (import-format.ts): reads it in 1 MiB chunks through
// a scanner (import-scanners.ts), then sorts each pool's values with the
// engine's kernels and takes their CRC32C for the write-ahead log. Runs on the import worker thread (import-task.ts), or on
// the event loop with --workers=0, yielding between chunks.

import { open } from 'node:fs/promises';
import type { Kernels } from '../core/kernels.js';
import { trustSorted } from '../core/sorted-run.js';
import { bytesOf, crc32cOf } from '../storage/binary.js';
import type { ImportOptions, ImportParseResult, ImportProgress, ParsedPool } from '../protocol/import-format.js';
import { createScanner, ImportLineError, PoolValues } from '../protocol/import-scanners.js';

const CHUNK_BYTES = 1 << 20;
const WASM_SORT_MAX_VALUES = (3 * 2 ** 30) / 16;
/** Report progress at most this often. */
const PROGRESS_EVERY_MS = 100;

export async function parseImportFile(
  file: string,
  options: ImportOptions,
  kernels: Kernels,
  onProgress: (progress: ImportProgress) => void,
  betweenChunks?: () => Promise<void>,
): Promise<ImportParseResult> {
  const sink = new PoolValues();
  const scanner = createScanner(options, sink);
  const handle = await open(file, 'r');
  const buffer = new Uint8Array(CHUNK_BYTES);
  let bytes = 0;
  let lastReport = 0;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      scanner.push(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
      const now = performance.now();
      if (now - lastReport >= PROGRESS_EVERY_MS) {
        lastReport = now;
        onProgress({ bytes, values: sink.count });
      }
      await betweenChunks?.();
    }
    scanner.end();
  } catch (err) {
    if (err instanceof ImportLineError) return { ok: false, line: err.line, message: err.message, bytes, values: sink.count };
    throw err;
  } finally {
    await handle.close();
  }
  onProgress({ bytes, values: sink.count });
  const pools: ParsedPool[] = [];
  for (const { poolId, values } of sink.arrays()) {
    // The WASM radix sort needs 16 bytes per value inside wasm32's 4 GiB.
    const sorted = values.length < WASM_SORT_MAX_VALUES ? kernels.sortInPlace(values) : trustSorted(values.sort());
    pools.push({ poolId, values: sorted, crc: crc32cOf(bytesOf(sorted)) });
  }
  return { ok: true, pools, bytes, values: sink.count };
}
