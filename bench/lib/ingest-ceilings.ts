// The ceilings of bulk ingest into one pool under --fsync always, measured
// on the server's own core in the same run as the bulk row (bench/ingest.ts):
//   sort  the engine's WASM sort of fresh 10^6-value batches of random doubles
//         (every batch is sorted once on arrival), values/s;
//   engine the same batches sorted and appended to one pool of a WASM engine,
//         its merges inline: all the engine work of the bulk row, no HTTP, no
//         log, for as long as the row runs;
//   disk  8 MiB writes each followed by fdatasync in the data directory's file
//         system (a 10^6-value log record is 8 MB), bytes/s ÷ 8 = values/s.
// poolq's sustained rate (acks plus the merges they leave) cannot pass any of them.
// Usage: node dist/bench/lib/ingest-ceilings.js '{"dataDir": "...", "durationS": 5}'

import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { createEngine } from '../../src/core/create-engine.js';
import { allocateRun } from '../../src/core/sorted-run.js';
import { instantiateWasmKernels, loadWasmModule } from '../../src/core/wasm-kernels.js';
import { uniform, wideDouble } from './data.js';

const { dataDir, durationS } = JSON.parse(process.argv[2]) as { dataDir: string; durationS: number };
const BATCH = 1_000_000;

async function sortValuesPerS(): Promise<number> {
  const kernels = instantiateWasmKernels(await loadWasmModule('release'));
  const values = new Float64Array(BATCH);
  let sortedValues = 0;
  let sortMs = 0;
  const until = performance.now() + durationS * 1000;
  while (performance.now() < until) {
    uniform(BATCH, wideDouble, values); // not timed
    const t = performance.now();
    kernels.sortInPlace(values);
    sortMs += performance.now() - t;
    sortedValues += BATCH;
  }
  return sortedValues / (sortMs / 1000);
}

async function engineValuesPerS(): Promise<number> {
  const engine = await createEngine({ kind: 'wasm' });
  let appended = 0;
  let workMs = 0;
  const until = performance.now() + durationS * 1000;
  while (performance.now() < until) {
    const values = allocateRun(BATCH); // the engine keeps it as a run, like a request body
    uniform(BATCH, wideDouble, values); // not timed
    const t = performance.now();
    engine.appendSortedRun(1, engine.sortBatch(values));
    workMs += performance.now() - t;
    appended += BATCH;
  }
  return appended / (workMs / 1000);
}

function diskValuesPerS(): number {
  const file = path.join(dataDir, 'ceiling.tmp');
  const block = Buffer.alloc(BATCH * 8, 0x5a);
  const fd = openSync(file, 'w');
  let bytes = 0;
  const started = performance.now();
  try {
    while (performance.now() - started < durationS * 1000) {
      bytes += writeSync(fd, block);
      fdatasyncSync(fd);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return bytes / 8 / ((performance.now() - started) / 1000);
}

const sort = await sortValuesPerS();
const engine = await engineValuesPerS();
const disk = diskValuesPerS();
console.log(JSON.stringify({ sortValuesPerS: sort, engineValuesPerS: engine, diskValuesPerS: disk }));
