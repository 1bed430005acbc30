// What the service may hand to worker threads, as interfaces the callers
// depend on: the HTTP layer sees only RequestOffload, main wires the rest.
// src/workers/worker-pool.ts implements both; with --workers=0 there is none
// and all work runs inline.

import type { MergeOffloader } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';
import type { SnapshotBuilder } from '../storage/snapshot-format.js';
import type { AddRequest } from './validate.js';

/** The request work the HTTP layer moves off the event loop when it is large. */
export interface RequestOffload {
  /**
   * Validates (finite) and sorts a batch on a worker. A batch on a
   * SharedArrayBuffer is sorted in place and returned as the same array; a
   * small non-shared one is copied and comes back as a sorted copy.
   */
  sortBatch(values: Float64Array): Promise<SortedRun>;
  /** JSON.parse + validation of a large /add body on a worker (a body on a SharedArrayBuffer is not copied). */
  parseAddBody(body: Buffer): Promise<AddRequest>;
  /** JSON.parse + validation of a large POST /pools/{id}/values body (an array) on a worker. */
  parseValuesBody(body: Buffer): Promise<Float64Array>;
}

export interface Offload extends RequestOffload {
  /** Merges two runs on a worker (engine.setMergeOffloader). */
  merge: MergeOffloader;
  /** Writes a snapshot file on a worker (openDurableStore's `buildSnapshot`); rejects if that fails. */
  buildSnapshot: SnapshotBuilder;
  close(): Promise<void>;
}
