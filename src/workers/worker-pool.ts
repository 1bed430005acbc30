// The piscina pool for heavy work (issue 5). Thresholds live in config.ts;
// offloading pays only for work of ~2 ms or more (piscina round trip ~46 µs,
// performance.md). Arrays cross threads without copies: large runs already sit
// on SharedArrayBuffers (sorted-run.ts) and request bodies are transferred.
// If a worker task fails for any reason other than bad input, the work is done
// inline instead — never lost, never half-applied.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { PoolqError } from '../core/errors.js';
import type { QuantileEngine } from '../core/engine.js';
import type { EngineKind } from '../core/kernels.js';
import { trustSorted, type SortedRun } from '../core/sorted-run.js';
import { loadWasmModule } from '../core/wasm-kernels.js';
import { parseAddRequest, parseJson, type AddRequest } from '../http/validate.js';
import type { Offload } from './offload.js';
import type { HeavyTask, MergeResult, ParseAddResult, SortResult, TaskRejection, WorkerInit } from './tasks.js';

export interface WorkerPoolOptions {
  threads: number;
  engine: EngineKind;
  /** Where work is redone when a worker fails (the main thread's engine). */
  inline: Pick<QuantileEngine, 'sortBatch'>;
  /** Tests: the next N merges crash their worker midway. */
  crashNextMerges?: number;
}

/** Built JavaScript of the worker module: piscina must not load .ts files. */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return path.join(path.dirname(here), 'heavy-tasks.js');
  // Running from TS sources (vitest): use the build that `npm test` made first.
  const built = path.resolve(path.dirname(here), '../../dist/src/workers/heavy-tasks.js');
  if (!existsSync(built)) throw new Error(`worker module not built: ${built} (run npm run build)`);
  return built;
}

function fromRejection(r: TaskRejection): PoolqError {
  return new PoolqError(r.code, r.message, r.field);
}

export class WorkerPool implements Offload {
  private readonly piscina: Piscina;
  private crashNextMerges: number;
  private readonly inline: Pick<QuantileEngine, 'sortBatch'>;
  tasksRun = 0;
  tasksFailed = 0;

  constructor(piscina: Piscina, options: WorkerPoolOptions) {
    this.piscina = piscina;
    this.crashNextMerges = options.crashNextMerges ?? 0;
    this.inline = options.inline;
  }

  private async run<T>(task: HeavyTask, transferList?: ArrayBuffer[]): Promise<T> {
    this.tasksRun++;
    try {
      return (await this.piscina.run(task, transferList ? { transferList } : undefined)) as T;
    } catch (err) {
      this.tasksFailed++;
      throw err;
    }
  }

  async sortBatch(values: Float64Array): Promise<SortedRun> {
    let result: SortResult;
    try {
      result = await this.run<SortResult>({ op: 'sort', values });
    } catch {
      // The worker died. A half-sorted array is still a permutation of the
      // input (the sort works in place), so sorting it again inline is exact.
      return this.inline.sortBatch(values);
    }
    if (!result.ok) throw fromRejection(result);
    return trustSorted(result.values);
  }

  async parseAddBody(body: Buffer): Promise<AddRequest> {
    // Large bodies are read into SharedArrayBuffers (body-reader.ts), so the
    // worker parses the very bytes the main thread holds: no copy, and the body
    // is still here to parse inline if the worker fails.
    const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    let result: ParseAddResult;
    try {
      result = await this.run<ParseAddResult>({ op: 'parseAdd', body: bytes });
    } catch {
      return parseAddRequest(parseJson(body));
    }
    if (!result.ok) throw fromRejection(result);
    return { poolId: result.poolId, values: result.values };
  }

  merge = async (a: SortedRun, b: SortedRun): Promise<SortedRun> => {
    const crashMidway = this.crashNextMerges > 0;
    if (crashMidway) this.crashNextMerges--;
    const result = await this.run<MergeResult>({ op: 'merge', a, b, crashMidway });
    return trustSorted(result.merged);
  };

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}

export async function startWorkerPool(options: WorkerPoolOptions): Promise<WorkerPool> {
  const wasmModule = options.engine === 'wasm' ? await loadWasmModule('release') : null;
  const workerData: WorkerInit = { engine: options.engine, wasmModule };
  const piscina = new Piscina({
    filename: workerFile(),
    minThreads: options.threads,
    maxThreads: options.threads,
    idleTimeout: Infinity,
    workerData,
  });
  return new WorkerPool(piscina, options);
}
