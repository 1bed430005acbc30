// The durable store end to end on the real file system and on the in-memory
// double: policies, snapshots and log rotation, restart, bit-identical
// quantiles (both engines), unusable data directories.

import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { QuantileEngine } from '../src/core/engine.js';
import { PoolqError } from '../src/core/errors.js';
import { openDurableStore, type DurableStore, type DurableStoreOptions } from '../src/storage/durable-store.js';
import { writeSnapshotFileSync } from '../src/storage/snapshot-format.js';
import { createTestEngine, ENGINE_KINDS } from './helpers/engines.js';
import { PowerCutFs, seededRandom } from './helpers/power-cut-fs.js';
import {
  bits,
  capturingLogger,
  diffState,
  engineState,
  modelState,
  randomValues,
  sortedRun,
  type PoolOp,
} from './helpers/storage-model.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'poolq-store-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(tmpRoot, `d${dirCount++}`);

async function open(dataDir: string, extra: Partial<DurableStoreOptions> = {}): Promise<{ store: DurableStore; engine: QuantileEngine }> {
  const engine = extra.engine ?? (await createTestEngine('ts'));
  const store = await openDurableStore({ dataDir, fsync: 'always', engine, snapshotIntervalMs: 0, ...extra });
  return { store, engine };
}

async function apply(store: DurableStore, op: PoolOp): Promise<unknown> {
  return op.kind === 'append' ? store.append(op.poolId, sortedRun(op.values)) : store.deletePool(op.poolId);
}

function workload(seed: number, n: number, pools = 6): PoolOp[] {
  const random = seededRandom(seed);
  const ops: PoolOp[] = [];
  for (let i = 0; i < n; i++) {
    const poolId = Math.floor(random() * pools);
    if (random() < 0.1) ops.push({ kind: 'delete', poolId });
    else ops.push({ kind: 'append', poolId, values: Float64Array.from(randomValues(random, 1 + Math.floor(random() * 20))) });
  }
  return ops;
}

const PERCENTILES = [0, 0.1, 1, 25, 33.3, 50, 66.6, 75, 99, 99.9, 100];
function quantileBits(engine: QuantileEngine): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const id of engine.poolIds()) out[id] = bits(engine.quantiles(id, PERCENTILES));
  return out;
}

describe('durable store on node:fs', () => {
  it('creates a missing data directory (with parents) and recovers what it acknowledged', async () => {
    const dir = join(freshDir(), 'nested', 'data');
    const ops = workload(1, 200);
    const first = await open(dir);
    for (const op of ops) await apply(first.store, op);
    await first.store.close();
    const names = readdirSync(dir);
    expect(names.some((n) => n.startsWith('snapshot-'))).toBe(true);
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);

    const second = await open(dir);
    expect(diffState(engineState(second.engine), modelState(ops))).toBeNull();
    expect(second.store.recovery.snapshotFile).not.toBeNull();
    await second.store.close();
  });

  it('answers as the policy says: always → Promise after the sync, interval/never → synchronously', async () => {
    for (const fsync of ['always', 'interval', 'never'] as const) {
      const { store, engine } = await open(freshDir(), { fsync });
      const result = store.append(1, sortedRun([3, 1, 2]));
      if (fsync === 'always') {
        expect(result).toBeInstanceOf(Promise);
        expect(engine.hasPool(1)).toBe(false); // not durable yet, so not visible
        expect(await result).toEqual({ created: true, count: 3 });
        expect(store.stats().fdatasyncs).toBeGreaterThan(0);
      } else {
        expect(result).toEqual({ created: true, count: 3 });
        expect(engine.countOf(1)).toBe(3);
      }
      expect(await store.deletePool(1)).toBe(true);
      expect(await store.deletePool(1)).toBe(false);
      await store.close();
    }
  });

  it('interval fdatasyncs within fsyncIntervalMs', async () => {
    const { store } = await open(freshDir(), { fsync: 'interval', fsyncIntervalMs: 20 });
    store.append(5, sortedRun([1]));
    await new Promise((r) => setTimeout(r, 120));
    expect(store.stats().durableSeq).toBe(1);
    await store.close();
  });

  it('never fdatasyncs once writes pause for idleSyncMs, releasing the records it held, and not while they keep coming', async () => {
    let released = 0;
    const { store } = await open(freshDir(), { fsync: 'never', idleSyncMs: 150, onRelease: (bytes) => (released += bytes) });
    const atStart = store.stats().fdatasyncs; // creating the first segment syncs the directory
    const started = performance.now();
    // a write every 20 ms for ~400 ms: never idle for 150 ms
    while (performance.now() - started < 400) {
      store.append(5, sortedRun([1, 2, 3]));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(store.stats().fdatasyncs).toBe(atStart);
    expect(store.stats().pendingRecords).toBeGreaterThan(10);
    expect(released).toBe(0);
    await new Promise((r) => setTimeout(r, 400));
    expect(store.stats().fdatasyncs).toBe(atStart + 1);
    expect(store.stats().pendingRecords).toBe(0);
    expect(released).toBeGreaterThan(10 * 24); // every record's bytes, 3 values each at least
    expect(store.stats().durableSeq).toBe(store.stats().appliedSeq);
    await store.close();
  });

  it('snapshots once the log grew snapshotWalBytes or the last snapshot, whichever is larger', async () => {
    const { store } = await open(freshDir(), { snapshotWalBytes: 4096 });
    // A snapshot starts a turn or two after the write that triggers it; give it time either way.
    const settle = async () => {
      await new Promise((r) => setTimeout(r, 100));
      while (store.stats().snapshotInProgress) await new Promise((r) => setTimeout(r, 5));
    };
    const big = () => sortedRun(Array.from({ length: 20_000 }, (_, i) => i)); // 160 KB of run arrays
    const small = () => sortedRun(Array.from({ length: 100 }, (_, j) => j));
    // Under `always` a write triggers a snapshot of what was applied before it: the second append snapshots the first.
    await store.append(1, big());
    await store.append(2, small());
    await settle();
    const first = store.stats().lastSnapshotSeq;
    expect(first).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 30; i++) await store.append(2, small()); // ~25 KB of log: past 4096 bytes, not past the 160 KB snapshot
    await settle();
    expect(store.stats().lastSnapshotSeq).toBe(first);
    await store.append(1, big());
    await store.append(2, small());
    await settle();
    expect(store.stats().lastSnapshotSeq).toBeGreaterThan(first + 30);
    await store.close();
  });

  it('never with idleSyncMs 0 keeps unsynced records until a bound, rotation or close', async () => {
    const { store } = await open(freshDir(), { fsync: 'never', idleSyncMs: 0 });
    const atStart = store.stats().fdatasyncs;
    store.append(5, sortedRun([1]));
    await new Promise((r) => setTimeout(r, 200));
    expect(store.stats().fdatasyncs).toBe(atStart);
    expect(store.stats().pendingRecords).toBe(1);
    await store.close();
  });

  it('snapshots rotate the log and delete what they cover; restart replays only the rest', async () => {
    const dir = freshDir();
    const { store } = await open(dir);
    const ops = workload(2, 300);
    for (const op of ops.slice(0, 150)) await apply(store, op);
    await store.snapshotNow();
    await store.snapshotNow(); // nothing new: no second file
    for (const op of ops.slice(150)) await apply(store, op);
    const names = readdirSync(dir).sort();
    expect(names.filter((n) => n.startsWith('snapshot-'))).toEqual(['snapshot-0000000000000096.bin']);
    expect(names.filter((n) => n.startsWith('wal-'))).toEqual(['wal-0000000000000097.log']);
    expect(store.stats()).toMatchObject({ lastSnapshotSeq: 150, seq: 300, walSegments: 1 });
    await store.close();
    const again = await open(dir);
    expect(again.store.recovery).toMatchObject({ snapshotSeq: 300, recordsReplayed: 0, lastSeq: 300 });
    expect(diffState(engineState(again.engine), modelState(ops))).toBeNull();
    await again.store.close();
  });

  it('after a crash (SIGKILL), restart loads the snapshot and replays only the records after it', async () => {
    let fs = new PowerCutFs();
    const { store } = await open('/data', { files: fs });
    const ops = workload(2, 300);
    for (const op of ops.slice(0, 150)) await apply(store, op);
    await store.snapshotNow();
    for (const op of ops.slice(150)) await apply(store, op);
    fs = fs.processKill();
    const again = await open('/data', { files: fs });
    expect(again.store.recovery).toMatchObject({ snapshotSeq: 150, recordsReplayed: 150, lastSeq: 300 });
    expect(diffState(engineState(again.engine), modelState(ops))).toBeNull();
  });

  it('snapshotWalBytes triggers a snapshot', async () => {
    const dir = freshDir();
    const { store } = await open(dir, { snapshotWalBytes: 4096 });
    for (let i = 0; i < 60; i++) await store.append(i % 3, sortedRun(randomValues(seededRandom(i), 20)));
    await new Promise((r) => setTimeout(r, 50));
    expect(store.stats().lastSnapshotSeq).toBeGreaterThan(0);
    await store.close();
  });

  it.each(ENGINE_KINDS)('recovery is idempotent and quantiles are bit-identical after restart (%s engine)', async (kind) => {
    let fs = new PowerCutFs();
    const ops = workload(3, 400, 4);
    const first = await open('/data', { engine: await createTestEngine(kind), files: fs });
    for (let i = 0; i < ops.length; i++) {
      await apply(first.store, ops[i]);
      if (i === 200) await first.store.snapshotNow();
    }
    const before = quantileBits(first.engine);
    expect(Object.keys(before).length).toBeGreaterThan(0);
    // Crash, recover from snapshot + log; crash again straight away, recover again.
    fs = fs.powerCut(seededRandom(1));
    const second = await open('/data', { engine: await createTestEngine(kind), files: fs });
    expect(quantileBits(second.engine)).toEqual(before);
    fs = fs.powerCut(seededRandom(2));
    const third = await open('/data', { engine: await createTestEngine(kind), files: fs });
    expect(quantileBits(third.engine)).toEqual(before);
    expect(diffState(engineState(third.engine), engineState(first.engine))).toBeNull();
    // And through a clean shutdown (final snapshot) on the real disk.
    const dir = freshDir();
    const onDisk = await open(dir, { engine: await createTestEngine(kind) });
    for (const op of ops) await apply(onDisk.store, op);
    await onDisk.store.close();
    const reopened = await open(dir, { engine: await createTestEngine(kind) });
    expect(quantileBits(reopened.engine)).toEqual(before);
    await reopened.store.close();
  });

  it('snapshots go through an injectable builder (here the sync writer a worker would run)', async () => {
    const dir = freshDir();
    const calls: { path: string; seq: number; pools: number }[] = [];
    const { store, engine } = await open(dir, {
      buildSnapshot: async (path, seq, pools) => {
        calls.push({ path, seq, pools: pools.length });
        return writeSnapshotFileSync(path, seq, pools);
      },
    });
    const ops = workload(4, 50);
    for (const op of ops) await apply(store, op);
    await store.snapshotNow();
    expect(calls).toEqual([{ path: join(dir, 'snapshot-0000000000000032.bin.tmp'), seq: 50, pools: engine.poolIds().length }]);
    await store.close();
    const again = await open(dir);
    expect(again.store.recovery.snapshotSeq).toBe(50);
    expect(diffState(engineState(again.engine), modelState(ops))).toBeNull();
    await again.store.close();
  });

  it('a snapshot of a large pool does not stall the event loop, and appends go on meanwhile', async () => {
    const dir = freshDir();
    const { store, engine } = await open(dir, { fsync: 'interval' });
    const big = new Float64Array(1 << 22); // 32 MiB, one SharedArrayBuffer run
    for (let i = 0; i < big.length; i++) big[i] = i;
    store.append(1, sortedRun(big.subarray(0, 16)));
    engine.replacePool(1, [sortedRun(big)]); // stand-in for a pool grown by many appends
    let last = performance.now();
    let worstGap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 1);
    const snapshot = store.snapshotNow();
    let appendsDuring = 0;
    while (store.stats().snapshotInProgress || appendsDuring === 0) {
      store.append(2, sortedRun([appendsDuring++]));
      await new Promise((r) => setTimeout(r, 1));
    }
    await snapshot;
    clearInterval(ticker);
    expect(appendsDuring).toBeGreaterThan(0);
    expect(worstGap).toBeLessThan(150);
    await store.close();
  });

  it('refuses changes after close', async () => {
    const { store } = await open(freshDir());
    await store.close();
    await expect(store.append(1, sortedRun([1]))).rejects.toMatchObject({ code: 'unavailable' });
    expect(store.isWritable()).toBe(false);
  });

  it('a data directory under a regular file is a clear start-up error (root ignores chmod, so not chmod 555)', async () => {
    const file = join(freshDir() + '-file');
    writeFileSync(file, 'not a directory');
    const err = await open(join(file, 'data')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolqError);
    expect((err as PoolqError).code).toBe('unavailable');
    expect((err as Error).message).toMatch(/data directory .* is not usable: cannot create it \((ENOTDIR|EEXIST)/);
  });

  it('a read-only data directory is a clear start-up error (EACCES unless running as root)', async () => {
    const dir = freshDir();
    const { store } = await open(dir);
    await store.append(1, sortedRun([1]));
    await store.close();
    chmodSync(dir, 0o555);
    try {
      const attempt = await open(dir).then(
        (s) => s,
        (e: unknown) => e,
      );
      if (process.getuid?.() === 0) {
        // root bypasses permission bits; the FileLayer double covers EROFS/EACCES below.
        expect(attempt).not.toBeInstanceOf(Error);
        await (attempt as { store: DurableStore }).store.close();
      } else {
        expect((attempt as Error).message).toMatch(/not usable.*EACCES/);
      }
    } finally {
      chmodSync(dir, 0o755);
    }
    expect(statSync(dir).isDirectory()).toBe(true);
  });
});

describe('unusable data directory (FileLayer double)', () => {
  for (const code of ['EROFS', 'EACCES']) {
    it(`${code} when creating the first segment → 'unavailable' naming the directory`, async () => {
      const fs = new PowerCutFs();
      fs.injectFault({ op: 'open', code, path: /\.tmp$/, times: Infinity });
      const err = await open('/data', { files: fs }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'unavailable' });
      expect((err as Error).message).toContain('data directory /data is not usable');
      expect((err as Error).message).toContain(code);
    });
  }

  it('EROFS on mkdir → clear error', async () => {
    const fs = new PowerCutFs();
    fs.injectFault({ op: 'mkdir', code: 'EROFS' });
    await expect(open('/data', { files: fs })).rejects.toThrow(/not usable: cannot create it \(EROFS/);
  });
});

describe('options', () => {
  it('validates options piscina-style and wants an empty engine', async () => {
    const engine = await createTestEngine('ts');
    await expect(openDurableStore({ dataDir: '/x', fsync: 'sometimes' as never, engine })).rejects.toThrow(/options.fsync must be/);
    await expect(openDurableStore({ dataDir: '', fsync: 'always', engine })).rejects.toThrow(/options.dataDir must be/);
    await expect(openDurableStore({ dataDir: '/x', fsync: 'always', engine, maxPendingBytes: 0 })).rejects.toThrow(
      /options.maxPendingBytes must be/,
    );
    engine.appendValues(1, Float64Array.of(1));
    await expect(openDurableStore({ dataDir: '/x', fsync: 'always', engine, files: new PowerCutFs() })).rejects.toThrow(
      /options.engine must be an empty engine/,
    );
  });

  it('rejects invalid pool ids and empty runs before logging anything', async () => {
    const { store } = await open('/data', { files: new PowerCutFs(), logger: capturingLogger() });
    expect(() => store.append(-1, sortedRun([1]))).toThrow(/poolId/);
    expect(() => store.append(2 ** 53, sortedRun([1]))).toThrow(/poolId/);
    expect(() => store.append(1, sortedRun([]))).toThrow(/empty/);
    expect(store.stats().seq).toBe(0);
    await store.close();
  });
});
