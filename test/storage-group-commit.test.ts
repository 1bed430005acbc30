// Group commit and acknowledgement order (docs/durability.md, "Group commit"): the
// file layer is instrumented, and every append must be answered after an
// fdatasync that covered its record's end offset; the engine must never show
// a change before it is durable; concurrent appends share fdatasyncs; a full
// commit queue answers 'unavailable' at once.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppendOutcome } from '../src/core/engine.js';
import { openDurableStore } from '../src/storage/durable-store.js';
import { SEGMENT_HEADER_BYTES, segmentFileName } from '../src/storage/wal-format.js';
import { recordLengthV2 } from '../src/storage/wal-record-v2.js';
import { createTestEngine } from './helpers/engines.js';
import { PowerCutFs, seededRandom } from './helpers/power-cut-fs.js';
import { randomValues, sortedRun } from './helpers/storage-model.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'poolq-group-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

describe('group commit (fsync=always)', () => {
  it('acknowledges each append only after an fdatasync covering its end offset, and never shows undurable data', async () => {
    const fs = new PowerCutFs();
    fs.syncDelayMs = 1;
    const engine = await createTestEngine('ts');
    const store = await openDurableStore({ dataDir: '/data', fsync: 'always', engine, files: fs, snapshotIntervalMs: 0 });
    const segmentInode = fs.inodeOf(`/data/${segmentFileName(1)}`)!;

    const random = seededRandom(7);
    const sizes: number[] = [];
    const endOffsets: number[] = [];
    const valuesBefore: number[] = []; // cumulative values of records 1..k
    let offset = SEGMENT_HEADER_BYTES;
    let total = 0;
    valuesBefore.push(0);

    // Whatever the engine shows must be covered by what the segment has synced.
    let syncedLength = SEGMENT_HEADER_BYTES;
    let violations = 0;
    fs.trap = (ev) => {
      if (ev.op === 'datasync' && ev.inode === segmentInode) syncedLength = Math.max(syncedLength, ev.syncedLength!);
      let durable = 0;
      while (durable < endOffsets.length && endOffsets[durable] <= syncedLength) durable++;
      if (engine.stats().values > valuesBefore[durable]) violations++;
      return 'none';
    };

    const N = 600;
    const acks: Promise<{ seq: number; event: number; outcome: AppendOutcome }>[] = [];
    for (let i = 0; i < N; i++) {
      const n = 1 + Math.floor(random() * 30);
      sizes.push(n);
      offset += recordLengthV2(n);
      endOffsets.push(offset);
      total += n;
      valuesBefore.push(total);
      const seq = i + 1;
      const p = store.append(i % 17, sortedRun(randomValues(random, n))) as Promise<AppendOutcome>;
      acks.push(p.then((outcome) => ({ seq, event: fs.events.length, outcome })));
      if (i % 50 === 49) await new Promise((r) => setImmediate(r)); // arrivals spread over turns
    }
    const done = await Promise.all(acks);

    const syncs = fs.events.filter((e) => e.op === 'datasync' && e.inode === segmentInode);
    for (const ack of done) {
      const covering = syncs.find((s) => s.index < ack.event && s.syncedLength! >= endOffsets[ack.seq - 1]);
      expect(covering, `append seq ${ack.seq} acknowledged without a covering fdatasync`).toBeDefined();
    }
    expect(violations).toBe(0);
    expect(syncs.length).toBeLessThan(N / 10);
    expect(store.stats().fdatasyncs).toBeLessThan(N / 10);
    // Outcomes come from apply time, in log order.
    const counts = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const pool = i % 17;
      counts.set(pool, (counts.get(pool) ?? 0) + sizes[i]);
      expect(done[i].outcome).toEqual({ created: i < 17, count: counts.get(pool) });
    }
    await store.close();
  });

  it('on a real disk, 2000 concurrent appends take far fewer than 2000 fdatasyncs', async () => {
    const engine = await createTestEngine('ts');
    const store = await openDurableStore({ dataDir: join(tmpRoot, 'real'), fsync: 'always', engine, snapshotIntervalMs: 0 });
    const before = store.stats().fdatasyncs;
    await Promise.all(Array.from({ length: 2000 }, (_, i) => store.append(i % 10, sortedRun([i, i + 0.5]))));
    const used = store.stats().fdatasyncs - before;
    expect(used).toBeLessThan(200);
    expect(engine.stats().values).toBe(4000);
    await store.close();
  });

  it('clients that resubmit when answered share one commit, not two alternating ones (commit gathering)', async () => {
    const fs = new PowerCutFs();
    fs.syncDelayMs = 2;
    // A wide gathering window, so a busy test machine's slow event-loop turns cannot split a round.
    const store = await openDurableStore({
      dataDir: '/data',
      fsync: 'always',
      engine: await createTestEngine('ts'),
      files: fs,
      snapshotIntervalMs: 0,
      commitGatherMs: 50,
    });
    const random = seededRandom(9);
    const CLIENTS = 16;
    const ROUNDS = 12;
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    const client = async (id: number): Promise<void> => {
      for (let round = 0; round < ROUNDS; round++) {
        await store.append(id, sortedRun(randomValues(random, 5)));
        // The next request arrives 0-3 event-loop turns after the answer, as over a network.
        for (let t = Math.floor(random() * 4); t > 0; t--) await turn();
      }
    };
    const before = store.stats().fdatasyncs;
    await Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id)));
    const commits = store.stats().fdatasyncs - before;
    // One commit per round when every client joins it; two alternating groups would need ~2 per round.
    expect(commits, `${commits} fdatasyncs for ${CLIENTS * ROUNDS} appends`).toBeLessThanOrEqual(ROUNDS + 1);
    await store.close();
  });

  it('a full commit queue refuses at once with unavailable and applies nothing refused', async () => {
    const fs = new PowerCutFs();
    fs.syncDelayMs = 40;
    const engine = await createTestEngine('ts');
    const store = await openDurableStore({
      dataDir: '/data',
      fsync: 'always',
      engine,
      files: fs,
      snapshotIntervalMs: 0,
      maxPendingRecords: 10,
    });
    const started = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        Promise.resolve(store.append(i, sortedRun([i]))).catch((err: unknown) => {
          throw Object.assign(err as Error, { after: Date.now() - started });
        }),
      ),
    );
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(20);
    for (const r of refused) {
      const reason = (r as PromiseRejectedResult).reason as Error & { code: string; after: number };
      expect(reason.code).toBe('unavailable');
      expect(reason.message).toMatch(/queue is full/);
      expect(reason.after).toBeLessThan(40); // before the first fdatasync finished
    }
    expect(engine.poolIds()).toEqual(Array.from({ length: 10 }, (_, i) => i));

    // The byte bound works the same way.
    const byBytes = await openDurableStore({
      dataDir: '/data2',
      fsync: 'always',
      engine: await createTestEngine('ts'),
      files: fs,
      snapshotIntervalMs: 0,
      maxPendingBytes: 1000,
    });
    const big = () => sortedRun(new Array(50).fill(1)); // 440 bytes a record
    const r = await Promise.allSettled([byBytes.append(1, big()), byBytes.append(1, big()), byBytes.append(1, big())]);
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    await store.close();
    await byBytes.close();
  });
});

describe('interval and never', () => {
  it('write every change of one event-loop turn in one write, answered synchronously', async () => {
    for (const fsync of ['interval', 'never'] as const) {
      const fs = new PowerCutFs();
      const engine = await createTestEngine('ts');
      const store = await openDurableStore({ dataDir: '/data', fsync, engine, files: fs, snapshotIntervalMs: 0, fsyncIntervalMs: 10_000 });
      const writesBefore = fs.events.filter((e) => e.op === 'write').length;
      for (let i = 0; i < 100; i++) expect(store.append(i % 5, sortedRun([i]))).toMatchObject({ count: Math.floor(i / 5) + 1 });
      expect(engine.stats().values).toBe(100);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(fs.events.filter((e) => e.op === 'write').length - writesBefore).toBe(1);
      expect(store.stats().durableSeq).toBe(0); // written, not yet synced
      await store.close();
      expect(store.stats().durableSeq).toBe(100);
    }
  });
});

describe('fsync=never / interval hold unsynced records', () => {
  it.each(['never', 'interval'] as const)(
    '%s: many small appends never fill the record bound (regression: 503s at ~25k appends/s in bench:http)',
    async (fsync) => {
      const fs = new PowerCutFs();
      const engine = await createTestEngine('ts');
      const store = await openDurableStore({
        dataDir: '/data',
        fsync,
        fsyncIntervalMs: 60_000,
        engine,
        files: fs,
        snapshotIntervalMs: 0,
        maxPendingRecords: 20,
      });
      for (let i = 0; i < 200; i++) {
        store.append(i % 7, sortedRun([i])); // synchronous under never/interval; throws if refused
        if (i % 5 === 4) await new Promise((resolve) => setImmediate(resolve)); // let the flusher run
      }
      expect(engine.stats().values).toBe(200);
      expect(store.stats().fdatasyncs).toBeGreaterThan(0);
      await store.close();
    },
  );
});
