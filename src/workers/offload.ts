// What the rest of the service may hand to worker threads. The piscina-backed
// implementation is worker-pool.ts; with --workers=0 there is none and all work
// runs inline.

import type { MergeOffloader } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';
import type { AddRequest } from '../http/validate.js';

export interface Offload {
  /** Validates (finite) and sorts a batch on a worker; the input buffer may be transferred away. */
  sortBatch(values: Float64Array): Promise<SortedRun>;
  /** JSON.parse + validation of a large /add body on a worker. */
  parseAddBody(body: Buffer): Promise<AddRequest>;
  /** Merges two runs on a worker (engine.setMergeOffloader). */
  merge: MergeOffloader;
  close(): Promise<void>;
}
