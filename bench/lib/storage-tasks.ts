// What each child process of `npm run bench:storage` does. One task per fresh
// process, so every load starts from an empty heap and no earlier step's
// garbage or memory is counted. Each ends with emitResult(); the WAL tasks then
// SIGKILL themselves, because close() would take a snapshot and empty the log.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { createEngine } from '../../src/core/create-engine.js';
import type { QuantileEngine } from '../../src/core/engine.js';
import { PoolqError } from '../../src/core/errors.js';
import { allocateRun, trustSorted, type SortedRun } from '../../src/core/sorted-run.js';
import { crc32cOf } from '../../src/storage/binary.js';
import {
  nodeFileLayer,
  openDurableStore,
  readSnapshotFile,
  type DurableStore,
  type DurableStoreStats,
  type FileLayer,
  type FsyncPolicy,
} from '../../src/storage/index.js';
import { rng32 } from './data.js';
import { buildPools, walBytesFor, writeSnapshotTimed, type TimedSnapshotWrite } from './storage-data.js';
import { emitResult } from './storage-procs.js';

const MiB = 1 << 20;

function memory(): { rssMiB: number; arrayBuffersMiB: number; heapUsedMiB: number } {
  const m = process.memoryUsage();
  return { rssMiB: m.rss / MiB, arrayBuffersMiB: m.arrayBuffers / MiB, heapUsedMiB: m.heapUsed / MiB };
}

function snapshotFiles(dataDir: string): { name: string; bytes: number }[] {
  return readdirSync(dataDir)
    .filter((n) => /^snapshot-[0-9a-f]{16}\.bin$/.test(n))
    .sort()
    .map((name) => ({ name, bytes: statSync(join(dataDir, name)).size }));
}

/** Adds the time spent inside engine methods that recovery calls to `acc.ms`. */
function timeEngine(engine: QuantileEngine, acc: { ms: number; calls: number }): void {
  const append = engine.appendSortedRun.bind(engine);
  const remove = engine.deletePool.bind(engine);
  const replace = engine.replacePool.bind(engine);
  const timed =
    <A extends unknown[], R>(fn: (...args: A) => R) =>
    (...args: A): R => {
      const t = performance.now();
      try {
        return fn(...args);
      } finally {
        acc.ms += performance.now() - t;
        acc.calls++;
      }
    };
  engine.appendSortedRun = timed(append);
  engine.deletePool = timed(remove);
  engine.replacePool = timed(replace);
}

interface IoTimes {
  writes: number;
  writeMs: number;
  datasyncs: number;
  datasyncMs: number;
  /** Individual fdatasync durations (ms), for percentiles. */
  datasyncSamples: number[];
}

function newIoTimes(): IoTimes {
  return { writes: 0, writeMs: 0, datasyncs: 0, datasyncMs: 0, datasyncSamples: [] };
}

/** nodeFileLayer with every write and fdatasync timed (through the store's FileLayer seam). */
function timedFileLayer(io: { current: IoTimes }): FileLayer {
  return {
    ...nodeFileLayer,
    async open(path, mode) {
      const handle = await nodeFileLayer.open(path, mode);
      return {
        size: () => handle.size(),
        read: (into, position) => handle.read(into, position),
        truncate: (length) => handle.truncate(length),
        close: () => handle.close(),
        async write(chunks, position) {
          const t = performance.now();
          await handle.write(chunks, position);
          io.current.writeMs += performance.now() - t;
          io.current.writes++;
        },
        async datasync() {
          const t = performance.now();
          await handle.datasync();
          const d = performance.now() - t;
          io.current.datasyncMs += d;
          io.current.datasyncs++;
          if (io.current.datasyncSamples.length < 1e6) io.current.datasyncSamples.push(d);
        },
      };
    },
  };
}

function killSelf(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

// ---- 1. build a snapshot -----------------------------------------------------------

export interface BuildArgs {
  dataDir: string;
  pools: number;
  perPool: number;
  seed: number;
}

export interface BuildResult extends Omit<TimedSnapshotWrite, 'summary'> {
  generateMs: number;
  values: number;
  pools: number;
  runs: number;
  bytes: number;
  memory: ReturnType<typeof memory>;
}

export function buildTask(a: BuildArgs): BuildResult {
  const t0 = performance.now();
  const pools = buildPools(a.pools, a.perPool, a.seed);
  const generateMs = performance.now() - t0;
  const w = writeSnapshotTimed(a.dataDir, 1, pools);
  return {
    generateMs,
    values: w.summary.values,
    pools: w.summary.pools,
    runs: w.summary.runs,
    bytes: w.summary.bytes,
    file: w.file,
    writeMs: w.writeMs,
    fdatasyncMs: w.fdatasyncMs,
    renameMs: w.renameMs,
    totalMs: w.totalMs,
    memory: memory(),
  };
}

// ---- 2. load (recovery), optionally then store.snapshotNow() ---------------------------

export interface LoadArgs {
  dataDir: string;
  /** After loading, change one tiny pool and time store.snapshotNow(). */
  snapshot: boolean;
}

export interface LoadResult {
  /** performance.now() at the start of the task: node start-up + module loading. */
  bootMs: number;
  createEngineMs: number;
  /** openDurableStore() as the caller sees it (recovery + first WAL segment). */
  openMs: number;
  /** stats().recovery.durationMs (Date.now() resolution). */
  recoveryMs: number;
  /** Process start (performance.timeOrigin) → store open. */
  processToOpenMs: number;
  recovery: DurableStoreStats['recovery'];
  engine: { pools: number; values: number; runs: number };
  /** Time inside engine.replacePool / appendSortedRun during recovery. */
  engineApplyMs: number;
  memory: ReturnType<typeof memory>;
  snapshot?: {
    /** await store.snapshotNow() as the caller sees it. */
    ms: number;
    /** stats().lastSnapshotMs. */
    storeMs: number | null;
    file: string;
    bytes: number;
    values: number;
    memoryAfter: ReturnType<typeof memory>;
  };
  closeMs: number;
}

export async function loadTask(a: LoadArgs): Promise<LoadResult> {
  const bootMs = performance.now();
  const t0 = performance.now();
  const engine = await createEngine({ kind: 'wasm' });
  const applied = { ms: 0, calls: 0 };
  timeEngine(engine, applied);
  const t1 = performance.now();
  const store = await openDurableStore({ dataDir: a.dataDir, fsync: 'always', engine, snapshotIntervalMs: 0, snapshotWalBytes: 0 });
  const t2 = performance.now();
  const engineApplyMs = applied.ms;
  const s = engine.stats();
  const result: LoadResult = {
    bootMs,
    createEngineMs: t1 - t0,
    openMs: t2 - t1,
    recoveryMs: store.stats().recovery.durationMs,
    processToOpenMs: t2,
    recovery: store.stats().recovery,
    engine: { pools: s.pools, values: s.values, runs: s.runs },
    engineApplyMs,
    memory: memory(),
    closeMs: 0,
  };
  if (a.snapshot) {
    // Something must change, or snapshotNow() has nothing to do. A new pool
    // keeps the big pools' runs exactly as loaded.
    await store.append(2 ** 40, trustSorted(Float64Array.of(0.5)));
    const t3 = performance.now();
    await store.snapshotNow();
    const t4 = performance.now();
    const files = snapshotFiles(a.dataDir);
    const last = files[files.length - 1];
    result.snapshot = {
      ms: t4 - t3,
      storeMs: store.stats().lastSnapshotMs,
      file: last.name,
      bytes: last.bytes,
      values: engine.stats().values,
      memoryAfter: memory(),
    };
  }
  const t5 = performance.now();
  await store.close(); // nothing changed since the last snapshot: no snapshot here
  result.closeMs = performance.now() - t5;
  return result;
}

// ---- 2b. where a load's time goes ------------------------------------------------------

export interface LoadPartsResult {
  /** readSnapshotFile: allocate runs, read them, CRC them (what recovery does first). */
  readSnapshotMs: number;
  /** CRC32C of every loaded run again, data hot in memory: the CRC's share. */
  crcAgainMs: number;
  crcGBps: number;
  /** engine.replacePool for every pool (what recovery does next). */
  replacePoolMs: number;
  bytes: number;
}

export async function loadPartsTask(a: { dataDir: string }): Promise<LoadPartsResult> {
  const files = snapshotFiles(a.dataDir);
  const path = join(a.dataDir, files[files.length - 1].name);
  const engine = await createEngine({ kind: 'wasm' });
  const t0 = performance.now();
  const snap = await readSnapshotFile(nodeFileLayer, path);
  const t1 = performance.now();
  if (snap.version !== 2) throw new Error('the bench writes version 2 snapshots');
  let crc = 0;
  for (const pool of snap.pools) {
    for (const bucket of pool.buckets) {
      for (const { values: run } of bucket.runs) crc = crc32cOf(new Uint8Array(run.buffer, run.byteOffset, run.byteLength), crc);
    }
  }
  const t2 = performance.now();
  for (const pool of snap.pools) engine.restorePool(pool.poolId, pool);
  const t3 = performance.now();
  if (crc === 0.5) console.log('impossible'); // keep the work observable
  return {
    readSnapshotMs: t1 - t0,
    crcAgainMs: t2 - t1,
    crcGBps: (snap.values * 8) / 1e9 / ((t2 - t1) / 1e3),
    replacePoolMs: t3 - t2,
    bytes: snap.bytes,
  };
}

// ---- 2c. the cost of fresh memory alone ------------------------------------------------

export interface AllocResult {
  /** allocateRun for `pools` runs of `perPool` values, then one write per 4 KiB page. */
  allocTouchMs: number;
  mibPerSec: number;
  msPerMiB: number;
}

/** In a fresh process: what the runs of a load cost before a single byte is read. */
export function allocTask(a: { pools: number; perPool: number }): AllocResult {
  const t0 = performance.now();
  const runs: Float64Array[] = [];
  for (let p = 0; p < a.pools; p++) {
    const run = allocateRun(a.perPool);
    for (let i = 0; i < run.length; i += 512) run[i] = 1; // touch every 4 KiB page
    runs.push(run);
  }
  const ms = performance.now() - t0;
  const mib = (a.pools * a.perPool * 8) / MiB;
  if (runs.length < 0) console.log('impossible');
  return { allocTouchMs: ms, mibPerSec: mib / (ms / 1e3), msPerMiB: ms / mib };
}

// ---- 3. WAL: write one (never, no snapshots), then SIGKILL; replay it ----------------

export interface WalWriteArgs {
  dataDir: string;
  appends: number;
  values: number;
  pools: number;
  seed: number;
}

export interface WalWriteResult {
  appends: number;
  values: number;
  walBytes: number;
  expectedWalBytes: number;
  submitMs: number;
  /** Until every record was written (to the page cache) by the flusher. */
  writtenMs: number;
  writes: number;
  fdatasyncs: number;
}

/** Appends through the store (fsync 'never', no snapshots), waits until all is written, emits, SIGKILLs itself. */
export async function walWriteTask(a: WalWriteArgs): Promise<never> {
  const engine = await createEngine({ kind: 'wasm' });
  // Bounds raised so that the whole log is taken in one go (it is submitted
  // faster than a server would receive it); no snapshots, so it all stays in the log.
  const store = await openDurableStore({
    dataDir: a.dataDir,
    fsync: 'never',
    engine,
    snapshotIntervalMs: 0,
    snapshotWalBytes: 0,
    maxPendingRecords: a.appends + 1000,
    maxPendingBytes: 4 * walBytesFor(a.appends, a.values),
  });
  const next = rng32(a.seed);
  const t0 = performance.now();
  for (let i = 0; i < a.appends; i++) {
    const run = allocateRun(a.values);
    let v = 0;
    for (let j = 0; j < a.values; j++) run[j] = v += (next() + 1) * 2.3283064365386963e-10;
    store.append(i % a.pools, trustSorted(run));
    if ((i & 1023) === 1023) await turn(); // let the flusher take a batch, as request turns would
  }
  const t1 = performance.now();
  const expected = walBytesFor(a.appends, a.values);
  while (store.stats().walBytes < expected) await new Promise((r) => setTimeout(r, 2));
  const t2 = performance.now();
  const st = store.stats();
  emitResult({
    appends: a.appends,
    values: a.values,
    walBytes: st.walBytes,
    expectedWalBytes: expected,
    submitMs: t1 - t0,
    writtenMs: t2 - t0,
    writes: st.writes,
    fdatasyncs: st.fdatasyncs,
  } satisfies WalWriteResult);
  return killSelf();
}

export interface ReplayResult {
  openMs: number;
  /** Time inside engine.appendSortedRun / deletePool (incl. the merges they trigger). */
  engineApplyMs: number;
  recovery: DurableStoreStats['recovery'];
  engine: { pools: number; values: number; runs: number };
  walBytes: number;
  memory: ReturnType<typeof memory>;
}

/** Recovers the WAL into a fresh engine, emits, SIGKILLs itself (the log stays as it is). */
export async function replayTask(a: { dataDir: string }): Promise<never> {
  const engine = await createEngine({ kind: 'wasm' });
  const applied = { ms: 0, calls: 0 };
  timeEngine(engine, applied);
  const t0 = performance.now();
  const store = await openDurableStore({ dataDir: a.dataDir, fsync: 'never', engine, snapshotIntervalMs: 0, snapshotWalBytes: 0 });
  const t1 = performance.now();
  const s = engine.stats();
  emitResult({
    openMs: t1 - t0,
    engineApplyMs: applied.ms,
    recovery: store.stats().recovery,
    engine: { pools: s.pools, values: s.values, runs: s.runs },
    walBytes: store.stats().walBytes,
    memory: memory(),
  } satisfies ReplayResult);
  return killSelf();
}

// ---- 4. group commit ----------------------------------------------------------------

export interface CommitArgs {
  dataDir: string;
  fsync: FsyncPolicy;
  inflight: number;
  values: number;
  pools: number;
  warmupMs: number;
  durationMs: number;
  /** Store options to override (undefined: the library defaults). */
  maxPendingRecords?: number;
  maxPendingBytes?: number;
}

export interface CommitResult {
  fsync: FsyncPolicy;
  inflight: number;
  values: number;
  seconds: number;
  appends: number;
  refused: number;
  firstRefusalAfterAppends: number | null;
  firstRefusal: string | null;
  appendsPerSec: number;
  valuesPerSec: number;
  writes: number;
  fdatasyncs: number;
  fdatasyncsPerSec: number;
  /** Records per writev. */
  recordsPerWrite: number;
  /** Appends per fdatasync (0 fdatasyncs: null). */
  appendsPerFdatasync: number | null;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  walBytes: number;
  pendingRecordsAtEnd: number;
  cpuUserSec: number;
  cpuSystemSec: number;
  /** Measured at the FileLayer during the timed window: writev and fdatasync durations (as awaited, thread-pool queueing included). */
  io: { writeMeanMs: number; fdatasyncMeanMs: number; fdatasyncP50Ms: number; fdatasyncP99Ms: number; ioBusyFraction: number };
  options: { maxPendingRecords: number | 'default'; maxPendingBytes: number | 'default' };
}

/**
 * `inflight` submitters, each: append 10 values, wait for the answer (under
 * 'always' a promise settled after the fdatasync; under 'never' the outcome,
 * synchronously), then yield one event-loop turn (setImmediate) — as requests
 * arriving on sockets would, and so that the flusher (scheduled with
 * setImmediate) gets to run under 'never' at all.
 */
export async function commitTask(a: CommitArgs): Promise<CommitResult> {
  const engine: QuantileEngine = await createEngine({ kind: 'wasm' });
  const io = { current: newIoTimes() };
  const store: DurableStore = await openDurableStore({
    dataDir: a.dataDir,
    fsync: a.fsync,
    engine,
    files: timedFileLayer(io),
    snapshotIntervalMs: 0,
    snapshotWalBytes: 0,
    ...(a.maxPendingRecords !== undefined ? { maxPendingRecords: a.maxPendingRecords } : {}),
    ...(a.maxPendingBytes !== undefined ? { maxPendingBytes: a.maxPendingBytes } : {}),
  });
  const next = rng32(7);
  const ring: SortedRun[] = [];
  for (let i = 0; i < 4096; i++) {
    const run = new Float64Array(a.values);
    let v = 0;
    for (let j = 0; j < a.values; j++) run[j] = v += (next() + 1) * 2.3283064365386963e-10;
    ring.push(trustSorted(run)); // immutable: the engine may hold the same run in several pools
  }

  let measuring = false;
  let stop = false;
  let ok = 0;
  let refused = 0;
  let total = 0;
  let firstRefusalAfterAppends: number | null = null;
  let firstRefusal: string | null = null;
  const lat = new Float64Array(1 << 20);
  let latN = 0;
  let k = 0;

  const submitter = async (id: number): Promise<void> => {
    while (!stop) {
      const run = ring[k++ & 4095];
      const pool = (k * 7919 + id) % a.pools;
      const t = performance.now();
      try {
        const r = store.append(pool, run);
        if (r instanceof Promise) await r;
        total++;
        if (measuring) {
          ok++;
          if (latN < lat.length) lat[latN++] = performance.now() - t;
        }
      } catch (err) {
        if (!(err instanceof PoolqError) || err.code !== 'unavailable') throw err;
        if (firstRefusal === null) {
          firstRefusal = err.message;
          firstRefusalAfterAppends = total;
        }
        if (measuring) refused++;
      }
      await turn();
    }
  };

  const workers: Promise<void>[] = [];
  for (let i = 0; i < a.inflight; i++) workers.push(submitter(i));
  await new Promise((r) => setTimeout(r, a.warmupMs));
  const s0 = store.stats();
  const c0 = process.cpuUsage();
  io.current = newIoTimes();
  const t0 = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, a.durationMs));
  measuring = false;
  const t1 = performance.now();
  const c1 = process.cpuUsage(c0);
  const s1 = store.stats();
  const ioTimes = io.current;
  io.current = newIoTimes();
  stop = true;
  await Promise.all(workers);

  const seconds = (t1 - t0) / 1000;
  const writes = s1.writes - s0.writes;
  const fdatasyncs = s1.fdatasyncs - s0.fdatasyncs;
  const sorted = lat.slice(0, latN).sort();
  const pct = (q: number) => (latN === 0 ? Number.NaN : sorted[Math.min(latN - 1, Math.floor(q * latN))]);
  let sum = 0;
  for (let i = 0; i < latN; i++) sum += sorted[i];
  // No close(): it would snapshot everything appended (not part of this measurement).
  return {
    fsync: a.fsync,
    inflight: a.inflight,
    values: a.values,
    seconds,
    appends: ok,
    refused,
    firstRefusalAfterAppends,
    firstRefusal,
    appendsPerSec: ok / seconds,
    valuesPerSec: (ok * a.values) / seconds,
    writes,
    fdatasyncs,
    fdatasyncsPerSec: fdatasyncs / seconds,
    recordsPerWrite: writes > 0 ? ok / writes : 0,
    appendsPerFdatasync: fdatasyncs > 0 ? ok / fdatasyncs : null,
    latencyMs: { p50: pct(0.5), p99: pct(0.99), max: latN ? sorted[latN - 1] : Number.NaN, mean: latN ? sum / latN : Number.NaN },
    walBytes: s1.walBytes,
    pendingRecordsAtEnd: s1.pendingRecords,
    cpuUserSec: c1.user / 1e6,
    cpuSystemSec: c1.system / 1e6,
    io: ioSummary(ioTimes, t1 - t0),
    options: { maxPendingRecords: a.maxPendingRecords ?? 'default', maxPendingBytes: a.maxPendingBytes ?? 'default' },
  };
}

function ioSummary(t: IoTimes, windowMs: number): CommitResult['io'] {
  const d = Float64Array.from(t.datasyncSamples).sort();
  const at = (q: number) => (d.length === 0 ? Number.NaN : d[Math.min(d.length - 1, Math.floor(q * d.length))]);
  return {
    writeMeanMs: t.writes > 0 ? t.writeMs / t.writes : Number.NaN,
    fdatasyncMeanMs: t.datasyncs > 0 ? t.datasyncMs / t.datasyncs : Number.NaN,
    fdatasyncP50Ms: at(0.5),
    fdatasyncP99Ms: at(0.99),
    // One flusher: its writes and fdatasyncs never overlap, so this is the share of the window the log was busy.
    ioBusyFraction: (t.writeMs + t.datasyncMs) / windowMs,
  };
}

// ---- dispatch -------------------------------------------------------------------------

export async function runChildTask(task: string, json: string): Promise<void> {
  const args = JSON.parse(json) as never;
  switch (task) {
    case 'build':
      emitResult(buildTask(args));
      break;
    case 'load':
      emitResult(await loadTask(args));
      break;
    case 'load-parts':
      emitResult(await loadPartsTask(args));
      break;
    case 'alloc':
      emitResult(allocTask(args));
      break;
    case 'wal-write':
      await walWriteTask(args);
      break;
    case 'replay':
      await replayTask(args);
      break;
    case 'commit':
      emitResult(await commitTask(args));
      break;
    default:
      throw new Error(`unknown child task ${task}`);
  }
  process.exit(0);
}
