// The piscina offload end to end: a real WorkerPool running the built worker
// module (dist/src/workers/heavy-tasks.js, made by `npm test`'s build), on
// both engines. What it pins down:
//   - memory is shared, not copied: a batch on a SharedArrayBuffer is sorted in
//     place in the caller's own array; parsed values of a large shared body
//     arrive on a SharedArrayBuffer. No path transfers a buffer — the caller
//     keeps every input, which is what lets a failed task be redone inline — so
//     instead of "the sender's buffer is now empty" (piscina's habit) the tests
//     assert the sender's buffer is intact;
//   - bad input fails in the worker exactly as it fails inline (same code,
//     field and message);
//   - merges in flight never change an answer: at every step, counts and
//     quantiles equal an engine that merges inline, bit for bit;
//   - a worker that dies mid-merge costs nothing: the merge is redone inline,
//     piscina replaces the worker, later merges go to the worker again;
//   - snapshots written by the worker are the bytes encodeSnapshot makes and
//     recover into the same pools; a dying snapshot worker fails the snapshot
//     and the store's next one succeeds.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineKind, QuantileEngine } from '../src/core/engine.js';
import { PoolqError } from '../src/core/errors.js';
import { QUANTILE_METHODS, type QuantileMethod } from '../src/core/methods.js';
import { allocateRun, SHARED_RUN_MIN_LENGTH } from '../src/core/sorted-run.js';
import { parseAddRequest, parseJson } from '../src/protocol/validate.js';
import { bytesOf, crc32cOf, rememberedValuesCrc } from '../src/storage/binary.js';
import { openDurableStore, type DurableStore } from '../src/storage/durable-store.js';
import { encodeSnapshot, parseSnapshotFileName, type SnapshotPool } from '../src/storage/snapshot-format.js';
import { startWorkerPool, type WorkerPool } from '../src/workers/worker-pool.js';
import { createTestEngine, ENGINE_KINDS, NO_TAIL } from './helpers/engines.js';
import { bitsHex, describeF64, seededRandom, sortedCopy } from './helpers/oracle.js';
import { diffState, engineState, randomValues, sortedRun, snapshotPoolOf } from './helpers/storage-model.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'poolq-workers-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => join(tmpRoot, `d${dirCount++}`);

/** Above SHARED_RUN_MIN_LENGTH, so allocateRun puts it on a SharedArrayBuffer. */
const BIG = SHARED_RUN_MIN_LENGTH + 7_000;
/** Merges of at least this many values go to the worker in the merge tests. */
const OFFLOAD_MIN_VALUES = 64;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function filledRun(random: () => number, n: number): Float64Array {
  const values = allocateRun(n);
  values.set(randomValues(random, n));
  return values;
}

/** The test worker module: heavy-tasks.js with the worker deaths a faultPlan asks for. */
const FAULTY_WORKER = fileURLToPath(new URL('./helpers/faulty-heavy-tasks.mjs', import.meta.url));

/** Options for startWorkerPool: the next `merges` merges and `snapshots` snapshots kill their worker. */
function faultPlan(plan: { merges?: number; snapshots?: number }): { workerModule: string; moduleOptions: object } {
  const shared = (n = 0): Int32Array => new Int32Array(new SharedArrayBuffer(4)).fill(n);
  return { workerModule: FAULTY_WORKER, moduleOptions: { merges: shared(plan.merges), snapshots: shared(plan.snapshots) } };
}

/** Counts the inline fallbacks: a task the worker did must not be redone here. */
function countingInline(engine: QuantileEngine): Pick<QuantileEngine, 'sortBatch'> & { calls: number } {
  const inline = {
    calls: 0,
    sortBatch: (values: Float64Array) => {
      inline.calls++;
      return engine.sortBatch(values);
    },
  };
  return inline;
}

interface ErrorShape {
  name: string;
  code: string;
  field: string | undefined;
  message: string;
}

function shapeOf(err: unknown): ErrorShape {
  if (!(err instanceof PoolqError)) throw new Error(`expected a PoolqError, got ${String(err)}`);
  return { name: err.name, code: err.code, field: err.field, message: err.message };
}

async function rejectionOf(promise: Promise<unknown>): Promise<ErrorShape> {
  try {
    await promise;
  } catch (err) {
    return shapeOf(err);
  }
  throw new Error('expected a rejection');
}

function thrownBy(fn: () => unknown): ErrorShape {
  try {
    fn();
  } catch (err) {
    return shapeOf(err);
  }
  throw new Error('expected a throw');
}

/** A Buffer whose bytes live on a SharedArrayBuffer, as body-reader.ts makes large bodies. */
function sharedBody(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const body = Buffer.from(new SharedArrayBuffer(bytes.length), 0, bytes.length);
  bytes.copy(body);
  return body;
}

const PERCENTILES = [0, 0.1, 25, 50, 66.6, 99, 100];

/** Counts and quantiles (several p, every method) of `engine` equal `reference`'s, bit for bit. */
function expectSameAnswers(engine: QuantileEngine, reference: QuantileEngine, context: string): void {
  expect(engine.poolIds(), `${context}: pool ids`).toEqual(reference.poolIds());
  for (const poolId of reference.poolIds()) {
    expect(engine.countOf(poolId), `${context}: count of pool ${poolId}`).toBe(reference.countOf(poolId));
    for (const method of QUANTILE_METHODS) {
      const got = engine.quantiles(poolId, PERCENTILES, method);
      const want = reference.quantiles(poolId, PERCENTILES, method);
      for (let i = 0; i < PERCENTILES.length; i++) {
        if (bitsHex(got[i]) !== bitsHex(want[i])) {
          throw new Error(
            `${context}: pool ${poolId} ${method} p=${PERCENTILES[i]}: got ${describeF64(got[i])}, ` +
              `inline engine says ${describeF64(want[i])} (${engine.runsOf(poolId).length} runs, ${engine.stats().mergesInFlight} merges in flight)`,
          );
        }
      }
    }
  }
}

type Step =
  | { kind: 'append'; poolId: number; values: number[] }
  | { kind: 'query'; poolId: number; percentiles: number[]; method: QuantileMethod }
  | { kind: 'delete'; poolId: number }
  | { kind: 'wait'; how: 'none' | 'immediate' | 'timer' | 'settle' };

const valueArb = fc.oneof(
  { weight: 5, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(-0, 0, 5e-324, -Number.MAX_VALUE, Number.MAX_VALUE) },
  { weight: 3, arbitrary: fc.integer({ min: -3, max: 3 }) },
);
const poolIdArb = fc.integer({ min: 0, max: 2 });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({ poolId: poolIdArb, values: fc.array(valueArb, { minLength: 1, maxLength: 250, size: 'max' }) })
      .map(({ poolId, values }): Step => ({ kind: 'append', poolId, values })),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        poolId: poolIdArb,
        percentiles: fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 3 }),
        method: fc.constantFrom(...QUANTILE_METHODS),
      })
      .map(({ poolId, percentiles, method }): Step => ({ kind: 'query', poolId, percentiles, method })),
  },
  { weight: 1, arbitrary: poolIdArb.map((poolId): Step => ({ kind: 'delete', poolId })) },
  {
    weight: 3,
    arbitrary: fc.constantFrom('none', 'immediate', 'timer', 'settle').map((how): Step => ({ kind: 'wait', how })),
  },
);

async function waitFor(engine: QuantileEngine, how: Extract<Step, { kind: 'wait' }>['how']): Promise<void> {
  if (how === 'immediate') await new Promise((resolve) => setImmediate(resolve));
  else if (how === 'timer') await sleep(1);
  else if (how === 'settle') await engine.whenMergesSettled();
}

describe.each(ENGINE_KINDS)('piscina offload, %s engine', (kind: EngineKind) => {
  let inlineEngine: QuantileEngine;
  let inline: ReturnType<typeof countingInline>;
  let pool: WorkerPool;

  beforeAll(async () => {
    inlineEngine = await createTestEngine(kind);
    inline = countingInline(inlineEngine);
    pool = await startWorkerPool({ threads: 2, engine: kind, inline });
  });
  afterAll(async () => {
    await pool?.close();
  });

  describe('memory is shared, never transferred', () => {
    it('sortBatch sorts a SharedArrayBuffer batch in place in the caller’s own array', async () => {
      const values = filledRun(seededRandom(1), BIG);
      expect(values.buffer).toBeInstanceOf(SharedArrayBuffer);
      const expected = Array.from(sortedCopy(values), bitsHex);
      const [callsBefore, failedBefore] = [inline.calls, pool.tasksFailed];

      const sorted = await pool.sortBatch(values);

      expect(sorted).toBe(values); // the same array, not a copy
      expect(Array.from(values, bitsHex)).toEqual(expected); // the caller's memory is what got sorted
      expect(inline.calls).toBe(callsBefore); // ... and the worker sorted it
      expect(pool.tasksFailed).toBe(failedBefore);
      // ... and hashed the sorted bytes there, so the log does not hash them again on the event loop.
      expect(rememberedValuesCrc(sorted)).toBe(crc32cOf(bytesOf(sorted)));
    });

    it('sortBatch copies a small non-shared batch and leaves the sender’s buffer intact', async () => {
      const values = Float64Array.from(randomValues(seededRandom(2), 1000));
      const before = Array.from(values, bitsHex);
      const callsBefore = inline.calls;

      const sorted = await pool.sortBatch(values);

      expect(values.buffer.byteLength).toBe(8000); // not transferred (a transfer would leave 0)
      expect(Array.from(values, bitsHex)).toEqual(before); // the worker sorted its own copy
      expect(Array.from(sorted, bitsHex)).toEqual(Array.from(sortedCopy(values), bitsHex));
      expect(inline.calls).toBe(callsBefore);
    });

    it('parseAddBody reads a SharedArrayBuffer body in place and returns values on a SharedArrayBuffer', async () => {
      const numbers = randomValues(seededRandom(3), BIG).map((v) => (Object.is(v, -0) ? 0 : v)); // JSON has no -0 to write
      const body = sharedBody(JSON.stringify({ poolId: 7, poolValues: numbers }));
      const length = body.length;

      const request = await pool.parseAddBody(body);

      expect(request.poolId).toBe(7);
      expect(request.values.buffer).toBeInstanceOf(SharedArrayBuffer); // shared back, not copied
      expect(Array.from(request.values, bitsHex)).toEqual(numbers.map(bitsHex));
      expect(body.length).toBe(length); // the body is still the caller's (recycled by body-buffers.ts)
      expect(body.buffer.byteLength).toBe(length);
      expect(parseAddRequest(parseJson(body)).values.length).toBe(numbers.length);
    });

    it('parseAddBody copies a small non-shared body and leaves it intact', async () => {
      const body = Buffer.from(JSON.stringify({ poolId: 1, poolValues: [3, -1.5, 2] }));
      const bytes = body.byteLength;
      const request = await pool.parseAddBody(body);
      expect(request).toEqual({ poolId: 1, values: Float64Array.from([3, -1.5, 2]) });
      expect(body.byteLength).toBe(bytes);
      expect(JSON.parse(body.toString())).toEqual({ poolId: 1, poolValues: [3, -1.5, 2] });
    });
  });

  describe('bad input fails in the worker exactly as inline', () => {
    it.each([
      ['NaN', Number.NaN, 12_345],
      ['Infinity', Number.POSITIVE_INFINITY, 0],
      ['-Infinity', Number.NEGATIVE_INFINITY, BIG - 1],
    ])('sortBatch with %s → invalid_request naming poolValues[i]', async (_name, bad, at) => {
      const values = filledRun(seededRandom(4), BIG);
      values[at] = bad;
      const inlineCopy = Float64Array.from(values);
      const fromWorker = await rejectionOf(pool.sortBatch(values));
      expect(fromWorker).toEqual(thrownBy(() => inlineEngine.sortBatch(inlineCopy)));
      expect(fromWorker).toMatchObject({ code: 'invalid_request', field: `poolValues[${at}]` });
    });

    it.each([
      ['a non-finite value (1e400)', '{"poolId":1,"poolValues":[1,2,1e400]}', 'invalid_request', 'poolValues[2]'],
      ['a string value', '{"poolId":1,"poolValues":[1,"2"]}', 'invalid_request', 'poolValues[1]'],
      ['a bad poolId', '{"poolId":-1,"poolValues":[1]}', 'invalid_request', 'poolId'],
      ['a non-object body', '[1,2,3]', 'invalid_request', '$'],
      ['truncated JSON', '{"poolId":1,"poolValues":[1,2,', 'invalid_json', undefined],
      ['an empty body', '', 'invalid_json', undefined],
    ])('parseAddBody with %s → %s', async (_name, text, code, field) => {
      for (const body of [sharedBody(text), Buffer.from(text)]) {
        const fromWorker = await rejectionOf(pool.parseAddBody(body));
        expect(fromWorker).toEqual(thrownBy(() => parseAddRequest(parseJson(Buffer.from(text)))));
        expect(fromWorker.code).toBe(code);
        expect(fromWorker.field).toBe(field);
      }
    });

    it('a big body with a bad value deep inside names its index', async () => {
      const numbers: unknown[] = randomValues(seededRandom(5), BIG).map((v) => (Object.is(v, -0) ? 0 : v));
      numbers[BIG - 3] = null;
      const text = JSON.stringify({ poolId: 3, poolValues: numbers });
      const fromWorker = await rejectionOf(pool.parseAddBody(sharedBody(text)));
      expect(fromWorker).toEqual(thrownBy(() => parseAddRequest(parseJson(Buffer.from(text)))));
      expect(fromWorker.field).toBe(`poolValues[${BIG - 3}]`);
    });
  });

  describe('merges in flight never change an answer', () => {
    let inFlightChecks = 0;

    it('random appends, deletes and queries while merges run on the worker equal an inline engine at every step', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 60, size: 'max' }), async (steps) => {
          // Small batches make runs of their own (no tail), so merges happen at all; the reference keeps the default tail.
          const engine = await createTestEngine(kind, NO_TAIL);
          engine.setMergeOffloader(pool.merge, OFFLOAD_MIN_VALUES);
          const reference = await createTestEngine(kind);
          for (let s = 0; s < steps.length; s++) {
            const step = steps[s];
            const context = `step ${s} (${step.kind})`;
            if (step.kind === 'append') {
              engine.appendValues(step.poolId, Float64Array.from(step.values));
              reference.appendValues(step.poolId, Float64Array.from(step.values));
            } else if (step.kind === 'delete') {
              expect(engine.deletePool(step.poolId), context).toBe(reference.deletePool(step.poolId));
            } else if (step.kind === 'wait') {
              await waitFor(engine, step.how);
            } else if (reference.hasPool(step.poolId)) {
              const got = engine.quantiles(step.poolId, step.percentiles, step.method).map(bitsHex);
              expect(got, context).toEqual(reference.quantiles(step.poolId, step.percentiles, step.method).map(bitsHex));
            }
            if (engine.stats().mergesInFlight > 0) inFlightChecks++;
            expectSameAnswers(engine, reference, context);
          }
          await engine.whenMergesSettled();
          expect(engine.stats().mergesInFlight).toBe(0);
          expectSameAnswers(engine, reference, 'after whenMergesSettled');
          expect(diffState(engineState(engine), engineState(reference))).toBeNull();
          expect(engine.stats().values).toBe(reference.stats().values);
        }),
        // Shrinking a failure runs many async cases; stop it in time to report within the test timeout.
        { numRuns: 30, interruptAfterTimeLimit: 30_000 },
      );
      // The property is only worth something if answers were checked while merges ran.
      expect(inFlightChecks).toBeGreaterThan(0);
      expect(pool.tasksFailed).toBe(0);
    });
  });

  it('a worker that dies mid-merge: the merge is redone inline, nothing lost or doubled, later merges go to the worker', async () => {
    const crashy = await startWorkerPool({ threads: 1, engine: kind, inline: countingInline(inlineEngine), ...faultPlan({ merges: 2 }) });
    try {
      const engine = await createTestEngine(kind, NO_TAIL);
      engine.setMergeOffloader(crashy.merge, OFFLOAD_MIN_VALUES);
      const reference = await createTestEngine(kind);
      const random = seededRandom(6);
      const all: number[] = [];
      const appendRound = async (rounds: number): Promise<void> => {
        for (let i = 0; i < rounds; i++) {
          const values = randomValues(random, 40 + Math.floor(random() * 60));
          engine.appendValues(1, Float64Array.from(values));
          reference.appendValues(1, Float64Array.from(values));
          all.push(...values);
          expectSameAnswers(engine, reference, `append ${i}`);
          if (i % 4 === 3) await sleep(2);
        }
        await engine.whenMergesSettled();
      };

      await appendRound(16);
      expect(crashy.tasksFailed).toBe(2); // both crashes happened, in a worker thread, not in this process
      expectSameAnswers(engine, reference, 'after the crashes');
      expect(Array.from(engine.exportSorted(1), bitsHex)).toEqual(Array.from(sortedCopy(all), bitsHex));

      const offloadedBefore = crashy.mergesOffloaded;
      await appendRound(16);
      expect(crashy.mergesOffloaded).toBeGreaterThan(offloadedBefore); // piscina replaced the worker
      expect(crashy.tasksFailed).toBe(2);
      expect(engine.countOf(1)).toBe(all.length);
      expect(Array.from(engine.exportSorted(1), bitsHex)).toEqual(Array.from(sortedCopy(all), bitsHex));
      const big = filledRun(random, BIG);
      expect(Array.from(await crashy.sortBatch(big), bitsHex)).toEqual(Array.from(sortedCopy(big), bitsHex));
    } finally {
      await crashy.close();
    }
  });

  describe('snapshots written by a worker', () => {
    /** A few pools with big shared runs and a small non-shared tail (well under the copy budget). */
    async function fill(store: DurableStore, seed: number): Promise<void> {
      const random = seededRandom(seed);
      for (let round = 0; round < 3; round++) {
        await store.append(1, sortedRun(randomValues(random, BIG)));
        await store.append(2, sortedRun(randomValues(random, 1 + Math.floor(random() * 300))));
      }
      for (let poolId = 10; poolId < 20; poolId++)
        await store.append(poolId, sortedRun(randomValues(random, 1 + Math.floor(random() * 50))));
      await store.deletePool(12);
    }

    function snapshotFiles(dataDir: string): string[] {
      return readdirSync(dataDir).filter((name) => name.startsWith('snapshot-'));
    }

    async function reopen(dataDir: string): Promise<{ store: DurableStore; engine: QuantileEngine }> {
      const engine = await createTestEngine(kind);
      const store = await openDurableStore({ dataDir, fsync: 'always', engine, snapshotIntervalMs: 0, snapshotWalBytes: 0 });
      return { store, engine };
    }

    it('buildSnapshot writes the bytes encodeSnapshot makes, on the worker or (over the copy budget) inline', async () => {
      const engine = await createTestEngine(kind);
      const random = seededRandom(7);
      engine.appendValues(4, filledRun(random, BIG));
      engine.appendValues(4, filledRun(random, 100));
      engine.appendValues(9, filledRun(random, 3000));
      const pools: SnapshotPool[] = engine.poolIds().map((poolId) => ({ poolId, ...engine.poolImage(poolId) }));
      const expected = encodeSnapshot(42, pools);
      const dir = freshDir();
      mkdirSync(dir);

      const offloadedBefore = pool.snapshotsOffloaded;
      const summary = await pool.buildSnapshot(join(dir, 'a.tmp'), 42, pools);
      expect(pool.snapshotsOffloaded).toBe(offloadedBefore + 1);
      expect(summary).toMatchObject({ seq: 42, pools: 2, values: BIG + 100 + 3000 });
      expect(Buffer.compare(readFileSync(join(dir, 'a.tmp')), expected)).toBe(0);

      const tight = await startWorkerPool({ threads: 1, engine: kind, inline, snapshotCopyBudgetBytes: 0 });
      try {
        await tight.buildSnapshot(join(dir, 'b.tmp'), 42, pools);
        expect([tight.snapshotsInline, tight.snapshotsOffloaded]).toEqual([1, 0]);
        expect(Buffer.compare(readFileSync(join(dir, 'b.tmp')), expected)).toBe(0);
      } finally {
        await tight.close();
      }
    });

    it('an I/O error in the worker rejects with its errno code', async () => {
      const run = sortedRun(randomValues(seededRandom(8), BIG));
      const err = await pool.buildSnapshot(join(tmpRoot, 'no-such-dir', 'x.tmp'), 1, [snapshotPoolOf(1, [run])]).then(
        () => null,
        (e: unknown) => e as NodeJS.ErrnoException,
      );
      expect(err?.code).toBe('ENOENT');
      expect(err?.message).toMatch(/no such file or directory/);
    });

    it('a snapshot made by the worker recovers into the same pools, bit for bit', async () => {
      const dataDir = freshDir();
      const engine = await createTestEngine(kind);
      const store = await openDurableStore({
        dataDir,
        fsync: 'always',
        engine,
        snapshotIntervalMs: 0,
        snapshotWalBytes: 0,
        buildSnapshot: pool.buildSnapshot,
      });
      const offloadedBefore = pool.snapshotsOffloaded;
      await fill(store, 9);
      await store.snapshotNow();
      expect(pool.snapshotsOffloaded).toBe(offloadedBefore + 1);
      const [name] = snapshotFiles(dataDir);
      const seq = parseSnapshotFileName(name)!;
      expect(seq).toBe(store.stats().appliedSeq);
      const pools = engine.poolIds().map((poolId) => ({ poolId, ...engine.poolImage(poolId) }));
      expect(Buffer.compare(readFileSync(join(dataDir, name)), encodeSnapshot(seq, pools))).toBe(0);
      const before = engineState(engine);
      await store.close();

      const reopened = await reopen(dataDir);
      try {
        const report = reopened.store.stats().recovery;
        expect(report.snapshotFile).toBe(name);
        expect(report.recordsReplayed).toBe(0); // everything came from the worker's file
        expect(diffState(engineState(reopened.engine), before)).toBeNull();
      } finally {
        await reopened.store.close();
      }
    });

    it('a snapshot worker that dies fails that snapshot only: no temp file left, the log kept, the next snapshot succeeds', async () => {
      const crashy = await startWorkerPool({ threads: 1, engine: kind, inline, ...faultPlan({ snapshots: 1 }) });
      const dataDir = freshDir();
      try {
        const engine = await createTestEngine(kind);
        const store = await openDurableStore({
          dataDir,
          fsync: 'always',
          engine,
          snapshotIntervalMs: 0,
          snapshotWalBytes: 0,
          buildSnapshot: crashy.buildSnapshot,
        });
        await fill(store, 10);

        const failure = await rejectionOf(store.snapshotNow());
        expect(failure.code).toBe('unavailable');
        expect(failure.message).toMatch(/worker exited/);
        expect(store.stats().lastSnapshotError).toMatch(/worker exited/);
        expect(snapshotFiles(dataDir)).toEqual([]); // the torn temp file was deleted
        expect(crashy.tasksFailed).toBe(1);

        await store.append(2, sortedRun([1, 2, 3])); // the store still takes writes
        await store.snapshotNow();
        expect(store.stats().lastSnapshotError).toBeNull();
        expect(snapshotFiles(dataDir)).toHaveLength(1);
        expect(crashy.snapshotsOffloaded).toBe(2);
        const before = engineState(engine);
        await store.close();

        const reopened = await reopen(dataDir);
        try {
          expect(reopened.store.stats().recovery.snapshotFile).not.toBeNull();
          expect(diffState(engineState(reopened.engine), before)).toBeNull();
        } finally {
          await reopened.store.close();
        }
      } finally {
        await crashy.close();
      }
    });
  });
});

describe('startWorkerPool options', () => {
  it.each([
    [{ threads: 0 }, /options\.threads must be a positive integer/],
    [{ threads: 1.5 }, /options\.threads must be a positive integer/],
    [{ engine: 'js' }, /options\.engine must be 'wasm' or 'ts'/],
    [{ snapshotCopyBudgetBytes: -1 }, /options\.snapshotCopyBudgetBytes must be a non-negative integer/],
    [{ workerModule: 'src/workers/heavy-tasks.ts' }, /options\.workerModule must be the path of a built JavaScript module/],
  ])('%j is refused', async (bad, message) => {
    const inline = countingInline(await createTestEngine('ts'));
    await expect(startWorkerPool({ threads: 1, engine: 'ts', inline, ...(bad as object) })).rejects.toThrow(message);
  });
});
