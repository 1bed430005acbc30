// Windows, encodings and crashes: the durable store over a real engine, both
// driven by one hand-moved clock, on the in-memory file layer that models a
// SIGKILL (page cache kept) and a power cut (only fdatasync'ed bytes kept).
// What must hold: recovery rebuilds the pool it had before the crash — its
// window, its arrival buckets, every answer — whether the state came from a
// snapshot (format 2), from the log, or both; and no value that had left its
// window before a snapshot is in that snapshot or comes back from it.

import { describe, expect, it } from 'vitest';
import type { EngineKind, QuantileEngine } from '../src/core/engine.js';
import { QUANTILE_METHODS } from '../src/core/methods.js';
import { openDurableStore, type DurableStore } from '../src/storage/durable-store.js';
import { readSnapshotFile } from '../src/storage/snapshot-format.js';
import { createTestEngine, ENGINE_KINDS, ManualClock } from './helpers/engines.js';
import { PowerCutFs, seededRandom } from './helpers/power-cut-fs.js';
import { bitsHex } from './helpers/oracle.js';
import { capturingLogger, sortedRun } from './helpers/storage-model.js';

const DIR = '/data';
const T0 = 1_700_000_100_000 - (1_700_000_100_000 % 60_000);
const PERCENTILES = [0, 10, 50, 99, 100];

async function open(fs: PowerCutFs, kind: EngineKind, clock: ManualClock): Promise<{ store: DurableStore; engine: QuantileEngine }> {
  const engine = await createTestEngine(kind, undefined, { clock: clock.now });
  const store = await openDurableStore({
    dataDir: DIR,
    fsync: 'always',
    engine,
    files: fs,
    snapshotIntervalMs: 0,
    logger: capturingLogger(),
    clock: clock.now,
  });
  return { store, engine };
}

/** Everything a reader of the pools can see, plus how they are stored: window, buckets, run encodings. */
function observed(engine: QuantileEngine): unknown {
  return engine.poolIds().map((poolId) => {
    const answers = QUANTILE_METHODS.map((method) => engine.quantilesWithCount(poolId, PERCENTILES, method));
    const image = engine.poolImage(poolId);
    return {
      poolId,
      summary: engine.summary(poolId),
      answers: answers.map((a) => ({ count: a.count, quantiles: a.quantiles.map(bitsHex) })),
      windowSeconds: image.windowSeconds,
      buckets: image.buckets.map((b) => ({ startMs: b.startMs, endMs: b.endMs, values: b.runs.reduce((n, r) => n + r.count, 0) })),
    };
  });
}

function integers(random: () => number, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.floor(random() * 50));
}

describe.each(ENGINE_KINDS)('windows across crashes: %s engine', (kind: EngineKind) => {
  it('recovery rebuilds the pools it had: windows, buckets, plain and counted runs, every answer (snapshot + log, log only)', async () => {
    const random = seededRandom(31);
    const clock = new ManualClock(T0);
    const fs = new PowerCutFs();
    const { store, engine } = await open(fs, kind, clock);
    await store.setRetention(1, 300); // 5 s buckets
    await store.setRetention(3, 60);
    for (let step = 0; step < 40; step++) {
      await store.append(1, sortedRun(integers(random, 400))); // repeats: counted runs
      await store.append(2, sortedRun(Float64Array.from({ length: 50 }, () => random() * 1e6 - 5e5))); // no window, plain
      if (step % 3 === 0) await store.append(3, sortedRun([step, -step, 0.5]));
      if (step === 20) await store.snapshotNow();
      clock.advance(1700);
    }
    expect(engine.stats().countedRuns).toBeGreaterThan(0);
    const before = observed(engine);
    const fromLogAndSnapshot = await open(fs.processKill(), kind, clock);
    expect(fromLogAndSnapshot.store.recovery.snapshotSeq).toBeGreaterThan(0);
    expect(observed(fromLogAndSnapshot.engine)).toEqual(before);
    // Later, from the same files: both answer for the same (smaller) windows.
    clock.advance(200_000);
    expect(observed(fromLogAndSnapshot.engine)).toEqual(observed(engine));
    await fromLogAndSnapshot.store.close();
  });

  it('a snapshot never holds values that left their window before it was taken, and recovery never brings them back', async () => {
    const clock = new ManualClock(T0);
    const fs = new PowerCutFs();
    const { store } = await open(fs, kind, clock);
    await store.setRetention(7, 60);
    await store.append(7, sortedRun([1000, 1000, 1001])); // bucket [T0, T0 + 1 s)
    clock.advance(61_000); // left the window
    await store.append(7, sortedRun([1, 2, 3]));
    await store.snapshotNow();
    const names = fs.list(DIR).filter((name) => name.startsWith('snapshot-'));
    expect(names).toHaveLength(1);
    const snap = await readSnapshotFile(fs, `${DIR}/${names[0]}`);
    if (snap.version !== 2) throw new Error('expected a version 2 snapshot');
    const held = snap.pools.flatMap((pool) => pool.buckets.flatMap((b) => b.runs.flatMap((run) => Array.from(run.values))));
    expect(held).toEqual([1, 2, 3]);
    expect(snap.pools[0]).toMatchObject({ poolId: 7, windowSeconds: 60 });

    // Crash; recover later: still no 1000s, and the window is in force.
    clock.advance(30_000);
    const after = await open(fs.processKill(), kind, clock);
    expect(after.engine.quantilesWithCount(7, [0, 100], 'lower')).toEqual({ quantiles: [1, 3], count: 3 });
    clock.advance(31_000);
    expect(after.engine.quantilesWithCount(7, [50])).toEqual({ quantiles: [Number.NaN], count: 0 });
    expect(after.engine.retentionOf(7)).toBe(60);
    await after.store.close();
  });

  it('values that expire between a snapshot and the crash stay expired after recovery, from the snapshot and from the log', async () => {
    const clock = new ManualClock(T0);
    const fs = new PowerCutFs();
    const { store } = await open(fs, kind, clock);
    await store.setRetention(5, 10);
    await store.append(5, sortedRun([7, 7, 8])); // in the snapshot
    await store.snapshotNow();
    clock.advance(5000);
    await store.append(5, sortedRun([9])); // only in the log
    clock.advance(20_000); // both left the 10 s window
    for (const disk of [fs.processKill(), fs.powerCut(seededRandom(5))]) {
      const again = await open(disk, kind, clock);
      expect(again.engine.quantilesWithCount(5, [50])).toEqual({ quantiles: [Number.NaN], count: 0 });
      expect(again.engine.summary(5)).toMatchObject({ count: 0, windowSeconds: 10 });
      await again.store.close();
    }
  });

  it('removing a window after values aged past it keeps exactly what the live pool kept, across a crash', async () => {
    const clock = new ManualClock(T0);
    const fs = new PowerCutFs();
    const { store, engine } = await open(fs, kind, clock);
    await store.setRetention(4, 10);
    await store.append(4, sortedRun([1])); // expires at T0 + 11 s
    clock.advance(5000);
    await store.append(4, sortedRun([2]));
    clock.advance(7000); // T0 + 12 s: the first is out, nobody has looked
    await store.setRetention(4, null); // keeps [2] for good
    clock.advance(3_600_000);
    expect(engine.quantilesWithCount(4, [0, 100])).toEqual({ quantiles: [2, 2], count: 1 });
    const again = await open(fs.processKill(), kind, clock);
    expect(again.engine.quantilesWithCount(4, [0, 100])).toEqual({ quantiles: [2, 2], count: 1 });
    expect(again.engine.retentionOf(4)).toBeNull();
    await again.store.close();
  });
});
