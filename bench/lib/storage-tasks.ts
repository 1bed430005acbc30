// What each child process of `npm run bench:storage` does, one task per fresh
// process so every load starts from an empty heap. Each ends with
// emitResult(); the WAL tasks then SIGKILL themselves, because close() would
// take a snapshot and empty the log they leave behind.

import { closeSync, fsyncSync, openSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { createEngine } from '../../src/core/create-engine.js';
import { PoolqError } from '../../src/core/errors.js';
import { trustSorted } from '../../src/core/sorted-run.js';
import { plainRun } from '../../src/core/stored-run.js';
import { snapshotFileName, writeSnapshotFileSync } from '../../src/storage/snapshot-format.js';
import { nodeFileLayer, openDurableStore, type DurableStoreStats, type FileLayer, type FsyncPolicy } from '../../src/storage/index.js';
import { fastSortedRun, rng32 } from './data.js';
import { emitResult } from './proc.js';
import { summarize, type Summary } from './stats.js';

const rssMiB = (): number => process.memoryUsage().rss / 2 ** 20;

/** A WAL of `appends` records of `values` values: segment header + records. */
const walBytesFor = (appends: number, values: number): number => 32 + appends * (40 + 8 * values);

export interface BuildResult {
  values: number;
  bytes: number;
  /** Encoding + CRC + writev into the page cache; then the file's fdatasync; the whole (with rename and directory fsync). */
  writeMs: number;
  fdatasyncMs: number;
  totalMs: number;
}

/** `pools` pools of one run of `perPool` values, written as the store's snapshot file (same writer, same bytes), timed by step. */
function buildTask(a: { dataDir: string; pools: number; perPool: number }): BuildResult {
  const next = rng32(42);
  // Strictly increasing runs: every value distinct, so plain with distinct = length.
  const pools = Array.from({ length: a.pools }, (_, p) => {
    const run = fastSortedRun(a.perPool, p * 1000, next);
    return { poolId: p, windowSeconds: null, buckets: [{ startMs: 0, endMs: 1, runs: [plainRun(run, run.length)] }] };
  });
  const file = join(a.dataDir, snapshotFileName(1));
  const t0 = performance.now();
  let t1 = t0;
  const summary = writeSnapshotFileSync(`${file}.tmp`, 1, pools, () => (t1 = performance.now()));
  const t2 = performance.now();
  renameSync(`${file}.tmp`, file);
  const dirFd = openSync(a.dataDir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
  return { values: summary.values, bytes: summary.bytes, writeMs: t1 - t0, fdatasyncMs: t2 - t1, totalMs: performance.now() - t0 };
}

export interface LoadResult {
  /** openDurableStore() as the caller sees it: recovery and the first log segment. */
  openMs: number;
  /** Process start → store open (node start-up and module loading included). */
  processToOpenMs: number;
  recovery: DurableStoreStats['recovery'];
  rssMiB: number;
  /** With `snapshot`: one tiny change, then store.snapshotNow() as the caller sees it. */
  snapshot?: { ms: number; bytes: number };
}

async function loadTask(a: { dataDir: string; snapshot: boolean }): Promise<LoadResult> {
  const engine = await createEngine({ kind: 'wasm' });
  const t0 = performance.now();
  const store = await openDurableStore({ dataDir: a.dataDir, fsync: 'always', engine, snapshotIntervalMs: 0, snapshotWalBytes: 0 });
  const t1 = performance.now();
  const result: LoadResult = { openMs: t1 - t0, processToOpenMs: t1, recovery: store.stats().recovery, rssMiB: rssMiB() };
  if (a.snapshot) {
    await store.append(2 ** 40, trustSorted(Float64Array.of(0.5))); // a new pool: the loaded runs stay as they are
    const t2 = performance.now();
    await store.snapshotNow();
    const ms = performance.now() - t2;
    const last = readdirSync(a.dataDir)
      .filter((n) => /^snapshot-[0-9a-f]{16}\.bin$/.test(n))
      .sort()
      .at(-1)!;
    result.snapshot = { ms, bytes: statSync(join(a.dataDir, last)).size };
  }
  await store.close();
  return result;
}

export interface WalWriteResult {
  walBytes: number;
  /** Until every record was written (to the page cache) by the flusher. */
  writtenMs: number;
}

/** Appends through the store (fsync 'never', no snapshots) until all is written, emits, SIGKILLs itself. */
async function walWriteTask(a: { dataDir: string; appends: number; values: number; pools: number }): Promise<never> {
  const expected = walBytesFor(a.appends, a.values);
  const store = await openDurableStore({
    dataDir: a.dataDir,
    fsync: 'never',
    engine: await createEngine({ kind: 'wasm' }),
    snapshotIntervalMs: 0,
    snapshotWalBytes: 0,
    // the log is submitted faster than a server would receive it: let the store hold all of it
    maxPendingRecords: a.appends + 1000,
    maxPendingBytes: 4 * expected,
  });
  const next = rng32(9);
  const t0 = performance.now();
  for (let i = 0; i < a.appends; i++) {
    store.append(i % a.pools, fastSortedRun(a.values, 0, next));
    if ((i & 1023) === 1023) await turn(); // let the flusher take a batch, as request turns would
  }
  while (store.stats().walBytes < expected) await new Promise((r) => setTimeout(r, 2));
  emitResult({ walBytes: store.stats().walBytes, writtenMs: performance.now() - t0 } satisfies WalWriteResult);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

export interface ReplayResult {
  openMs: number;
  recovery: DurableStoreStats['recovery'];
}

/** Recovers the log into a fresh engine, emits, SIGKILLs itself so the log stays as it is. */
async function replayTask(a: { dataDir: string }): Promise<never> {
  const engine = await createEngine({ kind: 'wasm' });
  const t0 = performance.now();
  const store = await openDurableStore({ dataDir: a.dataDir, fsync: 'never', engine, snapshotIntervalMs: 0, snapshotWalBytes: 0 });
  emitResult({ openMs: performance.now() - t0, recovery: store.stats().recovery } satisfies ReplayResult);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

export interface CommitArgs {
  dataDir: string;
  fsync: FsyncPolicy;
  inflight: number;
  durationMs: number;
}

export interface CommitResult {
  appendsPerSec: number;
  fdatasyncsPerSec: number;
  appendsPerFdatasync: number | null;
  recordsPerWrite: number;
  refused: number;
  latencyMs: Summary;
  /** At the FileLayer, in the measured window: fdatasync durations, and the share of the window the log was writing or syncing. */
  fdatasyncMs: Summary;
  logBusyPct: number;
  cpuS: number;
}

/** nodeFileLayer with every write and fdatasync timed into `io` (the store's FileLayer seam). */
function timedFileLayer(io: { writeMs: number; syncs: number[] }): FileLayer {
  return {
    ...nodeFileLayer,
    async open(path, mode) {
      const handle = await nodeFileLayer.open(path, mode);
      const timed = async (op: () => Promise<void>, sync: boolean): Promise<void> => {
        const t = performance.now();
        await op();
        if (sync) io.syncs.push(performance.now() - t);
        else io.writeMs += performance.now() - t;
      };
      return {
        size: () => handle.size(),
        read: (into, position) => handle.read(into, position),
        truncate: (length) => handle.truncate(length),
        close: () => handle.close(),
        write: (chunks, position) => timed(() => handle.write(chunks, position), false),
        datasync: () => timed(() => handle.datasync(), true),
      };
    },
  };
}

/**
 * `inflight` submitters, each: append 10 values to one of 1000 pools, wait for
 * the answer (under 'always' a promise settled after the fdatasync), then yield
 * one event-loop turn, as requests arriving on sockets would (and so that the
 * flusher gets to run under 'never' at all). 500 ms warm-up, then the window.
 */
async function commitTask(a: CommitArgs): Promise<CommitResult> {
  const io = { writeMs: 0, syncs: [] as number[] };
  const engine = await createEngine({ kind: 'wasm' });
  const options = { dataDir: a.dataDir, fsync: a.fsync, engine, files: timedFileLayer(io), snapshotIntervalMs: 0, snapshotWalBytes: 0 };
  const store = await openDurableStore(options);
  const next = rng32(7);
  const ring = Array.from({ length: 4096 }, () => fastSortedRun(10, 0, next)); // immutable: pools may share a run
  let measuring = false;
  let stop = false;
  let refused = 0;
  const latency: number[] = [];
  let k = 0;
  const submitter = async (id: number): Promise<void> => {
    while (!stop) {
      const t = performance.now();
      try {
        await store.append((k * 7919 + id) % 1000, ring[k++ & 4095]);
        if (measuring) latency.push(performance.now() - t);
      } catch (err) {
        if (!(err instanceof PoolqError) || err.code !== 'unavailable') throw err;
        if (measuring) refused++;
      }
      await turn();
    }
  };
  const workers = Array.from({ length: a.inflight }, (_, i) => submitter(i));
  await new Promise((r) => setTimeout(r, 500));
  const [s0, c0, t0] = [store.stats(), process.cpuUsage(), performance.now()];
  Object.assign(io, { writeMs: 0, syncs: [] });
  measuring = true;
  await new Promise((r) => setTimeout(r, a.durationMs));
  measuring = false;
  const [s1, c1, seconds] = [store.stats(), process.cpuUsage(c0), (performance.now() - t0) / 1000];
  const busyMs = io.writeMs + io.syncs.reduce((sum, ms) => sum + ms, 0);
  const fdatasyncMs = summarize(io.syncs);
  stop = true;
  await Promise.all(workers);
  // no close(): it would snapshot everything appended, which is not part of this measurement
  const fdatasyncs = s1.fdatasyncs - s0.fdatasyncs;
  return {
    appendsPerSec: latency.length / seconds,
    fdatasyncsPerSec: fdatasyncs / seconds,
    appendsPerFdatasync: fdatasyncs > 0 ? latency.length / fdatasyncs : null,
    recordsPerWrite: latency.length / Math.max(1, s1.writes - s0.writes),
    refused,
    latencyMs: summarize(latency),
    fdatasyncMs,
    // one flusher: its writes and fdatasyncs never overlap
    logBusyPct: (100 * busyMs) / (seconds * 1000),
    cpuS: (c1.user + c1.system) / 1e6,
  };
}

const TASKS: Record<string, (args: never) => unknown> = {
  build: buildTask,
  load: loadTask,
  'wal-write': walWriteTask,
  replay: replayTask,
  commit: commitTask,
};

/** The child side of `storage.js --child TASK JSON`. */
export async function runChildTask(task: string, json: string): Promise<void> {
  const run = TASKS[task];
  if (run === undefined) throw new Error(`unknown child task ${task}`);
  emitResult(await run(JSON.parse(json) as never));
  process.exit(0);
}
