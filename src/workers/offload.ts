// What the rest of the service may hand to worker threads. The piscina-backed
// implementation is worker-pool.ts; with --workers=0 there is none and all work
// runs inline.

import type { MergeOffloader } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';
import type { AddRequest } from '../http/validate.js';
import type { SnapshotBuilder } from '../storage/snapshot-format.js';

export interface Offload {
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
  /** Merges two runs on a worker (engine.setMergeOffloader). */
  merge: MergeOffloader;
  /** Writes a snapshot file on a worker (openDurableStore's `buildSnapshot`); rejects if that fails. */
  buildSnapshot: SnapshotBuilder;
  close(): Promise<void>;
}
