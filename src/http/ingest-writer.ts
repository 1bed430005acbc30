// The one writer every state change of the server goes through (HTTP
// appends, /batch, /ws adds, deletes): the store's PoolWriter, plus a change
// notification for live subscriptions (subscription-hub.ts), so a subscriber
// sees appends from every path. Idempotency keys and all-or-nothing batches
// are the store's (logged with the change, so they survive a restart).

import type { AppendOutcome } from '../core/engine.js';
import type { AppendItem, AppendResult, Awaitable, PoolWriter } from '../storage/pool-writer.js';

export type BatchItem = AppendItem;

export interface IngestWriter {
  append(poolId: number, run: AppendItem['run'], key: string | null): Awaitable<AppendOutcome>;
  /** All items or none (one logged transaction); one outcome per item. */
  appendAll(items: readonly BatchItem[], key: string | null): Awaitable<AppendOutcome[]>;
  deletePool(poolId: number): Awaitable<boolean>;
  /** Sets (seconds) or removes (null) a pool's retention window, creating the pool if new; its answers change (expiry), so subscribers hear of it. */
  setRetention(poolId: number, windowSeconds: number | null): Awaitable<void>;
}

function then<T, U>(value: Awaitable<T>, fn: (v: T) => U): Awaitable<U> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

export function ingestWriter(writer: PoolWriter, changed: (poolId: number) => void): IngestWriter {
  return {
    append(poolId, run, key) {
      return then(writer.append(poolId, run, key === null ? undefined : { key }), (o: AppendResult) => {
        if (o.replayed !== true) changed(poolId);
        return o;
      });
    },
    appendAll(items, key) {
      return then(writer.appendAll(items, key === null ? undefined : { key }), (outcomes: AppendResult[]) => {
        if (outcomes[0]?.replayed !== true) for (const item of items) changed(item.poolId);
        return outcomes;
      });
    },
    deletePool(poolId) {
      return then(writer.deletePool(poolId), (existed) => {
        if (existed) changed(poolId);
        return existed;
      });
    },
    setRetention(poolId, windowSeconds) {
      return then(writer.setRetention(poolId, windowSeconds), () => changed(poolId));
    },
  };
}
