// The piscina worker module: sorting large batches, merging large runs and
// parsing large bodies off the event loop. It exports a promise of its handler
// (piscina supports this) so the kernels — the WASM module compiled once on the
// main thread — are instantiated once per worker, not per task.

import { workerData } from 'node:worker_threads';
import { PoolqError } from '../core/errors.js';
import type { Kernels } from '../core/kernels.js';
import { allocateRun, trustSorted } from '../core/sorted-run.js';
import { createTsKernels } from '../core/ts-kernels.js';
import { instantiateWasmKernels } from '../core/wasm-kernels.js';
import { parseAddRequest, parseJson } from '../http/validate.js';
import type { HeavyTask, MergeResult, ParseAddResult, SortResult, TaskRejection, WorkerInit } from './tasks.js';

function rejection(err: unknown): TaskRejection {
  if (err instanceof PoolqError && (err.code === 'invalid_json' || err.code === 'invalid_request')) {
    return { ok: false, code: err.code, message: err.message, field: err.field };
  }
  throw err;
}

function createKernels(init: WorkerInit): Kernels {
  if (init.engine === 'wasm' && init.wasmModule !== null) return instantiateWasmKernels(init.wasmModule);
  return createTsKernels();
}

function handlerFor(kernels: Kernels) {
  return (task: HeavyTask): SortResult | MergeResult | ParseAddResult => {
    switch (task.op) {
      case 'sort': {
        const values = task.values;
        for (let i = 0; i < values.length; i++) {
          const v = values[i];
          if (v - v !== 0) {
            return { ok: false, code: 'invalid_request', message: `poolValues[${i}] must be a finite number, got ${v}.`, field: `poolValues[${i}]` };
          }
        }
        return { ok: true, values: kernels.sortInPlace(values) };
      }
      case 'merge': {
        const out = allocateRun(task.a.length + task.b.length);
        // Fault injection (tests): the worker thread dies with the merge half done.
        if (task.crashMidway === true) process.exit(70);
        return { ok: true, merged: kernels.mergeInto(trustSorted(task.a), trustSorted(task.b), out) };
      }
      case 'parseAdd': {
        try {
          const { poolId, values } = parseAddRequest(parseJson(Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength)));
          return { ok: true, poolId, values };
        } catch (err) {
          return rejection(err);
        }
      }
    }
  };
}

export default Promise.resolve(workerData as WorkerInit).then((init) => handlerFor(createKernels(init)));
