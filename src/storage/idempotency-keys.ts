// Idempotency keys: an append (or a transaction of appends) may carry a key,
// logged with its last record; a retry with the same key is answered with the
// first outcome instead of appending again. The table maps each key to what
// was appended (pool and value count per item: what a retry must repeat) and
// what came of it.
//
// Lifetime: an entry is kept for `windowMs` (default 24 h) counted from its
// record's time, or from the latest time of an earlier keyed record if that
// is later, so entries expire in log order even when callers pass older
// times; and at most `maxEntries` (default 10⁶) are kept, the oldest dropped
// first. A retry after its entry is gone appends again. The table is rebuilt
// at start-up from the key file written with the snapshot (keys-file.ts) plus
// the keyed records replayed after it.

import type { AppendOutcome } from '../core/engine.js';
import { IdempotencyConflictError } from './errors.js';

export interface KeyedItem {
  poolId: number;
  valueCount: number;
}

export interface KeyEntry {
  /** Seq of the record that carried the key (a transaction's last). */
  seq: number;
  /** Its time (ms since the epoch). */
  atMs: number;
  /** The time its window is counted from: atMs, or a later time of an earlier keyed record. */
  windowFromMs: number;
  items: KeyedItem[];
  outcomes: AppendOutcome[];
}

export interface KeyTableOptions {
  windowMs: number;
  maxEntries: number;
  /** ms since the epoch. */
  clock: () => number;
}

export const KEY_DEFAULTS = { windowMs: 24 * 3600_000, maxEntries: 1_000_000 };

function sameItems(a: readonly KeyedItem[], b: readonly KeyedItem[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].poolId !== b[i].poolId || a[i].valueCount !== b[i].valueCount) return false;
  return true;
}

function describe(items: readonly KeyedItem[]): string {
  const shown = items.slice(0, 3).map((i) => `${i.valueCount} values to pool ${i.poolId}`);
  return items.length > 3 ? `${shown.join(', ')} and ${items.length - 3} more` : shown.join(', ');
}

export class IdempotencyKeys {
  private readonly entries = new Map<string, KeyEntry>();
  /** `always`: keys whose commit is on its way to the disk. */
  private readonly inFlight = new Map<string, { items: KeyedItem[]; outcomes: Promise<AppendOutcome[]> }>();
  /** Latest windowFromMs handed out (entries expire in insertion order). */
  private latestMs = 0;

  constructor(readonly options: KeyTableOptions) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * What a retry of `key` gets: the first outcomes, the pending commit's
   * promise, or undefined if the key is new (or expired). A key seen with
   * other items is refused with IdempotencyConflictError.
   */
  find(key: string, items: readonly KeyedItem[]): AppendOutcome[] | Promise<AppendOutcome[]> | undefined {
    this.expire();
    const known = this.entries.get(key) ?? this.inFlight.get(key);
    if (known === undefined) return undefined;
    if (!sameItems(known.items, items))
      throw new IdempotencyConflictError(key, `it was first used for ${describe(known.items)}, now for ${describe(items)}`);
    return known.outcomes;
  }

  /** `always`: the key's commit is queued; retries meanwhile share its outcome. */
  addInFlight(key: string, items: KeyedItem[], outcomes: Promise<AppendOutcome[]>): void {
    this.inFlight.set(key, { items, outcomes });
  }

  /** The key's commit was refused: a retry may try again. */
  dropInFlight(key: string): void {
    this.inFlight.delete(key);
  }

  /** Records a committed key (the write path after apply, and recovery while replaying). */
  add(key: string, seq: number, atMs: number, items: KeyedItem[], outcomes: AppendOutcome[]): void {
    this.inFlight.delete(key);
    this.latestMs = Math.max(this.latestMs, atMs);
    this.insert(key, { seq, atMs, windowFromMs: this.latestMs, items, outcomes });
    this.expire();
  }

  private insert(key: string, entry: KeyEntry): void {
    this.entries.delete(key); // re-inserted at the end: insertion order stays log order
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Drops entries whose window has passed (oldest first; windowFromMs never decreases along the map). */
  expire(now = this.options.clock()): void {
    const cutoff = now - this.options.windowMs;
    for (const [key, entry] of this.entries) {
      if (entry.windowFromMs > cutoff) break;
      this.entries.delete(key);
    }
  }

  /** Live entries with seq <= `seq`, in log order, and the latest window start (for the key file of a snapshot at `seq`). */
  capture(seq: number): { entries: [string, KeyEntry][]; latestMs: number } {
    this.expire();
    const entries: [string, KeyEntry][] = [];
    for (const pair of this.entries) if (pair[1].seq <= seq) entries.push(pair);
    return { entries, latestMs: this.latestMs };
  }

  /** Loads a key file's entries (recovery, before replay). */
  load(entries: readonly [string, KeyEntry][], latestMs: number): void {
    this.latestMs = Math.max(this.latestMs, latestMs);
    for (const [key, entry] of entries) this.insert(key, entry);
    this.expire();
  }
}
