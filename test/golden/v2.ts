// The contents of the golden files of WAL format version 2 (test/golden/v2/):
// one segment with an append carrying an idempotency key and a time, a
// transaction of three appends (the last carrying the transaction's key),
// two retention records and a delete; and the key file a snapshot at seq 4
// would have beside it. `writeGoldenV2Files` regenerates them from these
// definitions with the current encoders; test/storage-golden.test.ts reads
// them back and checks the encoders still produce them byte for byte. Run
//   UPDATE_GOLDEN=v2 npx vitest run test/storage-golden.test.ts
// only when deliberately introducing this version's files.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppendOutcome } from '../../src/core/engine.js';
import type { KeyEntry } from '../../src/storage/idempotency-keys.js';
import { encodeKeysFile, keysFileName } from '../../src/storage/keys-file.js';
import { encodeSegmentHeader, segmentFileName, WAL_VERSION_2, WalFlag, WalOp } from '../../src/storage/wal-format.js';
import { encodeRecordV2 } from '../../src/storage/wal-record-v2.js';
import { concatBytes, sortedRun } from '../helpers/storage-model.js';

export const GOLDEN_V2_DIR = new URL('./v2/', import.meta.url).pathname;

/** 2023-11-14T22:13:20Z: the time of the first record. */
export const GOLDEN_V2_T0 = 1_700_000_000_000;
const T0 = GOLDEN_V2_T0;

export interface GoldenV2Record {
  seq: number;
  syncedSeq: number;
  op: WalOp;
  flags: number;
  poolId: number;
  timeMs: number;
  key: string | null;
  /** Values of an append, [windowSeconds] of a retention record, null for a delete. */
  values: number[] | null;
}

export const GOLDEN_V2_RECORDS: readonly GoldenV2Record[] = [
  { seq: 1, syncedSeq: 0, op: WalOp.append, flags: 0, poolId: 7, timeMs: T0, key: 'order-1', values: [2.5, -1, 0] },
  { seq: 2, syncedSeq: 1, op: WalOp.append, flags: WalFlag.continues, poolId: 8, timeMs: T0 + 1000, key: null, values: [1] },
  { seq: 3, syncedSeq: 1, op: WalOp.append, flags: WalFlag.continues, poolId: 9, timeMs: T0 + 1000, key: null, values: [4, 3] },
  { seq: 4, syncedSeq: 1, op: WalOp.append, flags: 0, poolId: 7, timeMs: T0 + 1000, key: 'batch-42', values: [5] },
  { seq: 5, syncedSeq: 4, op: WalOp.retention, flags: 0, poolId: 7, timeMs: T0 + 2000, key: null, values: [3600] },
  { seq: 6, syncedSeq: 4, op: WalOp.retention, flags: 0, poolId: 9, timeMs: T0 + 2000, key: null, values: [0] },
  { seq: 7, syncedSeq: 6, op: WalOp.delete, flags: 0, poolId: 8, timeMs: T0 + 3000, key: null, values: null },
];

/** Pools after replaying GOLDEN_V2_RECORDS. */
export const GOLDEN_V2_STATE: ReadonlyMap<number, readonly number[]> = new Map([
  [7, [-1, 0, 2.5, 5]],
  [9, [3, 4]],
]);

/** The times the engine gets with each append, in replay order. */
export const GOLDEN_V2_APPEND_TIMES = [T0, T0 + 1000, T0 + 1000, T0 + 1000];

/** The engine's setRetention calls at replay (a window of 0 is passed on as null: unbounded). */
export const GOLDEN_V2_RETENTION: readonly [number, number | null][] = [
  [7, 3600],
  [9, null],
];

/** The key table after replay, which is also the key file's content (all keyed records are <= seq 4). */
export const GOLDEN_V2_KEYS: readonly [string, KeyEntry][] = [
  ['order-1', { seq: 1, atMs: T0, windowFromMs: T0, items: [{ poolId: 7, valueCount: 3 }], outcomes: [{ created: true, count: 3 }] }],
  [
    'batch-42',
    {
      seq: 4,
      atMs: T0 + 1000,
      windowFromMs: T0 + 1000,
      items: [
        { poolId: 8, valueCount: 1 },
        { poolId: 9, valueCount: 2 },
        { poolId: 7, valueCount: 1 },
      ],
      outcomes: [
        { created: true, count: 1 },
        { created: true, count: 2 },
        { created: false, count: 4 },
      ] as AppendOutcome[],
    },
  ],
];

export const GOLDEN_V2_KEYS_SEQ = 4;
export const GOLDEN_V2_WAL_FILE = segmentFileName(1);
export const GOLDEN_V2_KEYS_FILE = keysFileName(GOLDEN_V2_KEYS_SEQ);

export function encodeGoldenV2Wal(): Uint8Array {
  const parts = [encodeSegmentHeader(1, WAL_VERSION_2)];
  for (const r of GOLDEN_V2_RECORDS) {
    const run = r.values === null ? null : r.op === WalOp.append ? sortedRun(r.values) : Float64Array.from(r.values);
    const key = r.key === null ? null : new TextEncoder().encode(r.key);
    parts.push(encodeRecordV2({ seq: r.seq, syncedSeq: r.syncedSeq, poolId: r.poolId, op: r.op, flags: r.flags, atMs: r.timeMs, key, run }));
  }
  return concatBytes(...parts);
}

export function encodeGoldenV2Keys(): Uint8Array {
  return encodeKeysFile({ seq: GOLDEN_V2_KEYS_SEQ, latestMs: T0 + 1000, entries: GOLDEN_V2_KEYS.map(([k, e]) => [k, e]) });
}

export function writeGoldenV2Files(dir = GOLDEN_V2_DIR): void {
  writeFileSync(join(dir, GOLDEN_V2_WAL_FILE), encodeGoldenV2Wal());
  writeFileSync(join(dir, GOLDEN_V2_KEYS_FILE), encodeGoldenV2Keys());
}
