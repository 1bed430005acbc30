// Cluster mode: every write of every front end (HTTP appends in JSON or
// binary, /batch, /ws adds, deletes, retention windows) passes the shard gate when it starts:
// refused with 421 for another shard's pool, or 503 + Retry-After while its
// bucket moves, and otherwise counted until it is durable and applied, so a
// bucket export waits for it (src/protocol/shard-gate.ts). The route table's
// pool hook already refused other shards' pools before any body was read; this
// check is the one that cannot come too early, because a bucket may be marked
// moving while a body is still being read, parsed or sorted.

import type { ShardGate } from '../protocol/shard-gate.js';
import type { Awaitable } from '../storage/pool-writer.js';
import type { IngestWriter } from './ingest-writer.js';

function counted<T>(releases: readonly (() => void)[], write: () => Awaitable<T>): Awaitable<T> {
  const releaseAll = () => {
    for (const release of releases) release();
  };
  let result: Awaitable<T>;
  try {
    result = write();
  } catch (err) {
    releaseAll();
    throw err;
  }
  if (result instanceof Promise) void result.then(releaseAll, releaseAll);
  else releaseAll();
  return result;
}

/** Admits every pool (all or none), or throws the first refusal. */
function admitAll(gate: ShardGate, poolIds: Iterable<number>): (() => void)[] {
  const releases: (() => void)[] = [];
  try {
    for (const poolId of poolIds) releases.push(gate.admitWrite(poolId));
  } catch (err) {
    for (const release of releases) release();
    throw err;
  }
  return releases;
}

export function gatedWriter(writer: IngestWriter, gate: ShardGate): IngestWriter {
  return {
    append: (poolId, run, key) => counted([gate.admitWrite(poolId)], () => writer.append(poolId, run, key)),
    appendAll: (items, key) => counted(admitAll(gate, new Set(items.map((item) => item.poolId))), () => writer.appendAll(items, key)),
    deletePool: (poolId) => counted([gate.admitWrite(poolId)], () => writer.deletePool(poolId)),
    setRetention: (poolId, windowSeconds) => counted([gate.admitWrite(poolId)], () => writer.setRetention(poolId, windowSeconds)),
  };
}
