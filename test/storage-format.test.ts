// Round trips of the v1 codecs: CRC masking, WAL segment headers and records,
// snapshots through all three drivers (in memory, FileLayer, sync node:fs),
// with fast-check generating pools, runs and awkward doubles.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { allocateRun, SHARED_RUN_MIN_LENGTH, trustSorted, type SortedRun } from '../src/core/sorted-run.js';
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
  decodeRecordHeader,
  decodeSegmentHeader,
  encodeRecord,
  encodeRecordInto,
  encodeSegmentHeader,
  parseSegmentFileName,
  recordCrc,
  segmentFileName,
  WalOp,
} from '../src/storage/wal-format.js';
import { PowerCutFs } from './helpers/power-cut-fs.js';
import { bits } from './helpers/storage-model.js';

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
const poolsArb = fc
  .uniqueArray(fc.record({ poolId: poolIdArb, runs: fc.array(run, { minLength: 1, maxLength: 4 }) }), {
    selector: (p) => p.poolId,
    maxLength: 12,
  })
  .map((pools) => pools.sort((a, b) => a.poolId - b.poolId) as SnapshotPool[]);

const runBits = (pools: readonly SnapshotPool[]) => pools.map((p) => ({ poolId: p.poolId, runs: p.runs.map((r) => bits(Array.from(r))) }));

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
    const header = { seq: 9, syncedSeq: 8, poolId: 77, op: WalOp.append };
    expect(Array.from(encodeRecord(header, values))).toEqual(Array.from(encodeRecord(header, copy)));
    rememberValuesCrc(values, 12345); // a wrong remembered CRC is used as is: the record no longer verifies
    expect(Array.from(encodeRecord(header, values))).not.toEqual(Array.from(encodeRecord(header, copy)));
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
        fc.nat(31),
        fc.integer({ min: 1, max: 255 }),
        (firstSeq, at, flip) => {
          const h = encodeSegmentHeader(firstSeq);
          expect(decodeSegmentHeader(h)).toEqual({ firstSeq });
          h[at] ^= flip;
          expect('error' in decodeSegmentHeader(h)).toBe(true);
        },
      ),
    );
  });

  it('records round trip every field, 8-byte aligned, and any flipped byte breaks the CRC or the header', () => {
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
          const bytes = encodeRecord({ seq, syncedSeq, op, poolId }, values);
          expect(bytes.length % 8).toBe(0);
          const h = decodeRecordHeader(bytes)!;
          expect(h).toMatchObject({ seq, syncedSeq, op, poolId, valueCount: values?.length ?? 0, length: bytes.length });
          const valueBytes = bytes.subarray(40);
          expect(recordCrc(bytes, valueBytes)).toBe(h.storedCrc);
          if (values !== null) expect(bits(Array.from(new Float64Array(valueBytes.slice().buffer)))).toEqual(bits(Array.from(values)));

          const damaged = bytes.slice();
          damaged[flipAt % damaged.length] ^= flip;
          const dh = decodeRecordHeader(damaged);
          expect(dh === null || recordCrc(damaged, damaged.subarray(40)) !== dh.storedCrc || dh.length !== bytes.length).toBe(true);
        },
      ),
    );
  });

  it("the writer's in-place encoder writes encodeRecord's bytes, at any offset of a batch, without touching its neighbours", () => {
    // encodeRecordInto copies ≤ 32 values one by one and more through a byte view, and hashes
    // ranges of ≤ 128 bytes in JS and longer ones natively: the counts below cross both.
    const values = fc.oneof(
      fc.constant(null),
      fc.array(finiteDouble, { minLength: 1, maxLength: 80 }).map((v) => Float64Array.from(v)),
    );
    const u64 = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.maxSafeNat());
    fc.assert(
      fc.property(values, fc.integer({ min: 1, max: 2 ** 40 }), u64, u64, fc.nat(64), (vals, seq, syncedSeq, poolId, slot) => {
        const header = { seq, syncedSeq: Math.min(syncedSeq, seq - 1), poolId, op: vals === null ? WalOp.delete : WalOp.append };
        const want = encodeRecord(header, vals);
        const at = slot * 8;
        const batch = new Uint8Array(at + want.length + 16).fill(0xa5);
        const crc = encodeRecordInto(batch, new DataView(batch.buffer), at, header.seq, header.syncedSeq, header.poolId, header.op, vals);
        expect(Array.from(batch.subarray(at, at + want.length))).toEqual(Array.from(want));
        expect(crc).toBe(decodeRecordHeader(want)!.storedCrc);
        expect(batch.subarray(0, at).every((b) => b === 0xa5) && batch.subarray(at + want.length).every((b) => b === 0xa5)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a zero-filled region is never a record header', () => {
    expect(decodeRecordHeader(new Uint8Array(40))).toBeNull();
  });
});

describe('snapshot format', () => {
  it('file names carry seq as 16 hex digits', () => {
    expect(snapshotFileName(255)).toBe('snapshot-00000000000000ff.bin');
    expect(parseSnapshotFileName(snapshotFileName(42))).toBe(42);
    expect(parseSnapshotFileName('snapshot-00000000000000ff.bin.tmp')).toBeNull();
  });

  it('round trips pools run by run, values 8-byte aligned, through a FileLayer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), poolsArb, async (seq, pools) => {
        const fs = new PowerCutFs();
        await fs.mkdir('/d');
        const summary = await writeSnapshotFile(fs, '/d/s.bin', seq, pools);
        const bytes = fs.readBytes('/d/s.bin');
        expect(Buffer.from(bytes).equals(Buffer.from(encodeSnapshot(seq, pools)))).toBe(true);
        expect(summary).toMatchObject({ seq, pools: pools.length, bytes: bytes.length });
        const loaded = await readSnapshotFile(fs, '/d/s.bin');
        expect(loaded.seq).toBe(seq);
        expect(runBits(loaded.pools)).toEqual(runBits(pools));
      }),
      { numRuns: 60 },
    );
  });

  it('the sync node:fs writer (for workers) and the async one produce identical files', async () => {
    const big = allocateRun(SHARED_RUN_MIN_LENGTH + 3); // SharedArrayBuffer-backed, written zero-copy
    for (let i = 0; i < big.length; i++) big[i] = i / 7 - 1000;
    const pools: SnapshotPool[] = [
      { poolId: 3, runs: [big as SortedRun, trustSorted(Float64Array.of(-0, 0, 1))] },
      { poolId: 2 ** 40, runs: [trustSorted(Float64Array.of(2.5))] },
    ];
    const syncPath = join(tmpRoot, 'sync.bin');
    const asyncPath = join(tmpRoot, 'async.bin');
    writeSnapshotFileSync(syncPath, 99, pools);
    await writeSnapshotFile(nodeFileLayer, asyncPath, 99, pools);
    const a = readFileSync(syncPath);
    expect(a.equals(readFileSync(asyncPath))).toBe(true);
    expect(a.equals(Buffer.from(encodeSnapshot(99, pools)))).toBe(true);
    const loaded = await readSnapshotFile(nodeFileLayer, syncPath);
    expect(loaded.pools[0].runs[0].buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(runBits(loaded.pools)).toEqual(runBits(pools));
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
      { poolId: 1, runs: [trustSorted(Float64Array.of(1, 2, 3)), trustSorted(Float64Array.of(0.5))] },
      { poolId: 9, runs: [trustSorted(Float64Array.of(-4))] },
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
