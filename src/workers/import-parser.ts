// ImportParsers (import-format.ts) for the service: one on a dedicated, niced
// piscina thread (import-task.ts), and one on the event loop for --workers=0
// that yields between 1 MiB chunks. Imports run one at a time (ImportJobs
// queues them), so one thread is enough.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { EngineKind, Kernels } from '../core/kernels.js';
import { loadWasmModule } from '../core/wasm-kernels.js';
import type { ImportParser, ImportParseResult, ImportProgress } from '../protocol/import-format.js';
import { rememberValuesCrc } from '../storage/binary.js';
import { parseImportFile } from './import-file.js';
import type { ImportTask } from './import-task.js';
import type { WorkerInit } from './tasks.js';

/** Same as the heavy-task workers: parsing yields the CPU to the request loop. */
const WORKER_NICE = 10;

function builtWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return path.join(path.dirname(here), 'import-task.js');
  const built = path.resolve(path.dirname(here), '../../dist/src/workers/import-task.js');
  if (!existsSync(built)) throw new Error(`worker module not built: ${built} (run npm run build)`);
  return built;
}

/** Hands each pool's CRC to the log (binary.ts), which then combines instead of hashing 8 bytes a value on the event loop. */
function remembered(result: ImportParseResult): ImportParseResult {
  if (result.ok) for (const pool of result.pools) rememberValuesCrc(pool.values, pool.crc);
  return result;
}

export interface ImportParserHandle {
  parse: ImportParser;
  close(): Promise<void>;
}

export async function startImportParser(engine: EngineKind): Promise<ImportParserHandle> {
  const workerData: WorkerInit = { engine, wasmModule: engine === 'wasm' ? await loadWasmModule('release') : null };
  const piscina = new Piscina({
    filename: builtWorkerFile(),
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: 30_000,
    niceIncrement: WORKER_NICE,
    workerData,
  });
  const parse: ImportParser = async (file, options, onProgress) => {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (progress: ImportProgress) => onProgress(progress));
    const task: ImportTask = { file, options, progress: port2 };
    try {
      return remembered((await piscina.run(task, { transferList: [port2] })) as ImportParseResult);
    } finally {
      port1.close();
    }
  };
  return { parse, close: () => piscina.destroy() };
}

/** Parses on the event loop, giving it back between chunks (--workers=0). */
export function inlineImportParser(kernels: Kernels): ImportParserHandle {
  const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  return {
    parse: async (file, options, onProgress) => remembered(await parseImportFile(file, options, kernels, onProgress, yieldTurn)),
    close: async () => {},
  };
}
