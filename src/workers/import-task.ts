// The import worker: a piscina worker module of its own, so that parsing a
// large file (seconds) never queues the sorts, merges and body parses that
// requests hand to the heavy-task worker. Progress goes back over the
// MessagePort that comes with each task.

import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'node:worker_threads';
import type { Kernels } from '../core/kernels.js';
import { createTsKernels } from '../core/ts-kernels.js';
import { instantiateWasmKernels } from '../core/wasm-kernels.js';
import type { ImportOptions, ImportParseResult } from '../protocol/import-format.js';
import { parseImportFile } from './import-file.js';
import type { WorkerInit } from './tasks.js';

export interface ImportTask {
  file: string;
  options: ImportOptions;
  progress: MessagePort;
}

function createKernels(init: WorkerInit): Kernels {
  if (init.engine === 'wasm' && init.wasmModule !== null) return instantiateWasmKernels(init.wasmModule);
  return createTsKernels();
}

function handlerFor(kernels: Kernels) {
  return async (task: ImportTask): Promise<ImportParseResult> => {
    try {
      return await parseImportFile(task.file, task.options, kernels, (progress) => task.progress.postMessage(progress));
    } finally {
      task.progress.close();
    }
  };
}

export default Promise.resolve(workerData as WorkerInit).then((init) => handlerFor(createKernels(init)));
