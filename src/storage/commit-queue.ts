// The records between submission and durability, in seq order: queued (not
// yet written) behind unsynced (written, not yet fdatasync'ed). Both count
// against one bound, so a stalled disk refuses changes instead of growing
// memory. Unsynced records are kept so they can be re-written after an error.

import type { LogRecord } from './storage-types.js';

export class CommitQueue {
  /** Submitted, not yet written. */
  private queued: LogRecord[] = [];
  /** Written to the current segment, not yet fdatasync'ed (before `queued`). */
  private unsynced: LogRecord[] = [];
  private unsyncedBytes = 0;
  /** Bytes of queued and unsynced records. */
  bytes = 0;
  /** `interval`/`never`: fdatasync once this many unsynced bytes or records are held. */
  private readonly syncAtBytes: number;
  private readonly syncAtRecords: number;

  constructor(
    private readonly maxRecords: number,
    private readonly maxBytes: number,
  ) {
    this.syncAtBytes = Math.max(1, Math.floor(maxBytes / 2));
    this.syncAtRecords = Math.max(1, Math.floor(maxRecords / 2));
  }

  /** Records queued or written but not yet durable. */
  get records(): number {
    return this.queued.length + this.unsynced.length;
  }

  get queuedCount(): number {
    return this.queued.length;
  }

  get unsyncedCount(): number {
    return this.unsynced.length;
  }

  /** Seq of the first record not yet written, if any. */
  firstQueuedSeq(): number | undefined {
    return this.queued.length > 0 ? this.queued[0].seq : undefined;
  }

  /** Whether `count` more records of `bytes` in all would pass a bound (into an empty queue, any commit fits). */
  isFull(bytes: number, count: number): boolean {
    const records = this.records;
    return records > 0 && (records + count > this.maxRecords || this.bytes + bytes > this.maxBytes);
  }

  push(record: LogRecord): void {
    this.queued.push(record);
    this.bytes += record.bytes;
  }

  /** Moves everything queued to unsynced and returns it, for one write. */
  takeForWrite(): LogRecord[] {
    const batch = this.queued;
    this.queued = [];
    for (const record of batch) {
      this.unsynced.push(record);
      this.unsyncedBytes += record.bytes;
    }
    return batch;
  }

  /** Unsynced records have reached half a bound: sync before they fill it. */
  holdsTooMuchUnsynced(): boolean {
    return this.unsyncedBytes >= this.syncAtBytes || this.unsynced.length >= this.syncAtRecords;
  }

  /** The first `count` unsynced records are durable: drops them and returns them with their bytes. */
  markDurable(count: number): { done: LogRecord[]; bytes: number } {
    const done = this.unsynced.splice(0, count);
    let bytes = 0;
    for (const r of done) bytes += r.bytes;
    this.unsyncedBytes -= bytes;
    this.bytes -= bytes;
    return { done, bytes };
  }

  /** After an I/O error: everything not known durable goes back to the front of the queue, in order. */
  requeueUnsynced(): void {
    if (this.unsynced.length === 0) return;
    this.queued = this.unsynced.concat(this.queued);
    this.unsynced = [];
    this.unsyncedBytes = 0;
  }

  /** Drops queued records with seq <= `seq` (a snapshot holds them). */
  dropQueuedThrough(seq: number): void {
    let covered = 0;
    while (covered < this.queued.length && this.queued[covered].seq <= seq) this.bytes -= this.queued[covered++].bytes;
    if (covered > 0) this.queued = this.queued.slice(covered);
  }

  /** Removes and returns everything queued (to be refused). */
  takeAllQueued(): LogRecord[] {
    const all = this.queued;
    this.queued = [];
    for (const r of all) this.bytes -= r.bytes;
    return all;
  }
}
