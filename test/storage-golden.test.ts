// Pins the storage formats: the committed golden files of WAL version 1 and
// snapshot version 1, of WAL version 2 (with its key file) and of snapshot
// version 2 decode to known contents and load or replay to known pools, and
// the current encoders reproduce the files they still write byte for byte;
// a version 1 data directory opens and its next snapshot is version 2. A failure here means an on-disk format changed: bump the
// version, keep a reader for the old one, and add new golden files rather
// than regenerating these.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestEngine } from './helpers/engines.js';
import { PowerCutFs } from './helpers/power-cut-fs.js';
import {
  encodeGoldenWal,
  GOLDEN_DIR,
  GOLDEN_SNAPSHOT_FILE,
  GOLDEN_SNAPSHOT_POOLS,
  GOLDEN_SNAPSHOT_SEQ,
  GOLDEN_WAL_FILE,
  GOLDEN_WAL_RECORDS,
  GOLDEN_WAL_STATE,
  writeGoldenFiles,
} from './helpers/storage-golden.js';
import { bits, capturingLogger, engineState, sortedRun } from './helpers/storage-model.js';
import { recover } from '../src/storage/recovery.js';
import { readSnapshotFile } from '../src/storage/snapshot-format.js';
import { openDurableStore } from '../src/storage/durable-store.js';
import type { QuantileEngine } from '../src/core/engine.js';
import { encodingOf, expandRun } from '../src/core/stored-run.js';
import {
  encodeGoldenSnapshotV2,
  GOLDEN_SNAPSHOT_V2_DIR,
  GOLDEN_SNAPSHOT_V2_FILE,
  GOLDEN_SNAPSHOT_V2_POOLS,
  GOLDEN_SNAPSHOT_V2_SEQ,
  GOLDEN_SNAPSHOT_V2_T0,
  writeGoldenSnapshotV2,
} from './golden/snapshot-v2.js';
import { decodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../src/storage/wal-format.js';
import { decodeRecordHeaderV1, V1_RECORD_HEADER_BYTES } from '../src/storage/wal-record-v1.js';
import { decodeRecordHeaderV2, V2_RECORD_HEADER_BYTES } from '../src/storage/wal-record-v2.js';
import { decodeKeysFile } from '../src/storage/keys-file.js';
import { IdempotencyKeys } from '../src/storage/idempotency-keys.js';
import type { AppendRunOptions } from '../src/core/engine.js';
import type { SortedRun } from '../src/core/sorted-run.js';
import {
  encodeGoldenV2Keys,
  encodeGoldenV2Wal,
  GOLDEN_V2_APPEND_TIMES,
  GOLDEN_V2_DIR,
  GOLDEN_V2_KEYS,
  GOLDEN_V2_KEYS_FILE,
  GOLDEN_V2_KEYS_SEQ,
  GOLDEN_V2_RECORDS,
  GOLDEN_V2_RETENTION,
  GOLDEN_V2_STATE,
  GOLDEN_V2_T0,
  GOLDEN_V2_WAL_FILE,
  writeGoldenV2Files,
} from './golden/v2.js';

if (process.env.UPDATE_GOLDEN === '1') writeGoldenFiles();
if (process.env.UPDATE_GOLDEN === 'v2') writeGoldenV2Files();
if (process.env.UPDATE_GOLDEN === 'snapshot-v2') writeGoldenSnapshotV2();

const golden = (name: string) => new Uint8Array(readFileSync(join(GOLDEN_DIR, name)));

describe('golden files, format v1', () => {
  it('the WAL segment decodes field by field to the known records', () => {
    const bytes = golden(GOLDEN_WAL_FILE);
    expect(decodeSegmentHeader(bytes.subarray(0, SEGMENT_HEADER_BYTES))).toEqual({ firstSeq: 1, version: 1 });
    const decoded = [];
    for (let at = SEGMENT_HEADER_BYTES; at < bytes.length;) {
      const h = decodeRecordHeaderV1(bytes.subarray(at, at + V1_RECORD_HEADER_BYTES));
      expect(h).not.toBeNull();
      const values =
        h!.valueCount === 0 ? null : Array.from(new Float64Array(bytes.slice(at + V1_RECORD_HEADER_BYTES, at + h!.length).buffer));
      decoded.push({ seq: h!.seq, syncedSeq: h!.syncedSeq, op: h!.op, poolId: h!.poolId, values });
      at += h!.length;
    }
    expect(decoded.map((r) => ({ ...r, values: r.values && bits(r.values) }))).toEqual(
      GOLDEN_WAL_RECORDS.map((r) => ({ ...r, values: r.values && bits(Array.from(sortedRun(r.values))) })),
    );
  });

  it('the WAL segment replays to the known pools', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(`/data/${GOLDEN_WAL_FILE}`, golden(GOLDEN_WAL_FILE));
    const engine = await createTestEngine('ts');
    const { report } = await recover({ files: fs, dataDir: '/data', engine, logger: capturingLogger() });
    expect(report).toMatchObject({ recordsReplayed: 4, lastSeq: 4, tornBytes: 0 });
    const state = engineState(engine);
    expect([...state.keys()]).toEqual([...GOLDEN_WAL_STATE.keys()].sort((a, b) => a - b));
    for (const [id, values] of GOLDEN_WAL_STATE) expect(bits(Array.from(state.get(id)!))).toEqual(bits(values));
  });

  it('the snapshot decodes to the known pools, run by run', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(`/data/${GOLDEN_SNAPSHOT_FILE}`, golden(GOLDEN_SNAPSHOT_FILE));
    const snap = await readSnapshotFile(fs, `/data/${GOLDEN_SNAPSHOT_FILE}`);
    expect(snap.seq).toBe(GOLDEN_SNAPSHOT_SEQ);
    if (snap.version !== 1) throw new Error(`expected version 1, got ${snap.version}`);
    expect(snap.pools.map((p) => ({ poolId: p.poolId, runs: p.runs.map((r) => bits(Array.from(r))) }))).toEqual(
      GOLDEN_SNAPSHOT_POOLS.map((p) => ({ poolId: p.poolId, runs: p.runs.map((r) => bits(r)) })),
    );
  });

  it('the current encoder reproduces the WAL segment byte for byte (snapshot version 1 is read only)', () => {
    expect(Buffer.from(encodeGoldenWal()).equals(Buffer.from(golden(GOLDEN_WAL_FILE)))).toBe(true);
  });

  it('a version 1 data directory opens, keeps its pools, and writes its next snapshot as version 2', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(`/data/${GOLDEN_SNAPSHOT_FILE}`, golden(GOLDEN_SNAPSHOT_FILE));
    const first = await createTestEngine('ts');
    const store = await openDurableStore({
      dataDir: '/data',
      fsync: 'always',
      engine: first,
      files: fs,
      snapshotIntervalMs: 0,
      logger: capturingLogger(),
    });
    const expected = new Map(GOLDEN_SNAPSHOT_POOLS.map((p) => [p.poolId, p.runs.flat()]));
    const check = (engine: QuantileEngine): void => {
      const state = engineState(engine);
      expect([...state.keys()]).toEqual([...expected.keys()]);
      for (const [id, values] of expected) expect(bits(Array.from(state.get(id)!))).toEqual(bits(Array.from(sortedRun(values))));
      for (const id of expected.keys()) expect(engine.retentionOf(id)).toBeNull();
    };
    check(first);
    await store.append(42, sortedRun([1]));
    expected.set(42, [...expected.get(42)!, 1]);
    await store.snapshotNow();
    await store.close();
    const names = fs.list('/data');
    const snapshots = names.filter((name) => name.startsWith('snapshot-'));
    expect(snapshots).toHaveLength(1);
    const written = fs.readBytes(`/data/${snapshots[0]}`);
    expect(new DataView(written.buffer, written.byteOffset).getUint32(8, true)).toBe(2);
    const second = await createTestEngine('ts');
    await (
      await openDurableStore({
        dataDir: '/data',
        fsync: 'always',
        engine: second,
        files: fs.processKill(),
        snapshotIntervalMs: 0,
        logger: capturingLogger(),
      })
    ).close();
    check(second);
  });
});

describe('golden files, snapshot format v2', () => {
  const bytes = () => new Uint8Array(readFileSync(join(GOLDEN_SNAPSHOT_V2_DIR, GOLDEN_SNAPSHOT_V2_FILE)));
  const T0 = GOLDEN_SNAPSHOT_V2_T0;

  it('decodes field by field to the known pools: windows, buckets, plain and counted runs', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(`/data/${GOLDEN_SNAPSHOT_V2_FILE}`, bytes());
    const snap = await readSnapshotFile(fs, `/data/${GOLDEN_SNAPSHOT_V2_FILE}`);
    if (snap.version !== 2) throw new Error(`expected version 2, got ${snap.version}`);
    expect(snap.seq).toBe(GOLDEN_SNAPSHOT_V2_SEQ);
    const decoded = snap.pools.map((pool) => ({
      poolId: pool.poolId,
      windowSeconds: pool.windowSeconds,
      buckets: pool.buckets.map((b) => ({
        startMs: b.startMs,
        endMs: b.endMs,
        runs: b.runs.map((run) => ({ encoding: encodingOf(run), values: bits(Array.from(expandRun(run))) })),
      })),
    }));
    expect(decoded).toEqual(
      GOLDEN_SNAPSHOT_V2_POOLS.map((pool) => ({
        ...pool,
        buckets: pool.buckets.map((b) => ({
          ...b,
          runs: b.runs.map((run) => ({ encoding: run.encoding, values: bits(Array.from(sortedRun(run.values))) })),
        })),
      })),
    );
  });

  it('restores the pools: answers, windows, and the first bucket of pool 7 leaving its window on time', async () => {
    let now = T0 + 120_000;
    const engine = await createTestEngine('ts', undefined, { clock: () => now });
    const fs = new PowerCutFs();
    fs.writeBytes(`/data/${GOLDEN_SNAPSHOT_V2_FILE}`, bytes());
    const { report } = await recover({ files: fs, dataDir: '/data', engine, logger: capturingLogger() });
    expect(report).toMatchObject({ snapshotSeq: GOLDEN_SNAPSHOT_V2_SEQ, snapshotPools: 4 });
    expect(engine.poolIds()).toEqual([0, 7, 42, Number.MAX_SAFE_INTEGER]);
    expect(engine.summary(42)).toEqual({ poolId: 42, count: 0, min: Number.NaN, max: Number.NaN, windowSeconds: 60 });
    expect(engine.quantilesWithCount(7, [0, 50, 100], 'lower')).toEqual({ quantiles: [-7, 1, 5], count: 14 });
    expect(Object.is(engine.quantile(0, 0, 'lower'), -0)).toBe(true);
    now = T0 + 60_000 + 3_600_000; // the bucket [T0, T0 + 60 s) leaves the hour's window
    expect(engine.quantilesWithCount(7, [0, 100], 'lower')).toEqual({ quantiles: [-7, 4.5], count: 8 });
    expect(engine.summary(Number.MAX_SAFE_INTEGER)).toMatchObject({ count: 2, min: -Number.MAX_VALUE, max: 1.7e308 });
  });

  it('the current encoder reproduces the file byte for byte', () => {
    expect(Buffer.from(encodeGoldenSnapshotV2()).equals(Buffer.from(bytes()))).toBe(true);
  });
});

describe('golden files, WAL format v2', () => {
  const goldenV2 = (name: string) => new Uint8Array(readFileSync(join(GOLDEN_V2_DIR, name)));
  const utf8 = new TextDecoder();

  it('the WAL segment decodes field by field to the known records: times, keys, transaction flags, retention windows', () => {
    const bytes = goldenV2(GOLDEN_V2_WAL_FILE);
    expect(decodeSegmentHeader(bytes.subarray(0, SEGMENT_HEADER_BYTES))).toEqual({ firstSeq: 1, version: 2 });
    const decoded = [];
    for (let at = SEGMENT_HEADER_BYTES; at < bytes.length;) {
      const h = decodeRecordHeaderV2(bytes.subarray(at, at + V2_RECORD_HEADER_BYTES))!;
      expect(h).not.toBeNull();
      const keyEnd = at + V2_RECORD_HEADER_BYTES + ((h.keyLength + 7) & ~7);
      const key =
        h.keyLength === 0 ? null : utf8.decode(bytes.subarray(at + V2_RECORD_HEADER_BYTES, at + V2_RECORD_HEADER_BYTES + h.keyLength));
      const values = h.valueCount === 0 ? null : Array.from(new Float64Array(bytes.slice(keyEnd, at + h.length).buffer));
      decoded.push({
        seq: h.seq,
        syncedSeq: h.syncedSeq,
        op: h.op,
        flags: h.flags,
        poolId: h.poolId,
        timeMs: h.timeMs,
        key,
        values: values && bits(values),
      });
      at += h.length;
    }
    expect(decoded).toEqual(
      GOLDEN_V2_RECORDS.map((r) => ({ ...r, values: r.values && bits(r.op === 1 ? Array.from(sortedRun(r.values)) : r.values) })),
    );
  });

  it('the WAL segment replays to the known pools, hands the engine the known times and windows, and rebuilds the known keys', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(`/data/${GOLDEN_V2_WAL_FILE}`, goldenV2(GOLDEN_V2_WAL_FILE));
    const engine = await createTestEngine('ts');
    const times: (number | undefined)[] = [];
    const retention: [number, number | null][] = [];
    const append = engine.appendSortedRun.bind(engine);
    engine.appendSortedRun = (poolId: number, run: SortedRun, options?: AppendRunOptions) => {
      times.push(options?.atMs);
      return append(poolId, run, options);
    };
    engine.setRetention = (poolId, windowSeconds) => void retention.push([poolId, windowSeconds]);
    const keys = new IdempotencyKeys({ windowMs: 24 * 3600_000, maxEntries: 10, clock: () => GOLDEN_V2_T0 + 5000 });
    const { report } = await recover({ files: fs, dataDir: '/data', engine, logger: capturingLogger(), keys });
    expect(report).toMatchObject({ recordsReplayed: 7, lastSeq: 7, tornBytes: 0 });
    const state = engineState(engine);
    expect([...state.keys()]).toEqual([...GOLDEN_V2_STATE.keys()]);
    for (const [id, values] of GOLDEN_V2_STATE) expect(bits(Array.from(state.get(id)!))).toEqual(bits(values));
    expect(times).toEqual(GOLDEN_V2_APPEND_TIMES);
    expect(retention).toEqual(GOLDEN_V2_RETENTION);
    expect(keys.capture(Number.MAX_SAFE_INTEGER).entries).toEqual(GOLDEN_V2_KEYS);
  });

  it('the key file decodes to the known entries', () => {
    const contents = decodeKeysFile(goldenV2(GOLDEN_V2_KEYS_FILE));
    expect(contents).toEqual({ seq: GOLDEN_V2_KEYS_SEQ, latestMs: GOLDEN_V2_T0 + 1000, entries: GOLDEN_V2_KEYS });
  });

  it('the current encoders reproduce both files byte for byte', () => {
    expect(Buffer.from(encodeGoldenV2Wal()).equals(Buffer.from(goldenV2(GOLDEN_V2_WAL_FILE)))).toBe(true);
    expect(Buffer.from(encodeGoldenV2Keys()).equals(Buffer.from(goldenV2(GOLDEN_V2_KEYS_FILE)))).toBe(true);
  });
});
