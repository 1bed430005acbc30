// Pins storage format v1: the committed golden WAL segment and snapshot decode
// to known contents, and the current encoder reproduces them byte for byte. A
// failure here means the on-disk format changed: bump the version, keep a
// reader for v1, and add new golden files rather than regenerating these.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestEngine } from './helpers/engines.js';
import { PowerCutFs } from './helpers/power-cut-fs.js';
import {
  encodeGoldenSnapshot,
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
import { decodeRecordHeader, decodeSegmentHeader, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../src/storage/wal-format.js';

if (process.env.UPDATE_GOLDEN === '1') writeGoldenFiles();

const golden = (name: string) => new Uint8Array(readFileSync(join(GOLDEN_DIR, name)));

describe('golden files, format v1', () => {
  it('the WAL segment decodes field by field to the known records', () => {
    const bytes = golden(GOLDEN_WAL_FILE);
    expect(decodeSegmentHeader(bytes.subarray(0, SEGMENT_HEADER_BYTES))).toEqual({ firstSeq: 1 });
    const decoded = [];
    for (let at = SEGMENT_HEADER_BYTES; at < bytes.length;) {
      const h = decodeRecordHeader(bytes.subarray(at, at + RECORD_HEADER_BYTES));
      expect(h).not.toBeNull();
      const values =
        h!.valueCount === 0 ? null : Array.from(new Float64Array(bytes.slice(at + RECORD_HEADER_BYTES, at + h!.length).buffer));
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
    expect(snap.pools.map((p) => ({ poolId: p.poolId, runs: p.runs.map((r) => bits(Array.from(r))) }))).toEqual(
      GOLDEN_SNAPSHOT_POOLS.map((p) => ({ poolId: p.poolId, runs: p.runs.map((r) => bits(r)) })),
    );
  });

  it('the current encoder reproduces both files byte for byte', () => {
    expect(Buffer.from(encodeGoldenWal()).equals(Buffer.from(golden(GOLDEN_WAL_FILE)))).toBe(true);
    expect(Buffer.from(encodeGoldenSnapshot()).equals(Buffer.from(golden(GOLDEN_SNAPSHOT_FILE)))).toBe(true);
  });
});
