// The piscina worker module: sorting large batches, merging large runs, parsing
// large bodies and writing snapshots off the event loop. It exports a promise of
// its handler (piscina supports this) so the kernels — the WASM module compiled
// once on the main thread — are instantiated once per worker, not per task.

import { workerData } from 'node:worker_threads';
import { nonFiniteValue, PoolqError } from '../core/errors.js';
import { createGcPacer } from '../core/gc-pacer.js';
import type { Kernels } from '../core/kernels.js';
import { mergeRuns } from '../core/run-merge.js';
import type { StoredRun } from '../core/stored-run.js';
import { createTsKernels } from '../core/ts-kernels.js';
import { instantiateWasmKernels } from '../core/wasm-kernels.js';
import { parseAddBodyFast, parseValuesBodyFast } from '../protocol/bulk-parse.js';
import { checkValues, parseAddRequest, parseJson } from '../protocol/validate.js';
import { bytesOf, crc32cOf } from '../storage/binary.js';
import { writeSnapshotFileSync } from '../storage/snapshot-format.js';
import type {
  HeavyTask,
  MergeResult,
  ParseAddResult,
  ParseValuesResult,
  SnapshotResult,
  SortResult,
  TaskRejection,
  WorkerInit,
} from './tasks.js';

function rejection(err: unknown): TaskRejection {
  if (err instanceof PoolqError && (err.code === 'invalid_json' || err.code === 'invalid_request')) {
    return { ok: false, code: err.code, message: err.message, field: err.field };
  }
  throw err;
}

function ioFailure(err: unknown): SnapshotResult {
  const errno = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return { ok: false, message: err instanceof Error ? err.message : String(err), errno };
}

function createKernels(init: WorkerInit): Kernels {
  if (init.engine === 'wasm' && init.wasmModule !== null) return instantiateWasmKernels(init.wasmModule);
  return createTsKernels();
}

/**
 * This thread's references to the shared runs and bodies it worked on keep
 * them alive until its own heap is collected, however long the main thread
 * has been done with them: an idle worker would never collect. So each task
 * reports what it touched, and the worker collects once that adds up.
 */
const pacer = createGcPacer({ thresholdBytes: 32 << 20, idleMs: 500 });

function bytesOfRun(run: StoredRun): number {
  return run.values.byteLength + (run.ends === null ? 0 : run.ends.byteLength);
}

function handlerFor(kernels: Kernels) {
  return (task: HeavyTask): SortResult | MergeResult | ParseValuesResult | ParseAddResult | SnapshotResult => {
    switch (task.op) {
      case 'sort': {
        const values = task.values;
        for (let i = 0; i < values.length; i++) {
          const v = values[i];
          if (v - v !== 0) return rejection(nonFiniteValue(i, v)); // the engine's own error, as inline
        }
        const sorted = kernels.sortInPlace(values);
        pacer?.note(values.byteLength);
        return { ok: true, values: sorted, crc: crc32cOf(bytesOf(sorted)) };
      }
      case 'merge': {
        const merged = mergeRuns(kernels, task.a, task.b, task.policy);
        pacer?.note(bytesOfRun(task.a) + bytesOfRun(task.b) + bytesOfRun(merged));
        return { ok: true, merged };
      }
      case 'parseValues': {
        pacer?.note(task.body.byteLength);
        try {
          const fast = parseValuesBodyFast(task.body);
          if (fast !== null) return { ok: true, values: fast };
          return {
            ok: true,
            values: checkValues(parseJson(Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength)), 'body'),
          };
        } catch (err) {
          return rejection(err);
        }
      }
      case 'parseAdd': {
        pacer?.note(task.body.byteLength);
        try {
          const { poolId, values } =
            parseAddBodyFast(task.body) ??
            parseAddRequest(parseJson(Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength)));
          return { ok: true, poolId, values };
        } catch (err) {
          return rejection(err);
        }
      }
      case 'snapshot': {
        // Blocking writes and fdatasync are the point here: this thread has
        // nothing else to do. The store renames the file and fsyncs the directory.
        try {
          return { ok: true, summary: writeSnapshotFileSync(task.path, task.seq, task.pools) };
        } catch (err) {
          return ioFailure(err);
        }
      }
    }
  };
}

export default Promise.resolve(workerData as WorkerInit).then((init) => handlerFor(createKernels(init)));
