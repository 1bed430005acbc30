// Round trips of the codecs: CRC masking, WAL segment headers and records,
// snapshots (version 2: windows, arrival-time buckets, plain and counted runs)
// through all three drivers (in memory, FileLayer, sync node:fs), with
// fast-check generating pools, runs and awkward doubles.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { allocateRun, SHARED_RUN_MIN_LENGTH, trustSorted, type SortedRun } from '../src/core/sorted-run.js';
import { encodeSorted, encodingOf, type StoredRun } from '../src/core/stored-run.js';
import { MAX_WINDOW_SECONDS } from '../src/core/time-window.js';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { bytesOf, crc32cOf, maskCrc, rememberValuesCrc, unmaskCrc } from '../src/storage/binary.js';
import { crc32cCombine } from '../src/storage/crc32c-combine.js';
import { nodeFileLayer } from '../src/storage/file-layer.js';
import {
  encodeSnapshot,
  parseSnapshotFileName,
  readSnapshotFile,
  snapshotFileName,
  writeSnapshotFile,
  writeSnapshotFileSync,
  type SnapshotPool,
} from '../src/storage/snapshot-format.js';
import {
  decodeSegmentHeader,
  encodeSegmentHeader,
  parseSegmentFileName,
  segmentFileName,
  WalFlag,
  WalOp,
} from '../src/storage/wal-format.js';
import { decodeRecordHeaderV1, encodeRecordV1, recordCrcV1 } from '../src/storage/wal-record-v1.js';
import {
  decodeRecordHeaderV2,
  encodeRecordIntoV2,
  encodeRecordV2,
  recordCrcV2,
  recordLengthV2,
  V2_RECORD_HEADER_BYTES,
  writeRecordHeaderV2,
  type RecordV2,
} from '../src/storage/wal-record-v2.js';
import { PowerCutFs } from './helpers/power-cut-fs.js';
import { bits, snapshotPoolOf } from './helpers/storage-model.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'poolq-format-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

const finiteDouble = fc.double({ noNaN: true, noDefaultInfinity: true });
const run = fc.array(finiteDouble, { minLength: 1, maxLength: 40 }).map((values) => {
  const r = allocateRun(values.length);
  r.set(values);
  r.sort();
  return trustSorted(r);
});
const poolIdArb = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER), fc.maxSafeNat());
/** Runs with repeats, so both encodings get non-trivial counts. */
const repeatingRun = fc.array(fc.oneof(finiteDouble, fc.integer({ min: -3, max: 3 })), { minLength: 1, maxLength: 40 }).map((values) => {
  const r = allocateRun(values.length);
  r.set(values);
  r.sort();
  return trustSorted(r);
});
const storedRunArb = fc
  .tuple(repeatingRun, fc.constantFrom('plain' as const, 'counted' as const))
  .map(([values, encoding]) => encodeSorted(values, encoding));
const bucketArb = fc
  .record({
    startMs: fc.integer({ min: 0, max: 2 ** 45 }),
    width: fc.integer({ min: 1, max: 10_000_000 }),
    runs: fc.array(storedRunArb, { minLength: 1, maxLength: 3 }),
  })
  .map(({ startMs, width, runs }) => ({ startMs, endMs: startMs + width, runs }));
const poolsArb = fc
  .uniqueArray(
    fc.record({
      poolId: poolIdArb,
      windowSeconds: fc.option(fc.integer({ min: 1, max: MAX_WINDOW_SECONDS }), { nil: null }),
      buckets: fc.array(bucketArb, { maxLength: 3 }),
    }),
    { selector: (p) => p.poolId, maxLength: 12 },
  )
  .map((pools) => pools.sort((a, b) => a.poolId - b.poolId) as SnapshotPool[]);

const runBits = (run: StoredRun) => ({
  encoding: encodingOf(run),
  count: run.count,
  distinct: run.distinct,
  values: bits(Array.from(run.values)),
  ends: run.ends === null ? null : Array.from(run.ends),
});
const poolBits = (pools: readonly SnapshotPool[]) =>
  pools.map((p) => ({
    poolId: p.poolId,
    windowSeconds: p.windowSeconds,
    buckets: p.buckets.map((b) => ({ startMs: b.startMs, endMs: b.endMs, runs: b.runs.map(runBits) })),
  }));

async function readV2(fs: Parameters<typeof readSnapshotFile>[0], path: string): Promise<{ seq: number; pools: SnapshotPool[] }> {
  const loaded = await readSnapshotFile(fs, path);
  if (loaded.version !== 2) throw new Error(`expected a version 2 snapshot, got ${loaded.version}`);
  return loaded;
}

describe('CRC32C', () => {
  it('matches the standard check value and masks reversibly (LevelDB masking)', () => {
    expect(crc32cOf(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (crc) => unmaskCrc(maskCrc(crc)) === crc));
    expect(maskCrc(0)).not.toBe(0);
  });

  it('the JS loop for small inputs agrees with the native CRC at every length, continuing from any CRC', () => {
    // crc32cOf hashes up to 128 bytes in JS and more natively; both must be one function.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 0xffffffff }), (bytes, initial) => {
        expect(crc32cOf(bytes, initial)).toBe(nativeCrc32c(bytes, initial) >>> 0);
      }),
      { numRuns: 1000 },
    );
  });

  it('combines: crc(A ‖ B) from crc(A), crc(B) and |B|, empty parts included', () => {
    const bytes = fc.uint8Array({ maxLength: 2000 });
    fc.assert(
      fc.property(bytes, bytes, (a, b) => {
        const joined = new Uint8Array(a.length + b.length);
        joined.set(a);
        joined.set(b, a.length);
        expect(crc32cCombine(crc32cOf(a), crc32cOf(b), b.length)).toBe(crc32cOf(joined));
      }),
      { numRuns: 300 },
    );
  });

  it('a WAL record of values whose CRC a worker remembered is byte-identical to one hashed on the spot', () => {
    const values = Float64Array.from({ length: 5000 }, (_, i) => i * 0.5 - 7);
    const copy = values.slice();
    rememberValuesCrc(values, crc32cOf(bytesOf(values)));
    const body = { poolId: 77, op: WalOp.append, flags: 0, atMs: 1_700_000_000_000, key: new TextEncoder().encode('k-1') };
    const expected = encodeRecordV2({ seq: 9, syncedSeq: 8, ...body, run: copy });
    // The writer's path for a large run: header and key in its buffer, the values written from place.
    const fromPlace = (run: Float64Array) => {
      const head = new Uint8Array(V2_RECORD_HEADER_BYTES + 8);
      const end = writeRecordHeaderV2(head, new DataView(head.buffer), 0, 9, 8, { ...body, run });
      const out = new Uint8Array(end + run.byteLength);
      out.set(head.subarray(0, end));
      out.set(bytesOf(run), end);
      return Array.from(out);
    };
    expect(fromPlace(values)).toEqual(Array.from(expected));
    rememberValuesCrc(values, 12345); // a wrong remembered CRC is used as is: the record no longer verifies
    expect(fromPlace(values)).not.toEqual(Array.from(expected));
  });
});

describe('WAL format', () => {
  it('file names carry firstSeq as 16 hex digits', () => {
    expect(segmentFileName(1)).toBe('wal-0000000000000001.log');
    expect(parseSegmentFileName(segmentFileName(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseSegmentFileName('wal-1.log')).toBeNull();
    expect(parseSegmentFileName('wal-0000000000000001.log.tmp')).toBeNull();
  });

  it('segment header round trips; damage anywhere in it is detected', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.constantFrom(1 as const, 2 as const),
        fc.nat(31),
        fc.integer({ min: 1, max: 255 }),
        (firstSeq, version, at, flip) => {
          const h = encodeSegmentHeader(firstSeq, version);
          expect(decodeSegmentHeader(h)).toEqual({ firstSeq, version });
          h[at] ^= flip;
          expect('error' in decodeSegmentHeader(h)).toBe(true);
        },
      ),
    );
  });

  it('new segments are version 2; other versions are refused', () => {
    expect(decodeSegmentHeader(encodeSegmentHeader(5))).toEqual({ firstSeq: 5, version: 2 });
    const v3 = encodeSegmentHeader(5);
    new DataView(v3.buffer).setUint32(8, 3, true);
    new DataView(v3.buffer).setUint32(28, maskCrc(crc32cOf(v3.subarray(0, 28))), true);
    expect(decodeSegmentHeader(v3)).toEqual({ error: 'unsupported WAL version 3' });
  });

  it('version 1 records round trip every field, 8-byte aligned, and any flipped byte breaks the CRC or the header', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        poolIdArb,
        fc.option(run),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (seq, poolId, values, flipAt, flip) => {
          const syncedSeq = seq - 1;
          const op = values === null ? WalOp.delete : WalOp.append;
          const bytes = encodeRecordV1({ seq, syncedSeq, op, poolId }, values);
          expect(bytes.length % 8).toBe(0);
          const h = decodeRecordHeaderV1(bytes)!;
          expect(h).toMatchObject({ seq, syncedSeq, op, poolId, valueCount: values?.length ?? 0, length: bytes.length, timeMs: null });
          const valueBytes = bytes.subarray(40);
          expect(recordCrcV1(bytes, valueBytes)).toBe(h.storedCrc);
          if (values !== null) expect(bits(Array.from(new Float64Array(valueBytes.slice().buffer)))).toEqual(bits(Array.from(values)));

          const damaged = bytes.slice();
          damaged[flipAt % damaged.length] ^= flip;
          const dh = decodeRecordHeaderV1(damaged);
          expect(dh === null || recordCrcV1(damaged, damaged.subarray(40)) !== dh.storedCrc || dh.length !== bytes.length).toBe(true);
        },
      ),
    );
  });

  it('version 2 records round trip every field (time, key, flags, retention), 8-byte aligned, and any flipped byte breaks the CRC or the header', () => {
    const key = fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }));
    const record = fc.oneof(
      fc.record({ op: fc.constant(WalOp.append), run, key }),
      fc.record({ op: fc.constant(WalOp.delete), run: fc.constant(null), key: fc.constant(null) }),
      fc.record({ op: fc.constant(WalOp.retention), run: fc.maxSafeNat().map((w) => Float64Array.of(w)), key: fc.constant(null) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        poolIdArb,
        record,
        fc.constantFrom(0, WalFlag.continues),
        fc.maxSafeNat(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (seq, poolId, r, flags, atMs, flipAt, flip) => {
          const rec: RecordV2 = { seq, syncedSeq: seq - 1, poolId, flags, atMs, ...r };
          const bytes = encodeRecordV2(rec);
          const keyLength = r.key?.length ?? 0;
          expect(bytes.length).toBe(recordLengthV2(r.run?.length ?? 0, keyLength));
          expect(bytes.length % 8).toBe(0);
          const h = decodeRecordHeaderV2(bytes)!;
          expect(h).toEqual({
            length: bytes.length,
            storedCrc: h.storedCrc,
            headerBytes: 48,
            seq,
            syncedSeq: seq - 1,
            poolId,
            op: r.op,
            flags,
            keyLength,
            valueCount: r.run?.length ?? 0,
            timeMs: atMs,
          });
          expect(recordCrcV2(bytes, bytes.subarray(48))).toBe(h.storedCrc);
          expect(Array.from(bytes.subarray(48, 48 + keyLength))).toEqual(Array.from(r.key ?? []));
          const valuesAt = 48 + ((keyLength + 7) & ~7);
          expect(bytes.subarray(48 + keyLength, valuesAt).every((b) => b === 0)).toBe(true);
          if (r.run !== null) expect(bits(Array.from(new Float64Array(bytes.slice(valuesAt).buffer)))).toEqual(bits(Array.from(r.run)));

          const damaged = bytes.slice();
          damaged[flipAt % damaged.length] ^= flip;
          const dh = decodeRecordHeaderV2(damaged);
          expect(dh === null || recordCrcV2(damaged, damaged.subarray(48)) !== dh.storedCrc || dh.length !== bytes.length).toBe(true);
        },
      ),
    );
  });

  it('version 2 headers that poolq never writes are not records: keys on deletes, unknown flags, a retention record without its one value', () => {
    const base = { seq: 3, syncedSeq: 2, poolId: 1, flags: 0, atMs: 5 };
    const withByte = (bytes: Uint8Array, at: number, value: number) => {
      const copy = bytes.slice();
      copy[at] = value;
      return copy;
    };
    const del = encodeRecordV2({ ...base, op: WalOp.delete, key: null, run: null });
    expect(decodeRecordHeaderV2(del)).not.toBeNull();
    expect(decodeRecordHeaderV2(withByte(del, 33, 2))).toBeNull(); // unknown flag
    expect(decodeRecordHeaderV2(withByte(del, 35, 1))).toBeNull(); // reserved byte
    expect(decodeRecordHeaderV2(withByte(del, 32, 4))).toBeNull(); // unknown op
    const keyedDelete = withByte(withByte(del, 34, 8), 0, 56); // a key and the length to match
    expect(decodeRecordHeaderV2(keyedDelete)).toBeNull();
    const retention = encodeRecordV2({ ...base, op: WalOp.retention, key: null, run: Float64Array.of(60) });
    expect(decodeRecordHeaderV2(retention)).toMatchObject({ op: WalOp.retention, valueCount: 1 });
    expect(decodeRecordHeaderV2(withByte(withByte(retention, 36, 2), 0, 64))).toBeNull(); // two values
  });

  it("the writer's in-place encoder writes encodeRecordV2's bytes, at any offset of a batch, without touching its neighbours", () => {
    // encodeRecordIntoV2 copies ≤ 32 values one by one and more through a byte view, and hashes
    // ranges of ≤ 128 bytes in JS and longer ones natively: the counts below cross both.
    const values = fc.oneof(
      fc.constant(null),
      fc.array(finiteDouble, { minLength: 1, maxLength: 80 }).map((v) => Float64Array.from(v)),
    );
    const u64 = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.maxSafeNat());
    fc.assert(
      fc.property(
        values,
        fc.integer({ min: 1, max: 2 ** 40 }),
        u64,
        u64,
        fc.nat(64),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 })),
        (vals, seq, syncedSeq, poolId, slot, key) => {
          const rec: RecordV2 = {
            seq,
            syncedSeq: Math.min(syncedSeq, seq - 1),
            poolId,
            op: vals === null ? WalOp.delete : WalOp.append,
            flags: WalFlag.continues,
            atMs: seq * 3,
            key: vals === null ? null : key,
            run: vals,
          };
          const want = encodeRecordV2(rec);
          const at = slot * 8;
          const batch = new Uint8Array(at + want.length + 16).fill(0xa5);
          const length = encodeRecordIntoV2(batch, new DataView(batch.buffer), at, rec.seq, rec.syncedSeq, rec);
          expect(length).toBe(want.length);
          expect(Array.from(batch.subarray(at, at + want.length))).toEqual(Array.from(want));
          expect(batch.subarray(0, at).every((b) => b === 0xa5) && batch.subarray(at + want.length).every((b) => b === 0xa5)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a zero-filled region is never a record header', () => {
    expect(decodeRecordHeaderV1(new Uint8Array(40))).toBeNull();
    expect(decodeRecordHeaderV2(new Uint8Array(48))).toBeNull();
  });
});

describe('snapshot format', () => {
  it('file names carry seq as 16 hex digits', () => {
    expect(snapshotFileName(255)).toBe('snapshot-00000000000000ff.bin');
    expect(parseSnapshotFileName(snapshotFileName(42))).toBe(42);
    expect(parseSnapshotFileName('snapshot-00000000000000ff.bin.tmp')).toBeNull();
  });

  it('round trips pools (window, buckets, plain and counted runs), values 8-byte aligned, through a FileLayer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), poolsArb, async (seq, pools) => {
        const fs = new PowerCutFs();
        await fs.mkdir('/d');
        const summary = await writeSnapshotFile(fs, '/d/s.bin', seq, pools);
        const bytes = fs.readBytes('/d/s.bin');
        expect(Buffer.from(bytes).equals(Buffer.from(encodeSnapshot(seq, pools)))).toBe(true);
        expect(summary).toMatchObject({ seq, pools: pools.length, bytes: bytes.length });
        const loaded = await readV2(fs, '/d/s.bin');
        expect(loaded.seq).toBe(seq);
        expect(poolBits(loaded.pools)).toEqual(poolBits(pools));
      }),
      { numRuns: 60 },
    );
  });

  it('the sync node:fs writer (for workers) and the async one produce identical files', async () => {
    const big = allocateRun(SHARED_RUN_MIN_LENGTH + 3); // SharedArrayBuffer-backed, written zero-copy
    for (let i = 0; i < big.length; i++) big[i] = i / 7 - 1000;
    const pools: SnapshotPool[] = [
      snapshotPoolOf(3, [big as SortedRun, trustSorted(Float64Array.of(-0, 0, 1))]),
      {
        poolId: 2 ** 40,
        windowSeconds: 60,
        buckets: [{ startMs: 1000, endMs: 2000, runs: [encodeSorted(trustSorted(Float64Array.of(2.5, 2.5, 3)), 'counted')] }],
      },
      { poolId: 2 ** 41, windowSeconds: 3600, buckets: [] }, // a window set, every value gone
    ];
    const syncPath = join(tmpRoot, 'sync.bin');
    const asyncPath = join(tmpRoot, 'async.bin');
    writeSnapshotFileSync(syncPath, 99, pools);
    await writeSnapshotFile(nodeFileLayer, asyncPath, 99, pools);
    const a = readFileSync(syncPath);
    expect(a.equals(readFileSync(asyncPath))).toBe(true);
    expect(a.equals(Buffer.from(encodeSnapshot(99, pools)))).toBe(true);
    const loaded = await readV2(nodeFileLayer, syncPath);
    expect(loaded.pools[0].buckets[0].runs[0].values.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(poolBits(loaded.pools)).toEqual(poolBits(pools));
  });

  it('an empty engine snapshots to a header-only file', async () => {
    const bytes = encodeSnapshot(0, []);
    expect(bytes.length).toBe(64);
    const fs = new PowerCutFs();
    fs.writeBytes('/d/e.bin', bytes);
    expect((await readSnapshotFile(fs, '/d/e.bin')).pools).toEqual([]);
  });

  it('every truncation and every flipped byte is detected', async () => {
    const pools: SnapshotPool[] = [
      snapshotPoolOf(1, [trustSorted(Float64Array.of(1, 2, 3)), trustSorted(Float64Array.of(0.5))]),
      {
        poolId: 9,
        windowSeconds: 10,
        buckets: [{ startMs: 5, endMs: 7, runs: [encodeSorted(trustSorted(Float64Array.of(-4, -4, 1)), 'counted')] }],
      },
      { poolId: 10, windowSeconds: 20, buckets: [] },
    ];
    const good = encodeSnapshot(7, pools);
    const fs = new PowerCutFs();
    for (let len = 0; len < good.length; len++) {
      fs.writeBytes('/d/t.bin', good.subarray(0, len));
      await expect(readSnapshotFile(fs, '/d/t.bin')).rejects.toThrow();
    }
    for (let at = 0; at < good.length; at++) {
      const bad = good.slice();
      bad[at] ^= 0x10;
      fs.writeBytes('/d/f.bin', bad);
      await expect(readSnapshotFile(fs, '/d/f.bin'), `flip at ${at}`).rejects.toThrow();
    }
  });
});
