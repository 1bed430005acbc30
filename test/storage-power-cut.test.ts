// Simulated power cuts (docs/durability.md, "How it is tested": a SIGKILL
// cannot catch a missing fsync): random workloads on the PowerCutFs double,
// the machine dies at a random file operation, the disk keeps only what was
// fdatasync'ed (plus a random remnant of the rest) and the directory entries
// that were fsync'ed;
// recovery must then give exactly the acknowledged operations, possibly plus
// unacknowledged ones, never one twice, never out of order. The suite is
// proven able to fail: with fdatasync a no-op the same check must go red.
// Also: kill at every step of a snapshot and of log rotation, and kill during
// recovery itself.

import { describe, expect, it } from 'vitest';
import type { QuantileEngine } from '../src/core/engine.js';
import { openDurableStore, type DurableStore } from '../src/storage/durable-store.js';
import type { FsyncPolicy } from '../src/storage/pool-writer.js';
import { encodeSnapshot, snapshotFileName } from '../src/storage/snapshot-format.js';
import { encodeSegmentHeader, segmentFileName, WAL_VERSION_1, WalOp } from '../src/storage/wal-format.js';
import { encodeRecordV1 } from '../src/storage/wal-record-v1.js';
import { createTestEngine } from './helpers/engines.js';
import { PowerCutFs, seededRandom, TAIL_MODES, type FsEvent, type TailMode, type TrapAction } from './helpers/power-cut-fs.js';
import {
  capturingLogger,
  concatBytes,
  checkPrefixState,
  diffState,
  engineState,
  modelState,
  randomValues,
  sortedRun,
  type PoolOp,
  type PoolState,
  snapshotPoolOf,
} from './helpers/storage-model.js';

const DIR = '/data';

interface Run {
  submitted: PoolOp[];
  /** Operations 0..acknowledged-1 were answered (for always: durable). */
  acknowledged: number;
}

function openStore(fs: PowerCutFs, engine: QuantileEngine, fsync: FsyncPolicy, extra: object = {}): Promise<DurableStore> {
  return openDurableStore({
    dataDir: DIR,
    fsync,
    engine,
    files: fs,
    snapshotIntervalMs: 0,
    snapshotWalBytes: 3000,
    fsyncIntervalMs: 5,
    logger: capturingLogger(),
    ...extra,
  });
}

/** Resolves when the trap kills the machine. */
function deathWatch(fs: PowerCutFs, decide: (ev: FsEvent) => TrapAction): Promise<void> {
  return new Promise((resolve) => {
    fs.trap = (ev) => {
      const action = decide(ev);
      if (action !== 'none') setImmediate(resolve);
      return action;
    };
  });
}

/**
 * Random appends and deletes in concurrent bursts, with snapshots, until the
 * machine dies. `always`: an operation counts as acknowledged when its promise
 * resolved; `interval`/`never`: when its sequence number was durable.
 */
async function workload(fs: PowerCutFs, store: DurableStore, seed: number, fsync: FsyncPolicy, dead: Promise<void>): Promise<Run> {
  const random = seededRandom(seed);
  const submitted: PoolOp[] = [];
  const seqOf: number[] = [];
  let acknowledged = 0;
  const body = async () => {
    for (let round = 0; round < 40; round++) {
      const burst: Promise<unknown>[] = [];
      const size = 1 + Math.floor(random() * 8);
      for (let j = 0; j < size; j++) {
        const poolId = Math.floor(random() * 5);
        const op: PoolOp =
          random() < 0.12
            ? { kind: 'delete', poolId }
            : { kind: 'append', poolId, values: Float64Array.from(randomValues(random, 1 + Math.floor(random() * 12))) };
        const index = submitted.length;
        submitted.push(op);
        const result = op.kind === 'append' ? store.append(op.poolId, sortedRun(op.values)) : store.deletePool(op.poolId);
        seqOf.push(store.stats().seq);
        if (fsync === 'always') {
          burst.push(
            Promise.resolve(result).then(() => {
              expect(index).toBe(acknowledged); // answers arrive in log order
              acknowledged = index + 1;
            }),
          );
        }
      }
      if (random() < 0.15) burst.push(store.snapshotNow().catch(() => {}));
      if (random() < 0.5) await Promise.all(burst);
      else await new Promise((r) => setImmediate(r));
    }
    await store.close();
  };
  await Promise.race([body(), dead]);
  if (fsync !== 'always') {
    const durable = store.stats().durableSeq;
    while (acknowledged < submitted.length && seqOf[acknowledged] <= durable) acknowledged++;
  }
  return { submitted, acknowledged };
}

async function recoverStore(fs: PowerCutFs): Promise<{ state: PoolState; store: DurableStore } | string> {
  const engine = await createTestEngine('ts');
  try {
    const store = await openStore(fs, engine, 'always');
    const leftovers = fs.list(DIR).filter((n) => n.endsWith('.tmp'));
    if (leftovers.length > 0) return `temporary files left after recovery: ${leftovers.join(', ')}`;
    return { state: engineState(engine), store };
  } catch (err) {
    return `recovery refused: ${(err as Error).message}`;
  }
}

async function recoverState(fs: PowerCutFs): Promise<PoolState | string> {
  const recovered = await recoverStore(fs);
  return typeof recovered === 'string' ? recovered : recovered.state;
}

/** `base` with `ops` applied. */
function stateAfter(base: PoolState, ops: readonly PoolOp[]): PoolState {
  const asOps: PoolOp[] = [...base].map(([poolId, values]) => ({ kind: 'append', poolId, values }));
  return modelState([...asOps, ...ops]);
}

/**
 * One scenario: workload, then the machine dies at a random operation (a power
 * cut, or one time in three a SIGKILL that leaves unsynced bytes in the page
 * cache), recovery, a few acknowledged appends on top, a power cut, recovery
 * again. null = correct.
 */
async function scenario(
  seed: number,
  fsync: FsyncPolicy,
  options: { datasyncIsNoop?: boolean; mode?: TailMode; noKill?: boolean } = {},
): Promise<{ problem: string | null; run: Run }> {
  const random = seededRandom(seed ^ 0x5eed);
  const fs = new PowerCutFs();
  fs.datasyncIsNoop = options.datasyncIsNoop ?? false;
  const engine = await createTestEngine('ts');
  const store = await openStore(fs, engine, fsync);
  const cutAt = fs.events.length + 1 + Math.floor(random() * 200);
  const how: TrapAction = (['crash-before', 'crash-after', 'crash-mid'] as const)[Math.floor(random() * 3)];
  const dead = deathWatch(fs, (ev) => (ev.index === cutAt ? how : 'none'));
  const run = await workload(fs, store, seed, fsync, dead);
  const killed = options.noKill !== true && random() < 1 / 3;
  const disk = killed ? fs.processKill() : fs.powerCut(random, options.mode ?? TAIL_MODES[Math.floor(random() * TAIL_MODES.length)]);
  const first = await recoverStore(disk);
  if (typeof first === 'string') return { problem: first, run };
  // After a SIGKILL everything written survives, so under `always` more than the acknowledged may be back.
  const problem = checkPrefixState(first.state, run.submitted, run.acknowledged);
  if (problem !== null) return { problem: `${killed ? 'after SIGKILL' : 'after power cut'}: ${problem}`, run };

  // Recovery must have made what it recovered durable before building on it.
  const more: PoolOp[] = [];
  for (let i = 0; i < 3; i++) {
    const op: PoolOp = { kind: 'append', poolId: 100 + i, values: Float64Array.of(i, seed) };
    await first.store.append(op.poolId, sortedRun(op.values));
    more.push(op);
  }
  const expected = stateAfter(first.state, more);
  const second = await recoverState(disk.powerCut(random));
  if (typeof second === 'string') return { problem: `second recovery: ${second}`, run };
  const diff = diffState(second, expected);
  if (diff !== null) return { problem: `second recovery differs: ${diff}`, run };
  // Recovery is idempotent: cut the power once more, straight after recovering.
  const third = await recoverState(disk.powerCut(random));
  if (typeof third === 'string') return { problem: `third recovery: ${third}`, run };
  const diff3 = diffState(third, expected);
  return { problem: diff3 === null ? null : `third recovery differs: ${diff3}`, run };
}

describe('power cut at a random point', () => {
  it('fsync=always: recovered state is exactly the acknowledged operations (plus maybe unacknowledged ones), 150 seeds', async () => {
    let acknowledgedTotal = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const { problem, run } = await scenario(seed, 'always');
      expect(problem, `seed ${seed}`).toBeNull();
      acknowledgedTotal += run.acknowledged;
    }
    expect(acknowledgedTotal).toBeGreaterThan(1000); // the cuts did not all land before any work
  });

  it.each(['interval', 'never'] as const)(
    'fsync=%s: recovered state is a prefix of the log that includes everything durable, 60 seeds',
    async (fsync) => {
      for (let seed = 1000; seed < 1060; seed++) {
        const { problem } = await scenario(seed, fsync);
        expect(problem, `seed ${seed}`).toBeNull();
      }
    },
  );

  it('the harness can fail: with fdatasync a no-op it detects lost acknowledged writes', async () => {
    let withAcks = 0;
    let detected = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const { problem, run } = await scenario(seed, 'always', { datasyncIsNoop: true, mode: 'drop', noKill: true });
      if (run.acknowledged === 0) continue;
      withAcks++;
      if (problem !== null) detected++;
    }
    expect(withAcks).toBeGreaterThan(20);
    expect(detected).toBeGreaterThanOrEqual(withAcks - 1); // only an acknowledged set netting to nothing could hide
    // And with random remnants of the unsynced tail, still caught most of the time.
    let randomDetected = 0;
    for (let seed = 41; seed <= 70; seed++)
      if ((await scenario(seed, 'always', { datasyncIsNoop: true, noKill: true })).problem !== null) randomDetected++;
    expect(randomDetected).toBeGreaterThan(10);
  });
});

/** A store with `n` acknowledged appends (fsync=always) on a fresh double. */
async function preparedStore(n: number, seed: number): Promise<{ fs: PowerCutFs; store: DurableStore; ops: PoolOp[] }> {
  const fs = new PowerCutFs();
  const store = await openStore(fs, await createTestEngine('ts'), 'always', { snapshotWalBytes: 0 });
  const random = seededRandom(seed);
  const ops: PoolOp[] = [];
  for (let i = 0; i < n; i++) {
    const op: PoolOp = { kind: 'append', poolId: i % 4, values: Float64Array.from(randomValues(random, 5)) };
    await store.append(op.poolId, sortedRun(op.values));
    ops.push(op);
  }
  return { fs, store, ops };
}

describe('kill during a snapshot and the log rotation it starts', () => {
  it('at every step (before the temp write, mid write, after its fsync, after rename, after the directory fsync, during rotation and cleanup) recovery gives the acknowledged state and leaves no temp files', async () => {
    // Dry run: which operations does snapshotNow() perform?
    const dry = await preparedStore(30, 5);
    await dry.store.snapshotNow(); // the first snapshot leaves an old segment to clean up on the second
    for (let i = 0; i < 5; i++) await dry.store.append(9, sortedRun([i]));
    const from = dry.fs.events.length;
    await dry.store.snapshotNow();
    const steps = dry.fs.events.slice(from).filter((e) => e.op !== 'close');
    const described = steps.map((e) => `${e.op} ${e.path.split('/').pop()}`);
    expect(described).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^open snapshot-.*\.bin\.tmp$/),
        expect.stringMatching(/^write snapshot-.*\.tmp$/),
        expect.stringMatching(/^datasync snapshot-.*\.tmp$/),
        expect.stringMatching(/^rename snapshot-.*\.tmp$/),
        'fsyncDir data',
        expect.stringMatching(/^rename wal-.*\.log\.tmp$/),
        expect.stringMatching(/^unlink (wal|snapshot)-/),
      ]),
    );

    let cases = 0;
    for (let step = 0; step < steps.length; step++) {
      const actions: TrapAction[] =
        steps[step].op === 'write' ? ['crash-before', 'crash-mid', 'crash-after'] : ['crash-before', 'crash-after'];
      for (const action of actions) {
        for (const mode of ['drop', 'all', 'prefix-garbage'] as TailMode[]) {
          const { fs, store, ops } = await preparedStore(30, 5);
          await store.snapshotNow();
          for (let i = 0; i < 5; i++) {
            await store.append(9, sortedRun([i]));
            ops.push({ kind: 'append', poolId: 9, values: Float64Array.of(i) });
          }
          const start = fs.events.length;
          let seen = 0;
          const dead = deathWatch(fs, (ev) => {
            if (ev.index < start || ev.op === 'close') return 'none';
            return seen++ === step ? action : 'none';
          });
          // Appends keep arriving while the snapshot runs; they are not acknowledged before the cut.
          const late: PoolOp[] = [{ kind: 'append', poolId: 11, values: Float64Array.of(1, 2) }];
          let lateAcked = 0;
          const lateP = Promise.resolve(store.append(11, sortedRun([1, 2]))).then(() => lateAcked++);
          await Promise.race([Promise.all([store.snapshotNow(), lateP]), dead]);
          expect(fs.dead, `step ${step} (${described[step]}) ${action}`).toBe(true);
          const disk = fs.powerCut(seededRandom(step * 7 + cases), mode);
          const recovered = await recoverState(disk);
          expect(typeof recovered, `step ${step} (${described[step]}) ${action} ${mode}: ${String(recovered)}`).not.toBe('string');
          expect(
            checkPrefixState(recovered as PoolState, [...ops, ...late], ops.length + lateAcked),
            `step ${step} (${described[step]}) ${action} ${mode}`,
          ).toBeNull();
          cases++;
        }
      }
    }
    if (process.env.DBG) console.log('snapshot cases', cases, described);
    expect(cases).toBeGreaterThanOrEqual(30);
  });
});

describe('kill during recovery', () => {
  function damagedDirectory(): { fs: PowerCutFs; expected: PoolState } {
    // A torn log tail, leftover temp files, and a corrupt newest snapshot with a usable older one.
    const fs = new PowerCutFs();
    const ops: PoolOp[] = Array.from({ length: 10 }, (_, i) => ({ kind: 'append', poolId: i % 3, values: Float64Array.of(i, -i, i / 3) }));
    const state = (k: number) => [...modelState(ops.slice(0, k))].map(([poolId, v]) => snapshotPoolOf(poolId, [sortedRun(v)]));
    fs.writeBytes(`${DIR}/${snapshotFileName(3)}`, encodeSnapshot(3, state(3)));
    const bad = encodeSnapshot(6, state(6));
    bad[70] ^= 1;
    fs.writeBytes(`${DIR}/${snapshotFileName(6)}`, bad);
    const parts = [encodeSegmentHeader(1, WAL_VERSION_1)];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Extract<PoolOp, { kind: 'append' }>;
      parts.push(encodeRecordV1({ seq: i + 1, syncedSeq: i, op: WalOp.append, poolId: op.poolId }, sortedRun(op.values)));
    }
    parts.push(new Uint8Array(24)); // torn tail
    fs.writeBytes(`${DIR}/${segmentFileName(1)}`, concatBytes(...parts));
    fs.writeBytes(`${DIR}/${snapshotFileName(10)}.tmp`, new Uint8Array(33));
    return { fs, expected: modelState(ops) };
  }

  it('a power cut at any operation of recovery, then recovery again, gives the same state', async () => {
    const probe = damagedDirectory();
    const from = probe.fs.events.length;
    const first = await recoverState(probe.fs);
    expect(typeof first).not.toBe('string');
    expect(diffState(first as PoolState, probe.expected)).toBeNull();
    const count = probe.fs.events.length - from;
    expect(count).toBeGreaterThan(10);

    for (let k = 0; k < count; k++) {
      for (const mode of ['drop', 'all'] as TailMode[]) {
        const { fs, expected } = damagedDirectory();
        const start = fs.events.length;
        const dead = deathWatch(fs, (ev) => (ev.index === start + k ? 'crash-after' : 'none'));
        await Promise.race([recoverState(fs), dead]);
        const disk = fs.powerCut(seededRandom(k), mode);
        const again = await recoverState(disk);
        expect(typeof again, `cut at recovery op ${k}: ${String(again)}`).not.toBe('string');
        expect(diffState(again as PoolState, expected), `cut at recovery op ${k} ${mode}`).toBeNull();
      }
    }
  });
});
