// The contents of the committed golden files (test/golden/), which pin storage
// format v1: a WAL segment and a snapshot. `writeGoldenFiles` regenerates the
// segment from these definitions with the current encoder; the golden test
// reads both back and checks the encoder still produces the segment byte for
// byte. Snapshot version 1 is read only now (the writer writes version 2), so
// its file is what it was. Run
//   UPDATE_GOLDEN=1 npx vitest run test/storage-golden.test.ts
// only when deliberately introducing a new format version.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotFileName } from '../../src/storage/snapshot-format.js';
import { encodeSegmentHeader, segmentFileName, WAL_VERSION_1, WalOp } from '../../src/storage/wal-format.js';
import { encodeRecordV1 } from '../../src/storage/wal-record-v1.js';
import { concatBytes, sortedRun } from './storage-model.js';

export const GOLDEN_DIR = new URL('../golden/', import.meta.url).pathname;

export interface GoldenRecord {
  seq: number;
  syncedSeq: number;
  op: WalOp;
  poolId: number;
  values: number[] | null;
}

export const GOLDEN_WAL_FIRST_SEQ = 1;

export const GOLDEN_WAL_RECORDS: readonly GoldenRecord[] = [
  { seq: 1, syncedSeq: 0, op: WalOp.append, poolId: 7, values: [-1.5, -0, 0, 2.25] },
  { seq: 2, syncedSeq: 1, op: WalOp.append, poolId: Number.MAX_SAFE_INTEGER, values: [1e-310, 3] },
  { seq: 3, syncedSeq: 1, op: WalOp.delete, poolId: 7, values: null },
  { seq: 4, syncedSeq: 3, op: WalOp.append, poolId: 42, values: [-Number.MAX_VALUE, 1, 1] },
];

/** Pools after replaying GOLDEN_WAL_RECORDS. */
export const GOLDEN_WAL_STATE: ReadonlyMap<number, readonly number[]> = new Map([
  [42, [-Number.MAX_VALUE, 1, 1]],
  [Number.MAX_SAFE_INTEGER, [1e-310, 3]],
]);

export const GOLDEN_SNAPSHOT_SEQ = 4;

/** Pools as runs (pool 9007199254740991 has two runs), ascending poolId. */
export const GOLDEN_SNAPSHOT_POOLS: readonly { poolId: number; runs: number[][] }[] = [
  { poolId: 0, runs: [[0.1]] },
  { poolId: 42, runs: [[-Number.MAX_VALUE, 1, 1]] },
  {
    poolId: Number.MAX_SAFE_INTEGER,
    runs: [
      [5e-324, 3],
      [-2, 8, 8.5],
    ],
  },
];

export const GOLDEN_WAL_FILE = segmentFileName(GOLDEN_WAL_FIRST_SEQ);
export const GOLDEN_SNAPSHOT_FILE = snapshotFileName(GOLDEN_SNAPSHOT_SEQ);

export function encodeGoldenWal(): Uint8Array {
  const parts = [encodeSegmentHeader(GOLDEN_WAL_FIRST_SEQ, WAL_VERSION_1)];
  for (const r of GOLDEN_WAL_RECORDS) {
    parts.push(
      encodeRecordV1({ seq: r.seq, syncedSeq: r.syncedSeq, op: r.op, poolId: r.poolId }, r.values === null ? null : sortedRun(r.values)),
    );
  }
  return concatBytes(...parts);
}

export function writeGoldenFiles(dir = GOLDEN_DIR): void {
  writeFileSync(join(dir, GOLDEN_WAL_FILE), encodeGoldenWal());
}
