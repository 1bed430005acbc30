// Messages between the main thread and heavy-tasks workers. Large arrays travel
// on SharedArrayBuffers (allocateRun) or as transferred ArrayBuffers — never
// copied. Validation failures come back as data, because an Error thrown in a
// worker reaches the main thread without its class or fields.

import type { EngineKind } from '../core/kernels.js';

export interface WorkerInit {
  engine: EngineKind;
  /** Compiled once on the main thread (WebAssembly.Module is structured-cloneable). */
  wasmModule: object | null;
}

export type HeavyTask =
  | { op: 'sort'; values: Float64Array }
  | { op: 'merge'; a: Float64Array; b: Float64Array; crashMidway?: boolean }
  | { op: 'parseAdd'; body: Uint8Array };

export type TaskRejection = { ok: false; code: 'invalid_json' | 'invalid_request'; message: string; field?: string };

export type SortResult = { ok: true; values: Float64Array } | TaskRejection;
export type MergeResult = { ok: true; merged: Float64Array };
export type ParseAddResult = { ok: true; poolId: number; values: Float64Array } | TaskRejection;
