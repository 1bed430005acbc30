// Retention windows (src/core/time-window.ts, pool.ts), written once against
// the engine interface and run for both engines with the automatic choice of
// run encodings and with each forced. Time is an injected ManualClock, so
// bucket boundaries are hit to the millisecond. The model the engine is held
// to: a value arriving at t belongs to the bucket [s, s + B) holding t
// (B = max(1 s, W/60), s aligned to the epoch); a query at `now` answers
// numpy.percentile over exactly the values whose bucket ends after now − W.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EngineKind, MergeOffloader, QuantileEngine } from '../src/core/engine.js';
import { PoolqError } from '../src/core/errors.js';
import { QUANTILE_METHODS } from '../src/core/methods.js';
import { mergeRuns } from '../src/core/run-merge.js';
import { trustSorted } from '../src/core/sorted-run.js';
import type { EncodingPolicy } from '../src/core/stored-run.js';
import { bucketWidthMs, MAX_WINDOW_SECONDS } from '../src/core/time-window.js';
import { createTsKernels } from '../src/core/ts-kernels.js';
import { createTestEngine, ENCODINGS, ENGINE_KINDS, ManualClock, NO_TAIL, TINY_TAIL } from './helpers/engines.js';
import { bitsHex, quantileOfSorted, sortedCopy } from './helpers/oracle.js';

const PERCENTILES = [0, 1e-9, 25, 50, 99.5, 100];
/** A bucket-aligned start time (a multiple of every width used here). */
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % 300_000);

function f64(...values: number[]): Float64Array {
  return Float64Array.from(values);
}

function sorted(values: readonly number[]): ReturnType<typeof trustSorted> {
  return trustSorted(sortedCopy(values));
}

function errorOf(action: () => unknown): PoolqError {
  try {
    action();
  } catch (err) {
    if (err instanceof PoolqError) return err;
    throw err;
  }
  throw new Error('expected a PoolqError');
}

/** Bit patterns of the engine's answers and of the oracle's over `values`, for every method. */
function answersOver(engine: QuantileEngine, poolId: number, values: readonly number[]): { got: string[]; want: string[] } {
  const sortedValues = sortedCopy(values);
  const got: string[] = [];
  const want: string[] = [];
  for (const method of QUANTILE_METHODS) {
    const answer = engine.quantilesWithCount(poolId, PERCENTILES, method);
    got.push(`${method} n=${answer.count}: ${answer.quantiles.map(bitsHex).join(' ')}`);
    const expected =
      values.length === 0 ? PERCENTILES.map(() => Number.NaN) : PERCENTILES.map((p) => quantileOfSorted(sortedValues, p, method));
    want.push(`${method} n=${values.length}: ${expected.map(bitsHex).join(' ')}`);
  }
  return { got, want };
}

const VARIANTS = ENGINE_KINDS.flatMap((kind) => ENCODINGS.map((encoding) => [kind, encoding] as const));

describe.each(VARIANTS)('retention windows: %s engine, %s encoding', (kind: EngineKind, encoding: EncodingPolicy) => {
  async function setup(tail = TINY_TAIL): Promise<{ engine: QuantileEngine; clock: ManualClock }> {
    const clock = new ManualClock(T0);
    const engine = await createTestEngine(kind, tail, { encoding, clock: clock.now });
    return { engine, clock };
  }

  it('setRetention creates an empty pool, which answers NaN over no values until values arrive', async () => {
    const { engine } = await setup();
    expect(engine.setRetention(1, 60)).toEqual({ created: true });
    expect(engine.setRetention(1, 120)).toEqual({ created: false });
    expect(engine.retentionOf(1)).toBe(120);
    expect(engine.summary(1)).toEqual({ poolId: 1, count: 0, min: Number.NaN, max: Number.NaN, windowSeconds: 120 });
    expect(engine.quantilesWithCount(1, [50, 99], 'linear')).toEqual({ quantiles: [Number.NaN, Number.NaN], count: 0 });
    expect(engine.appendValues(1, f64(3, 1, 2))).toEqual({ created: false, count: 3 });
    expect(engine.quantilesWithCount(1, [50], 'linear')).toEqual({ quantiles: [2], count: 3 });
    expect(engine.stats()).toMatchObject({ pools: 1, values: 3, windowedPools: 1 });
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_WINDOW_SECONDS + 1, '60' as unknown as number])(
    'rejects windowSeconds %s with invalid_request naming windowSeconds, changing nothing',
    async (bad) => {
      const { engine } = await setup();
      engine.appendValues(1, f64(1, 2));
      const err = errorOf(() => engine.setRetention(1, bad));
      expect([err.code, err.field]).toEqual(['invalid_request', 'windowSeconds']);
      expect(() => engine.setRetention(2, bad)).toThrow(PoolqError);
      expect(engine.hasPool(2)).toBe(false);
      expect(engine.retentionOf(1)).toBeNull();
      expect(() => engine.retentionOf(2)).toThrow(expect.objectContaining({ code: 'pool_not_found' }));
    },
  );

  it('keeps a value until its bucket ends W before now, to the millisecond (W = 60 s: 1 s buckets)', async () => {
    const { engine, clock } = await setup();
    engine.setRetention(1, 60);
    expect(bucketWidthMs(60_000)).toBe(1000);
    engine.appendValues(1, f64(1)); // at T0: bucket [T0, T0 + 1000)
    clock.advance(999);
    engine.appendValues(1, f64(2)); // same bucket
    clock.advance(1);
    engine.appendValues(1, f64(3)); // T0 + 1000: the next bucket
    clock.nowMs = T0 + 1000 + 60_000 - 1;
    expect(engine.quantilesWithCount(1, [0, 100])).toEqual({ quantiles: [1, 3], count: 3 });
    clock.advance(1); // T0 + 61 000: the first bucket leaves, both of its values together
    expect(engine.quantilesWithCount(1, [0, 100])).toEqual({ quantiles: [3, 3], count: 1 });
    clock.nowMs = T0 + 2000 + 60_000 - 1;
    expect(engine.countOf(1)).toBe(1);
    clock.advance(1);
    expect(engine.countOf(1)).toBe(0);
    expect(engine.hasPool(1)).toBe(true);
  });

  it('groups arrivals in buckets of W/60 (W = 300 s: 5 s), which leave whole', async () => {
    const { engine, clock } = await setup();
    engine.setRetention(1, 300);
    for (let i = 0; i < 10; i++) {
      engine.appendValues(1, f64(i)); // T0, T0 + 1 s, …: two buckets of 5 s
      clock.advance(1000);
    }
    clock.nowMs = T0 + 5000 + 300_000 - 1;
    expect(engine.countOf(1)).toBe(10);
    clock.advance(1);
    expect(engine.quantilesWithCount(1, [0], 'lower')).toEqual({ quantiles: [5], count: 5 });
  });

  it('an empty window: the pool stays, answers NaN and count 0, lists with count 0, takes values again', async () => {
    const { engine, clock } = await setup();
    engine.appendValues(1, f64(5, 6));
    engine.setRetention(1, 10);
    clock.advance(11_001);
    expect(engine.summary(1)).toEqual({ poolId: 1, count: 0, min: Number.NaN, max: Number.NaN, windowSeconds: 10 });
    expect(engine.quantilesWithCount(1, PERCENTILES, 'hazen').quantiles.every(Number.isNaN)).toBe(true);
    expect(engine.listPools(null, 10)).toEqual({ pools: [{ poolId: 1, count: 0 }], next: null });
    expect(engine.stats()).toMatchObject({ values: 0, runs: 0, runBytes: 0 });
    expect(engine.appendValues(1, f64(7))).toEqual({ created: false, count: 1 });
    expect(engine.quantile(1, 50)).toBe(7);
  });

  it('one query reads one moment: a clock that jumps a bucket end between any two reads cannot split count from quantiles', async () => {
    const expiry = T0 + 1000 + 60_000; // when the bucket [T0, T0 + 1 s) leaves a 60 s window
    let jumpy = false;
    let reads = 0;
    let fixed = T0;
    // Fixed time while the pools fill; then the first read of a query sees the bucket, every later read would not.
    const clock = (): number => (!jumpy ? fixed : reads++ === 0 ? expiry - 1 : expiry + 1);
    const engine = await createTestEngine(kind, TINY_TAIL, { encoding, clock });
    for (const [poolId, early, late] of [
      [1, [1, 2, 3], [100, 101]],
      [2, [50], [200]],
    ] as const) {
      engine.setRetention(poolId, 60);
      fixed = T0;
      engine.appendValues(poolId, Float64Array.from(early));
      fixed = T0 + 5000;
      engine.appendValues(poolId, Float64Array.from(late));
    }
    jumpy = true;
    reads = 0;
    expect(engine.quantilesWithCount(1, [0, 100, 50], 'lower')).toEqual({ quantiles: [1, 101, 3], count: 5 });
    reads = 0;
    expect(engine.quantilesAcross([1, 2], [0, 100], 'lower')).toEqual({ quantiles: [1, 200], count: 7 });
    // Past the boundary, both see the smaller set.
    expect(engine.quantilesWithCount(1, [0, 100], 'lower')).toEqual({ quantiles: [100, 101], count: 2 });
    expect(engine.quantilesAcross([1, 2], [0, 100], 'lower')).toEqual({ quantiles: [100, 200], count: 3 });
  });

  it('histogram and rank count only the values in the window, and answer an emptied window', async () => {
    const { engine, clock } = await setup();
    engine.setRetention(1, 60);
    engine.appendValues(1, f64(100, 100, 200));
    clock.advance(30_000);
    engine.appendValues(1, f64(1, 2, 2, 3));
    expect(engine.rank(1, 2)).toMatchObject({ count: 7, below: 1, equal: 2 });
    clock.advance(31_000); // the first bucket leaves
    expect(engine.rank(1, 2)).toMatchObject({ count: 4, below: 1, equal: 2, fraction: 0.75 });
    const h = engine.histogram(1, 2);
    expect([h.count, h.min, h.max, h.bins.map((b) => b.count)]).toEqual([4, 1, 3, [1, 3]]);
    clock.advance(31_000); // nothing left
    expect(engine.histogram(1, 4)).toEqual({ poolId: 1, count: 0, min: Number.NaN, max: Number.NaN, bins: [], below: 0, above: 0 });
    expect(engine.histogram(1, 2, { min: 0, max: 10 }).bins.map((b) => b.count)).toEqual([0, 0]);
    expect(engine.rank(1, 2)).toMatchObject({ count: 0, below: 0, equal: 0, fraction: Number.NaN });
  });

  it('a cached answer does not outlive the bucket it came from', async () => {
    const { engine, clock } = await setup();
    engine.setRetention(1, 30);
    engine.appendValues(1, f64(1000));
    clock.advance(2000);
    engine.appendValues(1, f64(1));
    expect(engine.quantile(1, 100)).toBe(1000); // cached now
    clock.advance(30_000);
    expect(engine.quantile(1, 100)).toBe(1);
  });

  it('files values under their arrival time (atMs): an old one leaves at the next read; a late one joins the newest bucket', async () => {
    const { engine, clock } = await setup();
    engine.setRetention(1, 60);
    clock.advance(120_000);
    expect(engine.appendSortedRun(1, sorted([9, 9]), { atMs: T0 })).toEqual({ created: false, count: 2 });
    expect(engine.countOf(1)).toBe(0); // its bucket [T0, T0 + 1 s) left the window long ago
    expect(engine.appendSortedRun(1, sorted([5]), { atMs: T0 + 100_000 })).toEqual({ created: false, count: 1 });
    expect(engine.appendSortedRun(1, sorted([6]), { atMs: T0 + 90_000 })).toEqual({ created: false, count: 2 }); // late: joins [T0+100 s, +1 s)
    clock.nowMs = T0 + 101_000 + 60_000 - 1;
    expect(engine.quantilesWithCount(1, [0, 100])).toEqual({ quantiles: [5, 6], count: 2 });
    clock.advance(1);
    expect(engine.countOf(1)).toBe(0);
    // A new pool made by an append keeps everything, whatever its arrival time.
    expect(engine.appendSortedRun(2, sorted([1]), { atMs: 0 })).toEqual({ created: true, count: 1 });
  });

  it('replaying changes later with their times rebuilds the pool they built live (the log after a crash)', async () => {
    type Change = { atMs: number } & ({ op: 'append'; values: number[] } | { op: 'window'; seconds: number | null });
    const changeArb: fc.Arbitrary<Change> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          atMs: fc.constant(0),
          op: fc.constant('append' as const),
          values: fc.array(fc.integer({ min: -9, max: 9 }), { minLength: 1, maxLength: 6 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ atMs: fc.constant(0), op: fc.constant('window' as const), seconds: fc.constantFrom(10, 60, null) }),
      },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(changeArb, fc.integer({ min: 0, max: 20_000 })), { maxLength: 40 }),
        fc.integer({ min: 0, max: 200_000 }),
        async (steps, later) => {
          const liveClock = new ManualClock(T0);
          const live = await createTestEngine(kind, TINY_TAIL, { encoding, clock: liveClock.now });
          const changes: Change[] = [];
          for (const [change, gap] of steps) {
            liveClock.advance(gap);
            const at = { ...change, atMs: liveClock.nowMs };
            changes.push(at);
            if (at.op === 'append') live.appendValues(1, Float64Array.from(at.values));
            else live.setRetention(1, at.seconds);
            if (gap % 3 === 0 && live.hasPool(1)) live.countOf(1); // reads at random moments expire lazily
          }
          // Recovery happens `later`, and applies every logged change with its time.
          const replayClock = new ManualClock(liveClock.nowMs + later);
          const replayed = await createTestEngine(kind, TINY_TAIL, { encoding, clock: replayClock.now });
          for (const change of changes) {
            if (change.op === 'append') replayed.appendSortedRun(1, sorted(change.values), { atMs: change.atMs });
            else replayed.setRetention(1, change.seconds, { atMs: change.atMs });
          }
          liveClock.nowMs = replayClock.nowMs;
          expect(replayed.hasPool(1)).toBe(live.hasPool(1));
          if (!live.hasPool(1)) return;
          expect(answersOver(replayed, 1, []).got).toEqual(answersOver(live, 1, []).got);
          expect(replayed.summary(1)).toEqual(live.summary(1));
        },
      ),
      { numRuns: 80 },
    );
  });

  it('holds a random sequence of appends, clock steps and window changes to the bucket model (fast-check)', async () => {
    const { engine, clock } = await setup();
    let poolId = 100;
    const stepArb = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double({ noNaN: true, noDefaultInfinity: true })), {
            minLength: 1,
            maxLength: 12,
          })
          .map((values) => ({ op: 'append' as const, values })),
      },
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 9000 }).map((ms) => ({ op: 'advance' as const, ms })) },
      { weight: 1, arbitrary: fc.constantFrom(60, 120, 600).map((seconds) => ({ op: 'window' as const, seconds })) },
      { weight: 2, arbitrary: fc.constant({ op: 'query' as const }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 60 }), async (steps) => {
        const id = poolId++;
        clock.nowMs = T0;
        let windowMs = 60_000;
        engine.setRetention(id, 60);
        const kept: { value: number; endMs: number }[] = [];
        let newestEnd = -Infinity;
        for (const step of steps) {
          if (step.op === 'append') {
            const now = clock.nowMs;
            let endMs: number;
            if (now < newestEnd)
              endMs = newestEnd; // joins the newest bucket
            else {
              const width = bucketWidthMs(windowMs);
              endMs = Math.floor(now / width) * width + width;
              newestEnd = endMs;
            }
            engine.appendValues(id, Float64Array.from(step.values));
            for (const value of step.values) kept.push({ value, endMs });
          } else if (step.op === 'advance') {
            clock.advance(step.ms);
          } else if (step.op === 'window') {
            windowMs = step.seconds * 1000;
            engine.setRetention(id, step.seconds);
          } else {
            const live = kept.filter((entry) => entry.endMs > clock.nowMs - windowMs).map((entry) => entry.value);
            const { got, want } = answersOver(engine, id, live);
            expect(got).toEqual(want);
          }
        }
        engine.deletePool(id);
      }),
      { numRuns: 60 },
    );
  });

  it('removing the window keeps every value held and stops expiry; setting one expires values W after the newest arrived', async () => {
    const { engine, clock } = await setup(NO_TAIL);
    engine.setRetention(1, 60);
    for (let i = 0; i < 20; i++) {
      engine.appendValues(1, f64(i, i + 0.5));
      clock.advance(1000);
    }
    clock.advance(50_000); // T0 + 70 s: buckets of the first 10 s left
    expect(engine.countOf(1)).toBe(20);
    engine.setRetention(1, null);
    expect(engine.runLengths(1).length).toBeLessThanOrEqual(2 * Math.log2(20) + 2); // one bucket again, compacted
    clock.advance(3_600_000);
    expect(engine.quantilesWithCount(1, [0, 100], 'lower')).toEqual({ quantiles: [10, 19.5], count: 20 });
    engine.appendValues(1, f64(-1)); // newest arrival: now
    engine.setRetention(1, 60);
    clock.advance(59_000);
    expect(engine.countOf(1)).toBe(21);
    clock.advance(2000);
    expect(engine.countOf(1)).toBe(0);
  });

  it('shrinking the window drops what lies outside it at once', async () => {
    const { engine, clock } = await setup();
    engine.setRetention(1, 600);
    engine.appendValues(1, f64(1));
    clock.advance(300_000);
    engine.appendValues(1, f64(2));
    clock.advance(1000);
    expect(engine.countOf(1)).toBe(2);
    engine.setRetention(1, 60);
    expect(engine.quantilesWithCount(1, [0])).toEqual({ quantiles: [2], count: 1 });
  });

  it('a bucket that stops taking values is merged into one run', async () => {
    const { engine, clock } = await setup(NO_TAIL);
    engine.setRetention(1, 3600); // 60 s buckets
    for (let i = 0; i < 40; i++) engine.appendValues(1, f64(i, -i, i / 3));
    expect(engine.runLengths(1).length).toBeGreaterThan(1);
    clock.advance(60_000);
    engine.appendValues(1, f64(0.5));
    expect(engine.runLengths(1)).toEqual([120, 1]);
  });

  it('poolImage / restorePool round-trip buckets and window; a restore never brings back expired values', async () => {
    const { engine, clock } = await setup();
    engine.setRetention(1, 60);
    engine.appendValues(1, f64(1, 1, 1, 2));
    clock.advance(30_000);
    engine.appendValues(1, f64(10, 10, 11));
    const image = engine.poolImage(1);
    expect(image.windowSeconds).toBe(60);
    expect(image.buckets.map((b) => [b.startMs - T0, b.endMs - T0, b.runs.reduce((n, r) => n + r.count, 0)])).toEqual([
      [0, 1000, 4],
      [30_000, 31_000, 3],
    ]);
    engine.appendValues(1, f64(99)); // the image's runs are immutable
    expect(image.buckets[1].runs.reduce((n, r) => n + r.count, 0)).toBe(3);
    engine.restorePool(2, image);
    expect(engine.summary(2)).toEqual({ poolId: 2, count: 7, min: 1, max: 11, windowSeconds: 60 });
    clock.advance(31_000); // T0 + 61 s: the first bucket is out
    engine.restorePool(3, image);
    expect(engine.quantilesWithCount(3, [0, 100])).toEqual({ quantiles: [10, 11], count: 3 });
    expect(engine.quantilesWithCount(2, [0, 100])).toEqual({ quantiles: [10, 11], count: 3 });
    clock.advance(60_000);
    engine.restorePool(4, image);
    expect(engine.summary(4)).toMatchObject({ count: 0, windowSeconds: 60 });
  });

  it('sweepExpired drops every expired bucket, tells the release hook, and stats follow', async () => {
    const clock = new ManualClock(T0);
    let released = 0;
    const engine = await createTestEngine(kind, NO_TAIL, { encoding, clock: clock.now, onRelease: (bytes) => (released += bytes) });
    for (const id of [1, 2, 3]) {
      engine.setRetention(id, 10);
      engine.appendValues(
        id,
        new Float64Array(1000).map((_, i) => i % 7),
      );
    }
    engine.appendValues(4, f64(1)); // no window: never expires
    clock.advance(11_001);
    expect(engine.sweepExpired()).toBe(3000);
    expect(released).toBeGreaterThan(0);
    expect(engine.stats()).toMatchObject({ pools: 4, values: 1, windowedPools: 3 });
    engine.deletePool(1);
    expect(engine.stats()).toMatchObject({ pools: 3, windowedPools: 2 });
  });

  it('an offloaded merge that lands after its bucket expired changes nothing', async () => {
    const { engine, clock } = await setup(NO_TAIL);
    const ts = createTsKernels();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const offloader: MergeOffloader = async (a, b, policy) => {
      await gate;
      return mergeRuns(ts, a, b, policy);
    };
    engine.setMergeOffloader(offloader, 1);
    engine.setRetention(1, 10);
    engine.appendValues(1, f64(1, 2, 3));
    engine.appendValues(1, f64(4, 5, 6));
    expect(engine.stats().mergesInFlight).toBe(1);
    clock.advance(11_001);
    expect(engine.countOf(1)).toBe(0);
    engine.appendValues(1, f64(7));
    release();
    await engine.whenMergesSettled();
    expect(engine.quantilesWithCount(1, [0, 100])).toEqual({ quantiles: [7, 7], count: 1 });
    expect(engine.stats()).toMatchObject({ values: 1, runs: 1 });
  });
});
