// What one cluster instance lets through, for every front end (HTTP routes,
// WebSocket messages): a request naming a pool whose bucket another shard owns
// is refused as `misdirected` (421), so a request the proxy sends to the wrong
// instance can never start a second copy of a pool; a write to a bucket that is
// being moved away is refused as `unavailable` with a Retry-After, and the
// writes admitted before the mark are counted so an export can wait for them.
// Without --shard-map there is no gate and every pool is served.

import { conflict, misdirected, unavailable, type PoolqError } from '../core/errors.js';
import { BUCKET_COUNT, bucketOf, bucketsOf, type ShardMap } from '../core/shard-map.js';

/** How long a client is told to wait while its pool's bucket moves (a move takes about a second). */
export const MOVING_RETRY_AFTER_SECONDS = 1;

export interface BucketState {
  bucket: number;
  owner: string;
  owned: boolean;
  /** Token of the moving mark, or null. */
  moving: string | null;
  /** Writes admitted and not yet durable and applied. */
  writesInFlight: number;
}

export class ShardGate {
  private current: ShardMap;
  private readonly moving = new Map<number, string>();
  private readonly inFlight = new Uint32Array(BUCKET_COUNT);
  private readonly settledWaiters = new Map<number, (() => void)[]>();
  private markCounter = 0;

  constructor(
    map: ShardMap,
    readonly name: string,
  ) {
    ShardGate.checkNamed(map, name);
    this.current = map;
  }

  private static checkNamed(map: ShardMap, name: string): void {
    if (!map.shards.has(name)) {
      throw new Error(
        `shard map (epoch ${map.epoch}) has no shard named ${JSON.stringify(name)}; it names ${[...map.shards.keys()].join(', ')}`,
      );
    }
  }

  get map(): ShardMap {
    return this.current;
  }

  /** Takes a reloaded map; refuses (throws) one that does not name this shard, keeping the old. */
  replaceMap(map: ShardMap): void {
    ShardGate.checkNamed(map, this.name);
    this.current = map;
  }

  owns(poolId: number): boolean {
    return this.current.owners[bucketOf(poolId)] === this.name;
  }

  ownsBucket(bucket: number): boolean {
    return this.current.owners[bucket] === this.name;
  }

  ownedBuckets(): number[] {
    return bucketsOf(this.current, this.name);
  }

  /** For reads: throws `misdirected` unless this shard owns the pool. */
  checkOwner(poolId: number): void {
    const refusal = this.misdirection(poolId);
    if (refusal !== null) throw refusal;
  }

  /** The `misdirected` error for a pool of another shard, or null for one of ours. */
  misdirection(poolId: number): PoolqError | null {
    const bucket = bucketOf(poolId);
    const owner = this.current.owners[bucket];
    if (owner === this.name) return null;
    return misdirected(
      `Pool ${poolId} is in bucket ${bucket}, which shard "${owner}" owns (shard map epoch ${this.current.epoch}); this is shard "${this.name}". ` +
        'Send requests through the proxy, with poolId as a plain integer that appears once (the proxy reads the first occurrence and no exponent).',
    );
  }

  /**
   * For writes: throws `misdirected` or, while the bucket moves, `unavailable`
   * with a Retry-After; otherwise counts the write as in flight until the
   * returned release is called (once, when the write is durable and applied or
   * has failed).
   */
  admitWrite(poolId: number): () => void {
    this.checkOwner(poolId);
    const bucket = bucketOf(poolId);
    if (this.moving.has(bucket)) {
      throw unavailable(
        `Pool ${poolId} is in bucket ${bucket}, which is moving to another shard; retry in a moment.`,
        MOVING_RETRY_AFTER_SECONDS,
      );
    }
    this.inFlight[bucket]++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.inFlight[bucket] === 0) this.wakeSettled(bucket);
    };
  }

  /** Marks a bucket as moving (writes refused from now on); returns the mark's token. Idempotent per bucket. */
  markMoving(bucket: number): string {
    let token = this.moving.get(bucket);
    if (token === undefined) {
      token = `${process.pid.toString(36)}-${Date.now().toString(36)}-${(++this.markCounter).toString(36)}`;
      this.moving.set(bucket, token);
    }
    return token;
  }

  /** Lifts a mark; with a token, only that mark (a conflict if the bucket carries another). */
  unmarkMoving(bucket: number, token: string | null): boolean {
    const current = this.moving.get(bucket);
    if (current === undefined) return false;
    if (token !== null && token !== current) throw conflict(`Bucket ${bucket} carries a different moving mark (${current}), not ${token}.`);
    this.moving.delete(bucket);
    return true;
  }

  movingToken(bucket: number): string | null {
    return this.moving.get(bucket) ?? null;
  }

  movingBuckets(): number[] {
    return [...this.moving.keys()].sort((a, b) => a - b);
  }

  /**
   * Whether no write to the bucket can be admitted: it is marked moving or
   * another shard owns it. Exports and deletions of a whole bucket need this.
   */
  frozen(bucket: number): boolean {
    return this.moving.has(bucket) || !this.ownsBucket(bucket);
  }

  /** Resolves once every write admitted to the bucket has settled. */
  whenWritesSettled(bucket: number): Promise<void> {
    if (this.inFlight[bucket] === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.settledWaiters.get(bucket);
      if (waiting === undefined) this.settledWaiters.set(bucket, [resolve]);
      else waiting.push(resolve);
    });
  }

  private wakeSettled(bucket: number): void {
    const waiting = this.settledWaiters.get(bucket);
    if (waiting === undefined) return;
    this.settledWaiters.delete(bucket);
    for (const wake of waiting) wake();
  }

  bucketState(bucket: number): BucketState {
    const owner = this.current.owners[bucket];
    return { bucket, owner, owned: owner === this.name, moving: this.movingToken(bucket), writesInFlight: this.inFlight[bucket] };
  }
}
