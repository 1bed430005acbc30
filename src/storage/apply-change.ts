// The one place a logged change reaches the engine: on the write path (at
// submit under interval/never, once durable under always) and at replay, so
// both apply a record identically.

import type { QuantileEngine } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';
import type { ChangeResult } from './storage-types.js';
import { WalOp } from './wal-format.js';

/**
 * Applies one record. `run` holds an append's values (sorted: written from a
 * SortedRun and CRC-checked at replay) or a retention window as its one value
 * (0: unbounded, passed on as null). `atMs` is null for records that carry no time.
 */
export function applyChange(
  engine: QuantileEngine,
  op: WalOp,
  poolId: number,
  run: Float64Array | null,
  atMs: number | null,
): ChangeResult {
  switch (op) {
    case WalOp.append:
      return atMs === null ? engine.appendSortedRun(poolId, run as SortedRun) : engine.appendSortedRun(poolId, run as SortedRun, { atMs });
    case WalOp.delete:
      return engine.deletePool(poolId);
    case WalOp.retention: {
      const windowSeconds = run![0];
      engine.setRetention(poolId, windowSeconds === 0 ? null : windowSeconds, atMs === null ? undefined : { atMs });
      return null;
    }
  }
}
