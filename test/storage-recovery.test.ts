// Recovery rules, one damaged byte at a time (docs/storage-format.md,
// "Recovery"): a torn tail is cut and start-up
// succeeds with exactly the complete records; a bad record that a later record
// proves durable, a gap, or a damaged earlier segment refuses start-up naming
// file and offset; a damaged snapshot falls back only if the log covers it.

import { describe, expect, it } from 'vitest';
import type { QuantileEngine } from '../src/core/engine.js';
import { StorageCorruptionError } from '../src/storage/errors.js';
import { recover } from '../src/storage/recovery.js';
import { encodeSnapshot, snapshotFileName } from '../src/storage/snapshot-format.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES, segmentFileName, WAL_VERSION_1, WalOp } from '../src/storage/wal-format.js';
import { encodeRecordV1 } from '../src/storage/wal-record-v1.js';
import { openDurableStore } from '../src/storage/durable-store.js';
import { createTestEngine } from './helpers/engines.js';
import { PowerCutFs, seededRandom } from './helpers/power-cut-fs.js';
import {
  capturingLogger,
  concatBytes,
  diffState,
  engineState,
  modelState,
  sortedRun,
  type PoolOp,
  snapshotPoolOf,
} from './helpers/storage-model.js';

const DIR = '/data';

interface Rec {
  seq: number;
  op: PoolOp;
  /** Default seq - 1: each record in its own group commit. */
  syncedSeq?: number;
}

function opsFor(count: number, firstSeq = 1): Rec[] {
  const random = seededRandom(count * 31 + firstSeq);
  return Array.from({ length: count }, (_, i) => {
    const seq = firstSeq + i;
    const poolId = seq % 3;
    if (seq % 5 === 4) return { seq, op: { kind: 'delete', poolId } };
    const values = Float64Array.from({ length: 1 + (seq % 4) }, () => Math.round((random() - 0.5) * 1e4) / 8);
    return { seq, op: { kind: 'append', poolId, values } };
  });
}

function segment(firstSeq: number, recs: readonly Rec[]): { bytes: Uint8Array; starts: number[] } {
  const parts: Uint8Array[] = [encodeSegmentHeader(firstSeq, WAL_VERSION_1)];
  const starts: number[] = [];
  let at = SEGMENT_HEADER_BYTES;
  for (const r of recs) {
    const op = r.op;
    const bytes = encodeRecordV1(
      { seq: r.seq, syncedSeq: r.syncedSeq ?? r.seq - 1, op: op.kind === 'append' ? WalOp.append : WalOp.delete, poolId: op.poolId },
      op.kind === 'append' ? sortedRun(op.values) : null,
    );
    starts.push(at);
    at += bytes.length;
    parts.push(bytes);
  }
  return { bytes: concatBytes(...parts), starts };
}

async function recoverFrom(
  fs: PowerCutFs,
): Promise<{ engine: QuantileEngine; report: Awaited<ReturnType<typeof recover>>['report']; logger: ReturnType<typeof capturingLogger> }> {
  const engine = await createTestEngine('ts');
  const logger = capturingLogger();
  const { report } = await recover({ files: fs, dataDir: DIR, engine, logger });
  return { engine, report, logger };
}

async function refusal(fs: PowerCutFs): Promise<StorageCorruptionError> {
  const err = await recoverFrom(fs).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageCorruptionError);
  return err as StorageCorruptionError;
}

const expectState = (engine: QuantileEngine, recs: readonly Rec[]) =>
  expect(diffState(engineState(engine), modelState(recs.map((r) => r.op)))).toBeNull();

describe('torn tail', () => {
  const recs = opsFor(12);
  const { bytes, starts } = segment(1, recs);
  const lastStart = starts[starts.length - 1];
  const walPath = `${DIR}/${segmentFileName(1)}`;

  it('is cut at every length inside the last record, with zeros or garbage after it, keeping exactly the complete records', async () => {
    const random = seededRandom(99);
    let cases = 0;
    for (let len = lastStart; len < bytes.length; len++) {
      const garbage = Uint8Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256));
      for (const tail of [new Uint8Array(0), new Uint8Array(4096), garbage]) {
        const fs = new PowerCutFs();
        const damaged = concatBytes(bytes.subarray(0, len), tail);
        fs.writeBytes(walPath, damaged);
        const { engine, report, logger } = await recoverFrom(fs);
        expectState(engine, recs.slice(0, -1));
        expect(report.lastSeq).toBe(recs.length - 1);
        expect(report.tornBytes).toBe(damaged.length - lastStart);
        expect(fs.readBytes(walPath).length).toBe(lastStart); // truncated on disk
        if (damaged.length > lastStart) {
          expect(logger.lines).toContainEqual(
            expect.objectContaining({
              level: 'warn',
              msg: 'wal: cut torn tail',
              obj: expect.objectContaining({ offset: lastStart, bytes: damaged.length - lastStart }),
            }),
          );
        }
        cases++;
      }
    }
    expect(cases).toBe((bytes.length - lastStart) * 3);
  });

  it('zeros or garbage after a complete log are cut too', async () => {
    for (const tail of [new Uint8Array(8), new Uint8Array(100_000), Uint8Array.from({ length: 77 }, (_, i) => (i * 37) & 255)]) {
      const fs = new PowerCutFs();
      fs.writeBytes(walPath, concatBytes(bytes, tail));
      const { engine, report } = await recoverFrom(fs);
      expectState(engine, recs);
      expect(report.tornBytes).toBe(tail.length);
    }
  });

  it('a flipped byte in the final record is a torn tail (nothing after it proves it durable)', async () => {
    for (let at = lastStart; at < bytes.length; at++) {
      const fs = new PowerCutFs();
      const damaged = bytes.slice();
      damaged[at] ^= 0x40;
      fs.writeBytes(walPath, damaged);
      const { engine } = await recoverFrom(fs);
      expectState(engine, recs.slice(0, -1));
    }
  });

  it('a hole inside the last, unsynced group commit (pages written back out of order) is a torn tail, not corruption', async () => {
    // Records 10..12 went out in one write after seq 9 was durable.
    const batch = recs.map((r) => (r.seq >= 10 ? { ...r, syncedSeq: 9 } : r));
    const seg = segment(1, batch);
    const damaged = seg.bytes.slice();
    damaged.fill(0, seg.starts[10], seg.starts[11]); // seq 11 never reached the disk; seq 12 did
    const fs = new PowerCutFs();
    fs.writeBytes(walPath, damaged);
    const { engine, report } = await recoverFrom(fs);
    expectState(engine, recs.slice(0, 10));
    expect(report.lastSeq).toBe(10);
  });

  it('a segment whose creation never finished (empty or zero header, no records) is removed', async () => {
    for (const junk of [new Uint8Array(0), new Uint8Array(20), new Uint8Array(4096)]) {
      const fs = new PowerCutFs();
      fs.writeBytes(walPath, bytes);
      fs.writeBytes(`${DIR}/${segmentFileName(13)}`, junk);
      const { engine, report } = await recoverFrom(fs);
      expectState(engine, recs);
      expect(report.lastSeq).toBe(12);
      expect(fs.exists(`${DIR}/${segmentFileName(13)}`)).toBe(false);
    }
  });
});

describe('corruption refuses start-up, naming file and offset', () => {
  const recs = opsFor(8);
  const { bytes, starts } = segment(1, recs);
  const walPath = `${DIR}/${segmentFileName(1)}`;

  it('a flipped byte in any non-final record (each byte of each record)', async () => {
    let cases = 0;
    for (let k = 0; k < recs.length - 1; k++) {
      for (let at = starts[k]; at < starts[k + 1]; at++) {
        const fs = new PowerCutFs();
        const damaged = bytes.slice();
        damaged[at] ^= 0x01;
        fs.writeBytes(walPath, damaged);
        const err = await refusal(fs);
        expect(err.file).toBe(walPath);
        expect(err.offset).toBe(starts[k]);
        expect(err.message).toContain(walPath);
        expect(err.message).toContain(`offset ${starts[k]}`);
        expect(err.code).toBe('internal');
        cases++;
      }
    }
    expect(cases).toBe(starts[recs.length - 1] - SEGMENT_HEADER_BYTES);
  });

  it('a damaged header on a segment that holds records', async () => {
    for (let at = 0; at < SEGMENT_HEADER_BYTES; at++) {
      const fs = new PowerCutFs();
      const damaged = bytes.slice();
      damaged[at] ^= 0x80;
      fs.writeBytes(walPath, damaged);
      const err = await refusal(fs);
      expect(err.file).toBe(walPath);
      expect(err.offset).toBe(0);
    }
  });

  it('damage or truncation in an earlier segment, even in its last record', async () => {
    const second = segment(9, opsFor(3, 9));
    const lastOfFirst = starts[starts.length - 1];
    for (const damaged of [
      bytes.subarray(0, bytes.length - 3),
      bytes.subarray(0, lastOfFirst),
      (() => {
        const b = bytes.slice();
        b[lastOfFirst + 45] ^= 2;
        return b;
      })(),
    ]) {
      const fs = new PowerCutFs();
      fs.writeBytes(walPath, damaged);
      fs.writeBytes(`${DIR}/${segmentFileName(9)}`, second.bytes);
      const err = await refusal(fs);
      expect(err.file).toBe(walPath);
      expect(err.offset).toBe(lastOfFirst);
    }
  });

  it('a gap between segments (the earlier one should hold the missing records)', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(walPath, bytes);
    fs.writeBytes(`${DIR}/${segmentFileName(11)}`, segment(11, opsFor(2, 11)).bytes);
    const err = await refusal(fs);
    expect(err.file).toBe(walPath);
    expect(err.offset).toBe(bytes.length);
    expect(err.message).toMatch(/ends at seq 8, but records up to seq 10 belong in this segment/);
  });

  it('a log that starts after the snapshot ends', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(`${DIR}/${snapshotFileName(2)}`, encodeSnapshot(2, []));
    fs.writeBytes(`${DIR}/${segmentFileName(5)}`, segment(5, opsFor(2, 5)).bytes);
    const err = await refusal(fs);
    expect(err.message).toMatch(/seq 3 is missing/);
  });
});

describe('segments and sequence numbers', () => {
  it('a later segment supersedes re-written records of the one before: nothing applied twice', async () => {
    const original = opsFor(7);
    const rewritten = opsFor(4, 6).map((r) => ({
      ...r,
      op: { kind: 'append', poolId: 50 + r.seq, values: Float64Array.of(r.seq) } as PoolOp,
    }));
    const fs = new PowerCutFs();
    fs.writeBytes(`${DIR}/${segmentFileName(1)}`, segment(1, original).bytes); // holds 6, 7 that were never acknowledged
    fs.writeBytes(`${DIR}/${segmentFileName(6)}`, segment(6, rewritten).bytes);
    const { engine, report } = await recoverFrom(fs);
    expectState(engine, [...original.slice(0, 5), ...rewritten]);
    expect(report.lastSeq).toBe(9);
  });

  it('segments fully covered by the snapshot are not read (their damage does not matter)', async () => {
    const recs = opsFor(10);
    const fs = new PowerCutFs();
    fs.writeBytes(
      `${DIR}/${segmentFileName(1)}`,
      Uint8Array.from({ length: 300 }, (_, i) => i & 255),
    );
    const snapState = modelState(recs.slice(0, 6).map((r) => r.op));
    fs.writeBytes(
      `${DIR}/${snapshotFileName(6)}`,
      encodeSnapshot(
        6,
        [...snapState].map(([poolId, v]) => snapshotPoolOf(poolId, [sortedRun(v)])),
      ),
    );
    fs.writeBytes(`${DIR}/${segmentFileName(5)}`, segment(5, recs.slice(4)).bytes);
    const { engine, report } = await recoverFrom(fs);
    expectState(engine, recs);
    expect(report).toMatchObject({ snapshotSeq: 6, recordsReplayed: 4, recordsSkipped: 2, lastSeq: 10 });
  });

  it('leftover temporary files are removed and the directory fsynced', async () => {
    const fs = new PowerCutFs();
    fs.writeBytes(`${DIR}/${segmentFileName(1)}`, segment(1, opsFor(3)).bytes);
    fs.writeBytes(`${DIR}/${snapshotFileName(3)}.tmp`, new Uint8Array(100));
    fs.writeBytes(`${DIR}/${segmentFileName(4)}.tmp`, new Uint8Array(10));
    const { report } = await recoverFrom(fs);
    expect(report.removedTempFiles.sort()).toEqual([`${segmentFileName(4)}.tmp`, `${snapshotFileName(3)}.tmp`].sort());
    expect(fs.list(DIR)).toEqual([segmentFileName(1)]);
    expect(fs.events.some((e) => e.op === 'fsyncDir')).toBe(true);
  });
});

describe('damaged snapshots', () => {
  const recs = opsFor(12);
  const stateAt = (seq: number) =>
    [...modelState(recs.slice(0, seq).map((r) => r.op))].map(([poolId, v]) => snapshotPoolOf(poolId, [sortedRun(v)]));
  const newest = encodeSnapshot(8, stateAt(8));

  function layout(snapshotBytes: Uint8Array, withOlder: boolean, logFrom: number): PowerCutFs {
    const fs = new PowerCutFs();
    fs.writeBytes(`${DIR}/${snapshotFileName(8)}`, snapshotBytes);
    if (withOlder) fs.writeBytes(`${DIR}/${snapshotFileName(4)}`, encodeSnapshot(4, stateAt(4)));
    fs.writeBytes(`${DIR}/${segmentFileName(logFrom)}`, segment(logFrom, recs.slice(logFrom - 1)).bytes);
    return fs;
  }

  it('the intact layout recovers from the newest snapshot', async () => {
    const { engine, report } = await recoverFrom(layout(newest, true, 5));
    expectState(engine, recs);
    expect(report.snapshotFile).toBe(snapshotFileName(8));
  });

  it('truncated or flipped anywhere: falls back to the previous snapshot when the log covers the gap, and sets the bad one aside', async () => {
    const damages: Uint8Array[] = [];
    for (let len = 0; len < newest.length; len += 7) damages.push(newest.subarray(0, len));
    for (let at = 0; at < newest.length; at++) {
      const b = newest.slice();
      b[at] ^= 0x08;
      damages.push(b);
    }
    for (const damaged of damages) {
      const fs = layout(damaged, true, 5);
      const { engine, report } = await recoverFrom(fs);
      expectState(engine, recs);
      expect(report.snapshotFile).toBe(snapshotFileName(4));
      expect(report.corruptSnapshots).toEqual([snapshotFileName(8)]);
      expect(fs.list(DIR)).toContain(`${snapshotFileName(8)}.corrupt`);
    }
  });

  it('with no fallback the log can cover, refuses naming the snapshot', async () => {
    const damaged = newest.slice();
    damaged[newest.length - 20] ^= 0xff; // inside the index
    for (const fs of [layout(damaged, false, 9), layout(damaged, true, 9)]) {
      const err = await refusal(fs);
      expect(err.file).toBe(`${DIR}/${snapshotFileName(8)}`);
      expect(err.message).toMatch(/index CRC mismatch/);
    }
    // The log covers everything after the older snapshot but not up to the damaged one's seq.
    const fs = new PowerCutFs();
    fs.writeBytes(`${DIR}/${snapshotFileName(8)}`, damaged);
    fs.writeBytes(`${DIR}/${snapshotFileName(4)}`, encodeSnapshot(4, stateAt(4)));
    fs.writeBytes(`${DIR}/${segmentFileName(5)}`, segment(5, recs.slice(4, 6)).bytes);
    const err = await refusal(fs);
    expect(err.file).toBe(`${DIR}/${snapshotFileName(8)}`);
    expect(err.message).toMatch(/log ends at seq 6/);
  });
});

describe('start-up through openDurableStore', () => {
  it('recovers, appends after the recovered tail and recovers again (idempotent)', async () => {
    const recs = opsFor(9);
    const { bytes, starts } = segment(1, recs);
    let fs = new PowerCutFs();
    fs.writeBytes(`${DIR}/${segmentFileName(1)}`, concatBytes(bytes.subarray(0, starts[8] + 13), new Uint8Array(50)));
    const engine = await createTestEngine('ts');
    const store = await openDurableStore({ dataDir: DIR, fsync: 'always', engine, files: fs, snapshotIntervalMs: 0 });
    expectState(engine, recs.slice(0, 8));
    await store.append(77, sortedRun([1, 2]));
    fs = fs.powerCut(seededRandom(1));
    for (let i = 0; i < 2; i++) {
      const again = await createTestEngine('ts');
      const s = await openDurableStore({ dataDir: DIR, fsync: 'always', engine: again, files: fs, snapshotIntervalMs: 0 });
      expect(
        diffState(
          engineState(again),
          modelState([...recs.slice(0, 8).map((r) => r.op), { kind: 'append', poolId: 77, values: Float64Array.of(1, 2) }]),
        ),
      ).toBeNull();
      fs = fs.powerCut(seededRandom(2 + i));
      void s;
    }
  });
});
