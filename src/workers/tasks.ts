// Messages between the main thread and heavy-tasks workers. Large arrays travel
// on SharedArrayBuffers (allocateRun puts every run of 32Ki values or more on
// one; large request bodies are read into one), so the worker works on the very
// memory the main thread holds: nothing big is copied, and nothing is
// transferred away, which is what lets the main thread redo a task inline when
// its worker dies. Small arrays are copied by structured clone (cheap at that
// size). Failures the caller must see (bad input, an I/O error) come back as
// data, because an Error thrown in a worker reaches the main thread without its
// class or fields (`code`).

import type { EngineKind } from '../core/kernels.js';
import type { EncodingPolicy, StoredRun } from '../core/stored-run.js';
import type { SnapshotPool, SnapshotSummary } from '../storage/snapshot-format.js';

export interface WorkerInit {
  engine: EngineKind;
  /** Compiled once on the main thread (WebAssembly.Module is structured-cloneable). */
  wasmModule: object | null;
  /** WorkerPoolOptions.moduleOptions, for a worker module other than heavy-tasks.js. */
  moduleOptions?: unknown;
}

export type HeavyTask =
  | { op: 'sort'; values: Float64Array }
  | { op: 'merge'; a: StoredRun; b: StoredRun; policy: EncodingPolicy }
  | { op: 'parseAdd'; body: Uint8Array }
  | { op: 'parseValues'; body: Uint8Array }
  | { op: 'snapshot'; path: string; seq: number; pools: readonly SnapshotPool[] };

export type TaskRejection = { ok: false; code: 'invalid_json' | 'invalid_request'; message: string; field?: string };

/** `crc`: CRC32C of the sorted values' bytes, for the write-ahead log (binary.ts rememberValuesCrc). */
export type SortResult = { ok: true; values: Float64Array; crc: number } | TaskRejection;
export type MergeResult = { ok: true; merged: StoredRun };
export type ParseValuesResult = { ok: true; values: Float64Array } | TaskRejection;
export type ParseAddResult = { ok: true; poolId: number; values: Float64Array } | TaskRejection;
/** An I/O failure keeps its errno code (ENOSPC, EIO…) so the store's logs and 503s name it. */
export type SnapshotResult = { ok: true; summary: SnapshotSummary } | { ok: false; message: string; errno?: string };
