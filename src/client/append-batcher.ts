// Coalesces many small appends into few binary frames: appends to the same
// pool made within `maxDelayMs` (or until `maxValues` are waiting) travel as
// one frame, and every caller's promise settles with that frame's
// acknowledgement. Thousands of 1-value appends a second cost a handful of
// frames, and each is still durable when its promise resolves.

import type { AppendResult } from './http-client.js';
import type { PoolqSocket } from './ws-client.js';

export interface BatcherOptions {
  /** Send a pool's frame once this many values wait. Default 8192. */
  maxValues?: number;
  /** Longest an append waits for company. Default 2 ms; 0 coalesces within one turn of the event loop. */
  maxDelayMs?: number;
}

interface PoolBuffer {
  values: number[];
  waiters: { resolve(r: AppendResult): void; reject(e: unknown): void }[];
}

export class AppendBatcher {
  private readonly pools = new Map<number, PoolBuffer>();
  private timer: NodeJS.Timeout | null = null;
  private readonly maxValues: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly socket: PoolqSocket,
    options: BatcherOptions = {},
  ) {
    this.maxValues = options.maxValues ?? 8192;
    this.maxDelayMs = options.maxDelayMs ?? 2;
  }

  add(poolId: number, values: Float64Array | readonly number[]): Promise<AppendResult> {
    let buffer = this.pools.get(poolId);
    if (buffer === undefined) this.pools.set(poolId, (buffer = { values: [], waiters: [] }));
    for (let i = 0; i < values.length; i++) buffer.values.push(values[i]);
    const done = new Promise<AppendResult>((resolve, reject) => buffer.waiters.push({ resolve, reject }));
    if (buffer.values.length >= this.maxValues) this.send(poolId, buffer);
    else this.timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
    return done;
  }

  /** Sends everything waiting now. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const [poolId, buffer] of this.pools) this.send(poolId, buffer);
  }

  private send(poolId: number, buffer: PoolBuffer): void {
    this.pools.delete(poolId);
    if (buffer.values.length === 0) return;
    const waiters = buffer.waiters;
    this.socket.add(poolId, Float64Array.from(buffer.values)).then(
      (r) => waiters.forEach((w) => w.resolve(r)),
      (e: unknown) => waiters.forEach((w) => w.reject(e)),
    );
  }
}
