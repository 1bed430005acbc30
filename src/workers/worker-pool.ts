// The piscina pool for heavy work. Thresholds live in config.ts; offloading
// pays only for work of ~2 ms or more, a piscina round trip being ~46 µs
// (docs/performance.md). Arrays cross threads without copies: large runs and large
// request bodies already sit on SharedArrayBuffers (sorted-run.ts,
// body-buffers.ts), so a worker reads and writes the caller's own memory. No
// path transfers a buffer: a transferred buffer is gone from the main thread,
// and with it the chance to redo the work there. If a sort, parse or merge task
// fails for any reason other than bad input, the work is done inline instead —
// never lost, never half-applied. Snapshots are written by a thread of their
// own (see buildSnapshot); a failed one is reported to the store, which keeps
// its log and tries again later.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { invalidOption, PoolqError } from '../core/errors.js';
import type { QuantileEngine } from '../core/engine.js';
import type { EngineKind } from '../core/kernels.js';
import { trustSorted, type SortedRun } from '../core/sorted-run.js';
import type { EncodingPolicy, StoredRun } from '../core/stored-run.js';
import { loadWasmModule } from '../core/wasm-kernels.js';
import { checkValues, parseAddRequest, parseJson, type AddRequest } from '../protocol/validate.js';
import { rememberValuesCrc } from '../storage/binary.js';
import { nodeFileLayer } from '../storage/file-layer.js';
import { writeSnapshotFile, type SnapshotBuilder, type SnapshotPool, type SnapshotSummary } from '../storage/snapshot-format.js';
import type { Offload } from '../protocol/offload.js';
import { asBackground, TwoLaneTaskQueue } from './task-queue.js';
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

/** Linux nice increment for worker threads (via piscina's optional @napi-rs/nice). */
const WORKER_NICE = 10;

/**
 * Most bytes of small (non-shared) runs a snapshot copies into its worker task.
 * The copy is a structured clone on the main thread into fresh memory, one
 * event-loop stall (4–7 ms per MiB on the reference VM) that beyond this budget
 * outlasts the inline builder's, which yields between writes; above it the
 * snapshot is written inline (docs/performance.md).
 */
const DEFAULT_SNAPSHOT_COPY_BUDGET_BYTES = 1 << 20;

export interface WorkerPoolOptions {
  threads: number;
  engine: EngineKind;
  /** Where work is redone when a worker fails (the main thread's engine). */
  inline: Pick<QuantileEngine, 'sortBatch'>;
  /** Bytes of non-shared runs a snapshot may copy to its worker before it is written inline instead. Default 1 MiB. */
  snapshotCopyBudgetBytes?: number;
  /**
   * The built JavaScript module the worker threads run; default heavy-tasks.js.
   * Another module must answer the tasks of tasks.ts (tests wrap heavy-tasks.js
   * in one that injects faults).
   */
  workerModule?: string;
  /** Handed to every worker as `workerData.moduleOptions` (structured clone: a SharedArrayBuffer stays shared). */
  moduleOptions?: unknown;
}

/** Bytes a snapshot task would have to copy: run arrays not on a SharedArrayBuffer. */
function copiedBytes(pools: readonly SnapshotPool[]): number {
  let bytes = 0;
  for (const pool of pools) {
    for (const bucket of pool.buckets) {
      for (const run of bucket.runs) {
        for (const array of run.ends === null ? [run.values] : [run.values, run.ends]) {
          if (!(array.buffer instanceof SharedArrayBuffer)) bytes += array.byteLength;
        }
      }
    }
  }
  return bytes;
}

/** Built JavaScript of the worker module: piscina must not load .ts files. */
function workerFile(chosen: string | undefined): string {
  if (chosen !== undefined) {
    if (!existsSync(chosen)) throw new Error(`worker module not found: ${chosen}`);
    return chosen;
  }
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return path.join(path.dirname(here), 'heavy-tasks.js');
  // Running from TS sources (vitest): use the build that `npm test` made first.
  const built = path.resolve(path.dirname(here), '../../dist/src/workers/heavy-tasks.js');
  if (!existsSync(built)) throw new Error(`worker module not built: ${built} (run npm run build)`);
  return built;
}

function sharedBytes(body: Buffer): Uint8Array {
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

function fromRejection(r: TaskRejection): PoolqError {
  return new PoolqError(r.code, r.message, r.field);
}

export class WorkerPool implements Offload {
  private readonly piscina: Piscina;
  private readonly workerFile: string;
  private readonly inline: Pick<QuantileEngine, 'sortBatch'>;
  private readonly moduleOptions: unknown;
  private readonly snapshotCopyBudgetBytes: number;
  /** The snapshot writer's own thread, started with the first snapshot. */
  private snapshotPiscina: Piscina | null = null;
  tasksRun = 0;
  tasksFailed = 0;
  /** Merges a worker completed (failed ones are redone inline by the engine). */
  mergesOffloaded = 0;
  /** Snapshots handed to the snapshot thread, and those written inline for being mostly small runs. */
  snapshotsOffloaded = 0;
  snapshotsInline = 0;

  constructor(piscina: Piscina, options: WorkerPoolOptions, file: string) {
    this.piscina = piscina;
    this.workerFile = file;
    this.moduleOptions = options.moduleOptions;
    this.snapshotCopyBudgetBytes = options.snapshotCopyBudgetBytes ?? DEFAULT_SNAPSHOT_COPY_BUDGET_BYTES;
    this.inline = options.inline;
  }

  private async run<T>(task: HeavyTask, on: Piscina = this.piscina): Promise<T> {
    this.tasksRun++;
    try {
      return (await on.run(task)) as T;
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
      // The worker died. A half-sorted shared array is still a permutation of
      // the input (the sort works in place), and a non-shared one was only
      // copied, so sorting it inline is exact either way.
      return this.inline.sortBatch(values);
    }
    if (!result.ok) throw fromRejection(result);
    // A shared input was sorted in place: hand back the caller's own array
    // (the worker's reply is another view of the same memory). A small
    // non-shared one came back as a sorted copy.
    const sorted = trustSorted(values.buffer instanceof SharedArrayBuffer ? values : result.values);
    rememberValuesCrc(sorted, result.crc); // the log will not hash these bytes again on the event loop
    return sorted;
  }

  parseAddBody(body: Buffer): Promise<AddRequest> {
    return this.parseOnWorker<ParseAddResult, AddRequest>(
      { op: 'parseAdd', body: sharedBytes(body) },
      () => parseAddRequest(parseJson(body)),
      (result) => ({ poolId: result.poolId, values: result.values }),
    );
  }

  /** Like parseAddBody, for a body that is just the array of values (POST /pools/{id}/values). */
  parseValuesBody(body: Buffer): Promise<Float64Array> {
    return this.parseOnWorker<ParseValuesResult, Float64Array>(
      { op: 'parseValues', body: sharedBytes(body) },
      () => checkValues(parseJson(body), 'body'),
      (result) => result.values,
    );
  }

  /**
   * Large bodies are read into SharedArrayBuffers (body-reader.ts), so the
   * worker parses the very bytes the main thread holds: no copy, and the body
   * is still here to parse inline if the worker fails. The parsed values of a
   * large body land in shared memory too (allocateRun in checkValues). Bad
   * input comes back as a rejection and becomes the same PoolqError as inline.
   */
  private async parseOnWorker<R extends { ok: true } | TaskRejection, T>(
    task: HeavyTask,
    inline: () => T,
    accept: (result: Extract<R, { ok: true }>) => T,
  ): Promise<T> {
    let result: R;
    try {
      result = await this.run<R>(task);
    } catch {
      return inline();
    }
    if (!result.ok) throw fromRejection(result as TaskRejection);
    return accept(result as Extract<R, { ok: true }>);
  }

  merge = async (a: StoredRun, b: StoredRun, policy: EncodingPolicy): Promise<StoredRun> => {
    const result = await this.run<MergeResult>(asBackground({ op: 'merge', a, b, policy }));
    this.mergesOffloaded++;
    return result.merged;
  };

  /**
   * A SnapshotBuilder for openDurableStore's `buildSnapshot`: the whole file —
   * CRCs, writes, fdatasync — is made by writeSnapshotFileSync on a worker,
   * which reads runs on SharedArrayBuffers in place. Runs too small to be
   * shared would have to be copied into the task, and that copy blocks the
   * event loop longer than writing them here does, so a snapshot holding more
   * than snapshotCopyBudgetBytes of them is written inline (writeSnapshotFile
   * through node:fs, as the store's default builder does). The worker is a
   * thread of its own, so a long write never queues request sorts and parses.
   * Any failure — an I/O error in the worker, or the worker dying — rejects:
   * the store then deletes the temp file, records the error, keeps the log it
   * would have trimmed, and tries again later (durable-store.ts takeSnapshot).
   */
  buildSnapshot: SnapshotBuilder = async (path, seq, pools): Promise<SnapshotSummary> => {
    if (copiedBytes(pools) > this.snapshotCopyBudgetBytes) {
      this.snapshotsInline++;
      return writeSnapshotFile(nodeFileLayer, path, seq, pools);
    }
    this.snapshotsOffloaded++;
    this.snapshotPiscina ??= createPiscina(this.workerFile, 1, { engine: 'ts', wasmModule: null, moduleOptions: this.moduleOptions });
    const result = await this.run<SnapshotResult>({ op: 'snapshot', path, seq, pools }, this.snapshotPiscina);
    if (!result.ok) throw Object.assign(new Error(result.message), { code: result.errno });
    return result.summary;
  };

  async close(): Promise<void> {
    await Promise.all([this.piscina.destroy(), this.snapshotPiscina?.destroy()]);
  }
}

function createPiscina(filename: string, threads: number, workerData: WorkerInit): Piscina {
  return new Piscina({
    filename,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    // Heavy work yields the CPU to the request loop: on 2 cores, an equal-priority
    // worker parsing a large body made small queries' p99 7x longer (docs/performance.md).
    niceIncrement: WORKER_NICE,
    // 'sync' (piscina's default) parks an idle worker in Atomics.wait, so its
    // timers never fire: the worker's GC pacer (heavy-tasks.ts) could then not
    // collect after the last task, and the runs it referenced stayed resident.
    atomics: 'async',
    taskQueue: new TwoLaneTaskQueue(),
    workerData,
  });
}

export async function startWorkerPool(options: WorkerPoolOptions): Promise<WorkerPool> {
  if (!Number.isInteger(options.threads) || options.threads < 1) throw invalidOption('threads', 'a positive integer', options.threads);
  if (options.engine !== 'ts' && options.engine !== 'wasm') throw invalidOption('engine', "'wasm' or 'ts'", options.engine);
  const budget = options.snapshotCopyBudgetBytes;
  if (budget !== undefined && !(Number.isSafeInteger(budget) && budget >= 0))
    throw invalidOption('snapshotCopyBudgetBytes', 'a non-negative integer', budget);
  if (options.workerModule !== undefined && !/\.[cm]?js$/.test(options.workerModule)) {
    throw invalidOption('workerModule', 'the path of a built JavaScript module', options.workerModule);
  }
  const file = workerFile(options.workerModule);
  const wasmModule = options.engine === 'wasm' ? await loadWasmModule('release') : null;
  const init: WorkerInit = { engine: options.engine, wasmModule, moduleOptions: options.moduleOptions };
  return new WorkerPool(createPiscina(file, options.threads, init), options, file);
}
