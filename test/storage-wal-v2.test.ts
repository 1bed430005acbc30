// WAL format version 2 through the store: times reach the engine on the write
// path and at replay; idempotency keys answer retries with the first outcome
// across restarts, snapshots and the key window; transactions are one commit
// and after any crash all there or not at all; retention records reach the
// engine; a version 1 data directory keeps working. Power cuts and SIGKILLs
// are the PowerCutFs double's (test/helpers/power-cut-fs.ts); the real-process
// kill is in storage-keys-sigkill.test.ts.

import { describe, expect, it } from 'vitest';
import type { AppendRunOptions, QuantileEngine } from '../src/core/engine.js';
import { PoolqError } from '../src/core/errors.js';
import type { SortedRun } from '../src/core/sorted-run.js';
import { openDurableStore, type DurableStore, type DurableStoreOptions } from '../src/storage/durable-store.js';
import { IdempotencyConflictError, StorageCorruptionError } from '../src/storage/errors.js';
import { keysFileName } from '../src/storage/keys-file.js';
import type { FsyncPolicy } from '../src/storage/pool-writer.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES, segmentFileName, WAL_VERSION_1, WalFlag, WalOp } from '../src/storage/wal-format.js';
import { encodeRecordV1 } from '../src/storage/wal-record-v1.js';
import { decodeRecordHeaderV2, encodeRecordV2 } from '../src/storage/wal-record-v2.js';
import { createTestEngine } from './helpers/engines.js';
import { PowerCutFs, seededRandom, TAIL_MODES } from './helpers/power-cut-fs.js';
import { capturingLogger, concatBytes, diffState, engineState, modelState, sortedRun, type PoolOp } from './helpers/storage-model.js';

const DIR = '/data';
const T0 = 1_700_000_000_000;

/** A real engine that also records the time of each append and every retention call. */
async function recordingEngine(): Promise<{ engine: QuantileEngine; times: (number | undefined)[]; retention: [number, number | null][] }> {
  const engine = await createTestEngine('ts');
  const times: (number | undefined)[] = [];
  const retention: [number, number | null][] = [];
  const append = engine.appendSortedRun.bind(engine);
  engine.appendSortedRun = (poolId: number, run: SortedRun, options?: AppendRunOptions) => {
    times.push(options?.atMs);
    return append(poolId, run, options);
  };
  const setRetention = engine.setRetention.bind(engine);
  engine.setRetention = (poolId, windowSeconds, options) => {
    retention.push([poolId, windowSeconds]);
    return setRetention(poolId, windowSeconds, options);
  };
  return { engine, times, retention };
}

function open(fs: PowerCutFs, engine: QuantileEngine, extra: Partial<DurableStoreOptions> = {}): Promise<DurableStore> {
  return openDurableStore({ dataDir: DIR, fsync: 'always', engine, files: fs, snapshotIntervalMs: 0, logger: capturingLogger(), ...extra });
}

/** A clock the test moves. */
function manualClock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** The records of a segment the store wrote, decoded (version 2). */
function recordsOf(bytes: Uint8Array) {
  const out = [];
  for (let at = SEGMENT_HEADER_BYTES; at < bytes.length;) {
    const h = decodeRecordHeaderV2(bytes.subarray(at, at + 48));
    if (h === null) break;
    out.push({ ...h, at });
    at += h.length;
  }
  return out;
}

const POLICIES: FsyncPolicy[] = ['always', 'interval', 'never'];

/** The records of segment `firstSeq` once `count` are on disk (interval/never write on the next event-loop turn). */
async function writtenRecords(fs: PowerCutFs, firstSeq: number, count: number) {
  const path = `${DIR}/${segmentFileName(firstSeq)}`;
  for (let waited = 0; ; waited++) {
    const records = recordsOf(fs.readBytes(path));
    if (records.length >= count || waited > 200) return records;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('record times', () => {
  it('every record carries the time the change was accepted (atMs or the clock), and the engine gets it on the write path and at replay', async () => {
    const fs = new PowerCutFs();
    const clock = manualClock();
    const first = await recordingEngine();
    const store = await open(fs, first.engine, { clock: clock.now });
    await store.append(1, sortedRun([1, 2]));
    clock.advance(1500);
    await store.append(2, sortedRun([3]), { atMs: T0 - 60_000 });
    await store.appendAll([
      { poolId: 1, run: sortedRun([4]) },
      { poolId: 3, run: sortedRun([5]) },
    ]);
    await store.deletePool(2);
    expect(first.times).toEqual([T0, T0 - 60_000, T0 + 1500, T0 + 1500]);

    const records = recordsOf(fs.readBytes(`${DIR}/${segmentFileName(1)}`));
    expect(records.map((r) => [r.op, r.timeMs])).toEqual([
      [WalOp.append, T0],
      [WalOp.append, T0 - 60_000],
      [WalOp.append, T0 + 1500],
      [WalOp.append, T0 + 1500],
      [WalOp.delete, T0 + 1500],
    ]);

    const again = await recordingEngine();
    await open(fs.processKill(), again.engine);
    expect(again.times).toEqual(first.times);
  });

  it('refuses an atMs that is not a non-negative integer, logging nothing', async () => {
    const fs = new PowerCutFs();
    const store = await open(fs, await createTestEngine('ts'));
    for (const atMs of [-1, 1.5, Number.NaN, 2 ** 53, '5' as unknown as number]) {
      expect(() => store.append(1, sortedRun([1]), { atMs })).toThrowError(
        expect.objectContaining({ code: 'invalid_request', field: 'atMs' }),
      );
    }
    expect(store.stats().seq).toBe(0);
    await store.close();
  });
});

describe('idempotency keys', () => {
  it.each(POLICIES)('%s: a retry gets the first outcome, marked replayed, and appends nothing', async (fsync) => {
    const fs = new PowerCutFs();
    const engine = await createTestEngine('ts');
    const store = await open(fs, engine, { fsync });
    expect(await store.append(5, sortedRun([1, 2, 3]), { key: 'order-1' })).toEqual({ created: true, count: 3 });
    expect(await store.append(5, sortedRun([4]))).toEqual({ created: false, count: 4 });
    const seq = store.stats().seq;
    expect(await store.append(5, sortedRun([9, 9, 9]), { key: 'order-1' })).toEqual({ created: true, count: 3, replayed: true });
    expect(await store.appendKeyed(5, sortedRun([7, 7, 7]), 'order-1')).toEqual({ created: true, count: 3, replayed: true });
    expect(engine.countOf(5)).toBe(4);
    expect(store.stats().seq).toBe(seq);
    await store.close();
  });

  it('a key reused for another pool, another value count or another shape is an idempotency_conflict, and nothing is applied', async () => {
    const fs = new PowerCutFs();
    const engine = await createTestEngine('ts');
    const store = await open(fs, engine);
    await store.append(5, sortedRun([1, 2]), { key: 'k' });
    const attempts = [
      () => store.append(6, sortedRun([1, 2]), { key: 'k' }),
      () => store.append(5, sortedRun([1, 2, 3]), { key: 'k' }),
      () =>
        store.appendAll(
          [
            { poolId: 5, run: sortedRun([1, 2]) },
            { poolId: 6, run: sortedRun([1]) },
          ],
          { key: 'k' },
        ),
    ];
    for (const attempt of attempts) {
      let error: unknown;
      try {
        await attempt();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(IdempotencyConflictError);
      expect(error).toBeInstanceOf(PoolqError);
      expect(error).toMatchObject({ reason: 'idempotency_conflict', code: 'invalid_request', field: 'key', key: 'k' });
    }
    expect(engine.poolIds()).toEqual([5]);
    expect(engine.countOf(5)).toBe(2);
    expect(store.stats().seq).toBe(1);
    await store.close();
  });

  it('always: a retry while the first is still on its way to the disk shares its commit', async () => {
    const fs = new PowerCutFs();
    fs.syncDelayMs = 20;
    const engine = await createTestEngine('ts');
    const store = await open(fs, engine);
    const first = store.append(1, sortedRun([1]), { key: 'same' });
    const retry = store.append(1, sortedRun([2]), { key: 'same' });
    expect(await first).toEqual({ created: true, count: 1 });
    expect(await retry).toEqual({ created: true, count: 1, replayed: true });
    expect(engine.countOf(1)).toBe(1);
    expect(store.stats().seq).toBe(1);
    await store.close();
  });

  it('a change refused by the disk frees its key: the retry appends', async () => {
    const fs = new PowerCutFs();
    const engine = await createTestEngine('ts');
    const store = await open(fs, engine, { retryBackoffMs: 0 });
    fs.injectFault({ op: 'datasync', code: 'EIO', path: /wal-/, times: 2 });
    await expect(store.append(1, sortedRun([1]), { key: 'x' })).rejects.toMatchObject({ code: 'unavailable' });
    expect(engine.hasPool(1)).toBe(false);
    expect(await store.append(1, sortedRun([1]), { key: 'x' })).toEqual({ created: true, count: 1 });
    await store.close();
  });

  it('keys survive a restart through the log, and through a snapshot (its key file) with the log it covers deleted', async () => {
    let fs = new PowerCutFs();
    const store = await open(fs, await createTestEngine('ts'));
    await store.append(1, sortedRun([1, 2]), { key: 'before-snapshot' });
    await store.appendAll(
      [
        { poolId: 2, run: sortedRun([3]) },
        { poolId: 1, run: sortedRun([4]) },
      ],
      { key: 'batch' },
    );
    await store.snapshotNow();
    await store.append(3, sortedRun([5]), { key: 'after-snapshot' });
    expect(fs.list(DIR)).toContain(keysFileName(3));
    expect(fs.list(DIR).filter((n) => n.startsWith('wal-'))).toEqual([segmentFileName(4)]);

    fs = fs.processKill();
    const engine = await createTestEngine('ts');
    const again = await open(fs, engine);
    expect(again.recovery).toMatchObject({ snapshotSeq: 3, recordsReplayed: 1 });
    expect(await again.append(1, sortedRun([7, 7]), { key: 'before-snapshot' })).toEqual({ created: true, count: 2, replayed: true });
    expect(
      await again.appendAll(
        [
          { poolId: 2, run: sortedRun([0]) },
          { poolId: 1, run: sortedRun([0]) },
        ],
        { key: 'batch' },
      ),
    ).toEqual([
      { created: true, count: 1, replayed: true },
      { created: false, count: 3, replayed: true },
    ]);
    expect(await again.append(3, sortedRun([0]), { key: 'after-snapshot' })).toEqual({ created: true, count: 1, replayed: true });
    expect(diffState(engineState(engine), modelState(appends([1, [1, 2]], [2, [3]], [1, [4]], [3, [5]])))).toBeNull();
    expect(again.stats().seq).toBe(4);
  });

  it('a key is remembered for the window (from its record time) and forgotten after it', async () => {
    let fs = new PowerCutFs();
    const clock = manualClock();
    const engine = await createTestEngine('ts');
    const store = await open(fs, engine, { clock: clock.now, idempotencyWindowMs: 60_000 });
    await store.append(1, sortedRun([1]), { key: 'a' });
    clock.advance(59_000);
    expect(await store.append(1, sortedRun([1]), { key: 'a' })).toMatchObject({ replayed: true });
    await store.append(2, sortedRun([1]), { key: 'b' });
    clock.advance(2_000);
    expect(await store.append(1, sortedRun([1]), { key: 'a' })).toEqual({ created: false, count: 2 }); // a new append
    expect(await store.append(2, sortedRun([1]), { key: 'b' })).toMatchObject({ replayed: true });

    // The same holds after a restart: expiry is counted from the logged times.
    fs = fs.processKill();
    clock.advance(30_000); // 'b' is 32 s old, the new 'a' 30 s
    const again = await open(fs, await createTestEngine('ts'), { clock: clock.now, idempotencyWindowMs: 60_000 });
    expect(await again.append(1, sortedRun([1]), { key: 'a' })).toMatchObject({ replayed: true, count: 2 });
    clock.advance(29_000);
    expect(await again.append(2, sortedRun([1]), { key: 'b' })).toEqual({ created: false, count: 2 });
  });

  it('at most maxIdempotencyKeys are kept, the oldest forgotten first', async () => {
    const store = await open(new PowerCutFs(), await createTestEngine('ts'), { maxIdempotencyKeys: 3 });
    for (const key of ['k1', 'k2', 'k3', 'k4']) await store.append(1, sortedRun([1]), { key });
    expect(await store.append(1, sortedRun([1]), { key: 'k1' })).toEqual({ created: false, count: 5 });
    expect(await store.append(1, sortedRun([1]), { key: 'k4' })).toMatchObject({ replayed: true });
    await store.close();
  });

  it('refuses keys that are empty, over 64 bytes of UTF-8 or not strings', async () => {
    const store = await open(new PowerCutFs(), await createTestEngine('ts'));
    expect(await store.append(1, sortedRun([1]), { key: 'é'.repeat(32) })).toEqual({ created: true, count: 1 }); // 64 bytes
    for (const key of ['', 'é'.repeat(32) + 'x', 'x'.repeat(65), 42 as unknown as string]) {
      expect(() => store.append(1, sortedRun([1]), { key })).toThrowError(
        expect.objectContaining({ code: 'invalid_request', field: 'key' }),
      );
    }
    expect(store.stats().seq).toBe(1);
    await store.close();
  });

  it('a damaged key file refuses start-up naming it; an orphaned one (its snapshot never renamed) is removed', async () => {
    const fs = new PowerCutFs();
    const store = await open(fs, await createTestEngine('ts'));
    await store.append(1, sortedRun([1]), { key: 'a' });
    await store.close(); // final snapshot at seq 1, with its key file
    const name = keysFileName(1);
    const good = fs.readBytes(`${DIR}/${name}`);

    const damaged = fs.processKill();
    const bytes = good.slice();
    bytes[bytes.length - 3] ^= 0x40;
    damaged.writeBytes(`${DIR}/${name}`, bytes);
    await expect(open(damaged, await createTestEngine('ts'))).rejects.toThrowError(StorageCorruptionError);
    await expect(open(damaged, await createTestEngine('ts'))).rejects.toThrowError(
      new RegExp(`${name} is corrupt at byte offset 40: body CRC mismatch`),
    );

    const orphan = fs.processKill();
    orphan.writeBytes(`${DIR}/${keysFileName(9)}`, good);
    await open(orphan, await createTestEngine('ts'));
    expect(orphan.list(DIR)).not.toContain(keysFileName(9));
    expect(orphan.list(DIR)).toContain(name);
  });
});

function appends(...ops: [number, number[]][]): PoolOp[] {
  return ops.map(([poolId, values]) => ({ kind: 'append', poolId, values: Float64Array.from(values) }));
}

describe('transactions (appendAll)', () => {
  it.each(POLICIES)('%s: one commit, one answer, an outcome per item in order', async (fsync) => {
    const fs = new PowerCutFs();
    const engine = await createTestEngine('ts');
    const store = await open(fs, engine, { fsync });
    await store.append(2, sortedRun([0]));
    const writesBefore = fs.events.filter((e) => e.op === 'write').length;
    const outcomes = await store.appendAll([
      { poolId: 1, run: sortedRun([1, 2]) },
      { poolId: 2, run: sortedRun([3]) },
      { poolId: 1, run: sortedRun([4]) },
    ]);
    expect(outcomes).toEqual([
      { created: true, count: 2 },
      { created: false, count: 2 },
      { created: false, count: 3 },
    ]);
    const records = await writtenRecords(fs, 1, 4);
    expect(records.map((r) => [r.seq, r.poolId, r.flags])).toEqual([
      [1, 2, 0],
      [2, 1, WalFlag.continues],
      [3, 2, WalFlag.continues],
      [4, 1, 0],
    ]);
    // The three records went out in one write.
    expect(fs.events.filter((e) => e.op === 'write').length - writesBefore).toBe(1);
    await store.close();
  });

  it('always: one fdatasync acknowledges the whole transaction, and the engine shows none of it before', async () => {
    const fs = new PowerCutFs();
    fs.syncDelayMs = 5;
    const engine = await createTestEngine('ts');
    const store = await open(fs, engine);
    const syncsBefore = store.stats().fdatasyncs;
    const items = Array.from({ length: 50 }, (_, i) => ({ poolId: i, run: sortedRun([i]) }));
    const pending = store.appendAll(items);
    await new Promise((r) => setTimeout(r, 2));
    expect(engine.poolIds()).toEqual([]);
    expect((await pending).length).toBe(50);
    expect(store.stats().fdatasyncs - syncsBefore).toBe(1);
    expect(engine.poolIds().length).toBe(50);
    await store.close();
  });

  it('refuses bad items before logging anything', async () => {
    const engine = await createTestEngine('ts');
    const store = await open(new PowerCutFs(), engine);
    const bad = [
      [],
      [{ poolId: -1, run: sortedRun([1]) }],
      [
        { poolId: 1, run: sortedRun([1]) },
        { poolId: 2, run: sortedRun([]) },
      ],
    ];
    for (const items of bad) expect(() => store.appendAll(items)).toThrowError(expect.objectContaining({ code: 'invalid_request' }));
    expect(() =>
      store.appendAll([
        { poolId: 1, run: sortedRun([1]) },
        { poolId: 2, run: sortedRun([]) },
      ]),
    ).toThrowError(expect.objectContaining({ field: 'items[1].run' }));
    expect(store.stats().seq).toBe(0);
    expect(engine.poolIds()).toEqual([]);
    await store.close();
  });

  it('a transaction cut anywhere in its write (every length, zeros or garbage after) is not applied, and its bytes are cut off', async () => {
    const fs = new PowerCutFs();
    const store = await open(fs, await createTestEngine('ts'));
    await store.append(9, sortedRun([9]));
    await store.appendAll([
      { poolId: 1, run: sortedRun([1, 2]) },
      { poolId: 2, run: sortedRun([3]) },
      { poolId: 1, run: sortedRun([4]) },
    ]);
    const image = fs.processKill();
    const path = `${DIR}/${segmentFileName(1)}`;
    const full = image.readBytes(path);
    const [, txnStart] = recordsOf(full).map((r) => r.at);
    const random = seededRandom(4);
    for (let cut = txnStart; cut < full.length; cut++) {
      for (const fill of ['none', 'zeros', 'garbage'] as const) {
        const disk = image.processKill();
        const tail =
          fill === 'none' ? new Uint8Array(0) : Uint8Array.from({ length: 24 }, () => (fill === 'zeros' ? 0 : Math.floor(random() * 256)));
        disk.writeBytes(path, concatBytes(full.subarray(0, cut), tail));
        const engine = await createTestEngine('ts');
        const logger = capturingLogger();
        const reopened = await open(disk, engine, { logger });
        expect(diffState(engineState(engine), modelState(appends([9, [9]]))), `cut at ${cut}, ${fill}`).toBeNull();
        expect(reopened.recovery).toMatchObject({ lastSeq: 1, tornBytes: cut - txnStart + tail.length });
        expect(disk.readBytes(path).length).toBe(txnStart);
        if (cut > txnStart || tail.length > 0) expect(logger.lines.some((l) => l.msg === 'wal: cut torn tail')).toBe(true);
        // The next change takes seq 2, and a restart keeps exactly that.
        await reopened.append(5, sortedRun([5]));
        const third = await createTestEngine('ts');
        await open(disk.processKill(), third);
        expect(diffState(engineState(third), modelState(appends([9, [9]], [5, [5]])))).toBeNull();
      }
    }
  });

  it.each(['always', 'interval'] as const)(
    '%s: after a power cut at any file operation, each transaction is all there or not at all',
    async (fsync) => {
      for (let seed = 0; seed < 30; seed++) {
        const random = seededRandom(100 + seed);
        const fs = new PowerCutFs();
        const store = await open(fs, await createTestEngine('ts'), { fsync, fsyncIntervalMs: 2, snapshotWalBytes: 2000 });
        const dieAt = fs.events.length + 10 + Math.floor(random() * 150);
        const dead = new Promise<void>((resolve) => {
          fs.trap = (ev) => {
            if (ev.index < dieAt) return 'none';
            setImmediate(resolve);
            return random() < 0.5 ? 'crash-mid' : 'crash-before';
          };
        });
        const batches: { id: number; size: number; lastSeq: number; acked: boolean }[] = [];
        const body = async () => {
          for (let b = 0; b < 80; b++) {
            const size = 1 + Math.floor(random() * 6);
            // Transaction b puts the value b into each of `size` pools (b * 10 + i).
            const items = Array.from({ length: size }, (_, i) => ({ poolId: b * 10 + i, run: sortedRun([b]) }));
            const pending = store.appendAll(items);
            const batch = { id: b, size, lastSeq: store.stats().seq, acked: false };
            batches.push(batch);
            const settled = Promise.resolve(pending).then(() => void (batch.acked = fsync === 'always'));
            if (random() < 0.5) await settled;
            else await new Promise((r) => setImmediate(r));
            if (random() < 0.1) await store.snapshotNow();
          }
        };
        await Promise.race([body().catch(() => {}), dead]);
        if (fsync === 'interval') for (const b of batches) if (b.lastSeq <= store.stats().durableSeq) b.acked = true;
        const disk = fs.powerCut(random, TAIL_MODES[seed % TAIL_MODES.length]);
        const engine = await createTestEngine('ts');
        await open(disk, engine);
        for (const batch of batches) {
          const present = Array.from({ length: batch.size }, (_, i) => engine.countOf(batch.id * 10 + i) === 1);
          const all = present.every(Boolean);
          expect(all || present.every((p) => !p), `seed ${seed}: transaction ${batch.id} half applied (${present.join(',')})`).toBe(true);
          if (batch.acked) expect(all, `seed ${seed}: acknowledged transaction ${batch.id} lost`).toBe(true);
        }
      }
    },
  );

  it('a transaction that runs past the end of a segment that is not the last is corruption', async () => {
    const fs = new PowerCutFs();
    const rec = (seq: number, poolId: number, flags: number) =>
      encodeRecordV2({ seq, syncedSeq: seq - 1, poolId, op: WalOp.append, flags, atMs: T0, key: null, run: sortedRun([seq]) });
    fs.writeBytes(`${DIR}/${segmentFileName(1)}`, concatBytes(encodeSegmentHeader(1), rec(1, 1, 0), rec(2, 2, WalFlag.continues)));
    fs.writeBytes(`${DIR}/${segmentFileName(3)}`, concatBytes(encodeSegmentHeader(3), rec(3, 3, 0)));
    await expect(open(fs, await createTestEngine('ts'))).rejects.toThrowError(
      /transaction starting at seq 2 continues past the end of its segment/,
    );
  });
});

describe('retention records', () => {
  it.each(POLICIES)(
    '%s: setRetention is logged and reaches the engine on the write path and at replay (0 and null: unbounded)',
    async (fsync) => {
      const fs = new PowerCutFs();
      const first = await recordingEngine();
      const store = await open(fs, first.engine, { fsync });
      await store.append(1, sortedRun([1]));
      expect(await store.setRetention(1, 3600)).toBeUndefined();
      await store.setRetention(2, null);
      await store.setRetention(1, 0);
      expect(first.retention).toEqual([
        [1, 3600],
        [2, null],
        [1, null],
      ]);
      const records = await writtenRecords(fs, 1, 4);
      expect(records.filter((r) => r.op === WalOp.retention).map((r) => [r.poolId, r.valueCount])).toEqual([
        [1, 1],
        [2, 1],
        [1, 1],
      ]);

      // Replay from the log alone.
      const disk = fs.processKill();
      const again = await recordingEngine();
      await open(disk, again.engine, { fsync });
      expect(again.retention).toEqual(first.retention);
    },
  );

  it('the window is back after a restart, and replayed at the time it was set', async () => {
    const fs = new PowerCutFs();
    const store = await open(fs, await createTestEngine('ts'));
    await store.append(1, sortedRun([1]));
    await store.setRetention(1, 60);
    const engine = await createTestEngine('ts');
    const calls: (number | undefined)[] = [];
    const setRetention = engine.setRetention.bind(engine);
    engine.setRetention = (poolId, windowSeconds, options) => {
      calls.push(options?.atMs);
      return setRetention(poolId, windowSeconds, options);
    };
    await open(fs.processKill(), engine);
    expect(engine.retentionOf(1)).toBe(60);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toBeTypeOf('number');
  });

  it('refuses windows that are not null or a whole number of seconds >= 0', async () => {
    const store = await open(new PowerCutFs(), await createTestEngine('ts'));
    for (const w of [-1, 1.5, Number.POSITIVE_INFINITY, '60' as unknown as number]) {
      expect(() => store.setRetention(1, w)).toThrowError(expect.objectContaining({ code: 'invalid_request', field: 'windowSeconds' }));
    }
    expect(store.stats().seq).toBe(0);
    await store.close();
  });
});

describe('version 1 data directories', () => {
  it('open, keep their records, and continue in a version 2 segment; a restart replays both', async () => {
    const fs = new PowerCutFs();
    const v1 = [
      encodeSegmentHeader(1, WAL_VERSION_1),
      encodeRecordV1({ seq: 1, syncedSeq: 0, op: WalOp.append, poolId: 1 }, sortedRun([1, 2])),
      encodeRecordV1({ seq: 2, syncedSeq: 1, op: WalOp.append, poolId: 2 }, sortedRun([3])),
      encodeRecordV1({ seq: 3, syncedSeq: 2, op: WalOp.delete, poolId: 2 }, null),
    ];
    fs.writeBytes(`${DIR}/${segmentFileName(1)}`, concatBytes(...v1));
    const first = await recordingEngine();
    const store = await open(fs, first.engine);
    expect(first.times).toEqual([undefined, undefined]); // version 1 records carry no time
    const now = Date.now(); // the key's 24 h window runs from its record's time
    await store.append(1, sortedRun([4]), { key: 'new', atMs: now });
    expect(fs.list(DIR).filter((n) => n.startsWith('wal-'))).toEqual([segmentFileName(1), segmentFileName(4)]);
    expect(recordsOf(fs.readBytes(`${DIR}/${segmentFileName(4)}`))).toMatchObject([{ seq: 4, timeMs: now, keyLength: 3 }]);

    const again = await recordingEngine();
    const reopened = await open(fs.processKill(), again.engine);
    expect(again.times).toEqual([undefined, undefined, now]);
    expect(diffState(engineState(again.engine), modelState(appends([1, [1, 2, 4]])))).toBeNull();
    expect(await reopened.append(1, sortedRun([4]), { key: 'new' })).toMatchObject({ replayed: true, count: 3 });
  });
});
