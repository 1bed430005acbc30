// What the ingest paths (HTTP appends, /batch, /ws) need from storage on top
// of PoolWriter: idempotency keys and multi-pool batches, plus a change
// notification for live subscriptions. Every state change of the server goes
// through one IngestWriter, so a subscription sees appends from every path.
//
// Keys and batches are the log's job: a store that implements `appendKeyed`
// and `appendAll` logs the key with the append (so a retry after a restart is
// still recognised) and commits a batch as one unit. Over a store without
// them, keys are remembered in memory only (RecentKeys: a retry within this
// process's life, up to KEY_MEMORY entries) and a batch is submitted in one
// turn of the event loop, so it shares one group commit but is not atomic
// across a crash.

import type { AppendOutcome } from '../core/engine.js';
import type { SortedRun } from '../core/sorted-run.js';
import type { Awaitable, PoolWriter } from '../storage/pool-writer.js';

export interface BatchItem {
  poolId: number;
  run: SortedRun;
}

/** Optional storage capabilities, detected at run time. */
interface KeyedStore {
  appendKeyed?(poolId: number, run: SortedRun, key: string): Awaitable<AppendOutcome>;
  appendAll?(items: readonly BatchItem[], options?: { key?: string }): Awaitable<AppendOutcome[]>;
}

export interface IngestWriter {
  append(poolId: number, run: SortedRun, key: string | null): Awaitable<AppendOutcome>;
  /** All items or none; resolves with one outcome per item. */
  appendAll(items: readonly BatchItem[], key: string | null): Awaitable<AppendOutcome[]>;
  deletePool(poolId: number): Awaitable<boolean>;
  /** Whether keys survive a restart (the store logs them). */
  readonly durableKeys: boolean;
}

const KEY_MEMORY = 100_000;

/** The outcomes of the last KEY_MEMORY keyed writes (insertion order = age). */
class RecentKeys<T> {
  private readonly map = new Map<string, Awaitable<T>>();

  get(key: string): Awaitable<T> | undefined {
    return this.map.get(key);
  }

  remember(key: string, outcome: Awaitable<T>): void {
    this.map.set(key, outcome);
    if (this.map.size > KEY_MEMORY) this.map.delete(this.map.keys().next().value as string);
    // A refused write (503, bad input) may be retried with the same key.
    if (outcome instanceof Promise) outcome.catch(() => this.map.delete(key));
  }
}

function then<T, U>(value: Awaitable<T>, fn: (v: T) => U): Awaitable<U> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

export function ingestWriter(writer: PoolWriter, changed: (poolId: number) => void): IngestWriter {
  const store = writer as PoolWriter & KeyedStore;
  const appendKeyed = store.appendKeyed?.bind(store);
  const appendAll = store.appendAll?.bind(store);
  const keys = new RecentKeys<AppendOutcome>();
  const batchKeys = new RecentKeys<AppendOutcome[]>();

  const plainAll = (items: readonly BatchItem[]): Awaitable<AppendOutcome[]> => {
    if (appendAll !== undefined) return appendAll(items);
    const outcomes = items.map((item) => writer.append(item.poolId, item.run));
    return outcomes.some((o) => o instanceof Promise) ? Promise.all(outcomes) : (outcomes as AppendOutcome[]);
  };

  return {
    durableKeys: appendKeyed !== undefined && appendAll !== undefined,
    append(poolId, run, key) {
      let outcome: Awaitable<AppendOutcome>;
      if (key === null) outcome = writer.append(poolId, run);
      else if (appendKeyed !== undefined) outcome = appendKeyed(poolId, run, key);
      else {
        const seen = keys.get(key);
        if (seen !== undefined) return seen;
        outcome = writer.append(poolId, run);
        keys.remember(key, outcome);
      }
      return then(outcome, (o) => {
        changed(poolId);
        return o;
      });
    },
    appendAll(items, key) {
      let outcomes: Awaitable<AppendOutcome[]>;
      if (key === null) outcomes = plainAll(items);
      else if (appendAll !== undefined && appendKeyed !== undefined) outcomes = appendAll(items, { key });
      else {
        const seen = batchKeys.get(key);
        if (seen !== undefined) return seen;
        outcomes = plainAll(items);
        batchKeys.remember(key, outcomes);
      }
      return then(outcomes, (o) => {
        for (const item of items) changed(item.poolId);
        return o;
      });
    },
    deletePool(poolId) {
      return then(writer.deletePool(poolId), (existed) => {
        if (existed) changed(poolId);
        return existed;
      });
    },
  };
}
