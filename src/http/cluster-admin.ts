// The /cluster endpoints of an instance started with --shard-map: its view of
// the map, reloading it, and the steps of moving a bucket (docs/cluster.md):
// mark it moving, export it, import it elsewhere, delete it. Each step checks
// the state that makes it safe instead of trusting the caller's order: an
// export needs a bucket no write can reach (marked, or owned by another shard)
// and waits for the writes admitted before; an import and a bucket deletion
// are refused while this shard owns the bucket, so neither can touch live data.

import type { QuantileEngine, PoolPage } from '../core/engine.js';
import { conflict, invalidRequest, PoolqError } from '../core/errors.js';
import { BUCKET_COUNT, bucketOf, type ShardMap } from '../core/shard-map.js';
import type { ShardGate } from '../protocol/shard-gate.js';
import { decodePoolsExport, encodePoolsExport, importPools, type TransferSummary } from '../storage/bucket-transfer.js';
import type { PoolWriter } from '../storage/pool-writer.js';
import type { SnapshotPool } from '../storage/snapshot-format.js';

export interface ClusterDeps {
  gate: ShardGate;
  engine: QuantileEngine;
  /** Reads the --shard-map file again and hands it to the gate; rejects (keeping the old map) if it is invalid. */
  reloadShardMap: () => Promise<ShardMap>;
}

export interface ClusterStatus {
  shard: string;
  epoch: number;
  ownedBuckets: number;
  movingBuckets: number[];
  /** Pools (and their values) in buckets this shard owns. */
  pools: number;
  values: number;
  /** Everything held, owned or not: more than `pools` only while a bucket is being moved in or out. */
  storedPools: number;
  storedValues: number;
}

export interface BucketReport extends TransferSummary {
  bucket: number;
  owner: string;
  owned: boolean;
  moving: string | null;
  writesInFlight: number;
}

export function parseBucketText(text: string): number {
  const bucket = /^\d{1,4}$/.test(text) ? Number(text) : NaN;
  if (!(bucket >= 0 && bucket < BUCKET_COUNT))
    throw invalidRequest('bucket', `bucket must be an integer from 0 to ${BUCKET_COUNT - 1}, got ${JSON.stringify(text)}.`);
  return bucket;
}

export class ClusterAdmin {
  private readonly importing = new Set<number>();

  constructor(private readonly deps: ClusterDeps) {}

  status(): ClusterStatus {
    const { gate, engine } = this.deps;
    let pools = 0;
    let values = 0;
    let storedValues = 0;
    const ids = engine.poolIds();
    for (const id of ids) {
      const count = engine.countOf(id)!;
      storedValues += count;
      if (!gate.owns(id)) continue;
      pools++;
      values += count;
    }
    const ownedBuckets = gate.ownedBuckets().length;
    return {
      shard: gate.name,
      epoch: gate.map.epoch,
      ownedBuckets,
      movingBuckets: gate.movingBuckets(),
      pools,
      values,
      storedPools: ids.length,
      storedValues,
    };
  }

  async reload(): Promise<ClusterStatus> {
    try {
      await this.deps.reloadShardMap();
    } catch (err) {
      if (err instanceof PoolqError) throw err;
      throw invalidRequest('shard-map', `The shard map was not reloaded: ${(err as Error).message}`);
    }
    return this.status();
  }

  /** GET /pools on a shard: the pools it owns (a moved-in bucket appears once the map says so). */
  listOwnedPools(after: number | null, limit: number): PoolPage {
    const { gate, engine } = this.deps;
    const ids = engine.poolIds();
    let at = 0;
    if (after !== null) {
      let hi = ids.length;
      while (at < hi) {
        const mid = (at + hi) >>> 1;
        if (ids[mid] <= after) at = mid + 1;
        else hi = mid;
      }
    }
    const pools: PoolPage['pools'] = [];
    for (; at < ids.length && pools.length < limit; at++) {
      if (gate.owns(ids[at])) pools.push({ poolId: ids[at], count: engine.countOf(ids[at])! });
    }
    let more = false;
    for (let i = at; i < ids.length && !more; i++) more = gate.owns(ids[i]);
    return { pools, next: more && pools.length > 0 ? pools[pools.length - 1].poolId : null };
  }

  private poolsOfBucket(bucket: number): number[] {
    return this.deps.engine.poolIds().filter((id) => bucketOf(id) === bucket);
  }

  bucket(bucket: number): BucketReport {
    const ids = this.poolsOfBucket(bucket);
    let values = 0;
    for (const id of ids) values += this.deps.engine.countOf(id)!;
    return { ...this.deps.gate.bucketState(bucket), pools: ids.length, values };
  }

  markMoving(bucket: number): BucketReport {
    this.deps.gate.markMoving(bucket);
    return this.bucket(bucket);
  }

  unmarkMoving(bucket: number, token: string | null): BucketReport {
    this.deps.gate.unmarkMoving(bucket, token);
    return this.bucket(bucket);
  }

  /** The bucket's pools as snapshot bytes, once every write admitted before the mark has settled. */
  async export(bucket: number): Promise<{ bytes: Uint8Array } & TransferSummary> {
    const gate = this.deps.gate;
    if (!gate.frozen(bucket)) {
      throw conflict(
        `Bucket ${bucket} takes writes here; mark it moving first (PUT /cluster/buckets/${bucket}/moving), so the export is final.`,
      );
    }
    await gate.whenWritesSettled(bucket);
    return encodePoolsExport(this.deps.engine, this.poolsOfBucket(bucket));
  }

  /** Replaces this instance's copy of the exported pools; only for a bucket it does not own (yet). */
  async import(bucket: number, body: Uint8Array, writer: PoolWriter): Promise<BucketReport> {
    this.refuseIfLive(bucket, 'import into');
    let pools: SnapshotPool[];
    try {
      pools = await decodePoolsExport(body);
    } catch (err) {
      throw invalidRequest('body', `The body is not a poolq export: ${(err as Error).message}.`);
    }
    const stray = pools.find((pool) => bucketOf(pool.poolId) !== bucket);
    if (stray !== undefined) {
      throw invalidRequest('body', `The export holds pool ${stray.poolId}, which is in bucket ${bucketOf(stray.poolId)}, not ${bucket}.`);
    }
    this.refuseIfLive(bucket, 'import into');
    await this.exclusively(bucket, () => importPools(writer, pools));
    return this.bucket(bucket);
  }

  /** Deletes this instance's copy of a bucket it no longer owns (the last step of a move). */
  async deleteBucket(bucket: number, writer: PoolWriter): Promise<BucketReport> {
    this.refuseIfLive(bucket, 'delete');
    const ids = this.poolsOfBucket(bucket);
    let values = 0;
    for (const id of ids) values += this.deps.engine.countOf(id)!;
    await this.exclusively(bucket, () => Promise.all(ids.map((id) => writer.deletePool(id))));
    return { ...this.deps.gate.bucketState(bucket), pools: ids.length, values };
  }

  private refuseIfLive(bucket: number, action: string): void {
    if (this.deps.gate.ownsBucket(bucket)) {
      throw conflict(
        `This shard (${this.deps.gate.name}) owns bucket ${bucket} in map epoch ${this.deps.gate.map.epoch}; it will not ${action} a bucket it serves.`,
      );
    }
    if (this.importing.has(bucket)) throw conflict(`Bucket ${bucket} is being imported or deleted here; wait for that to finish.`);
  }

  private async exclusively<T>(bucket: number, work: () => Promise<T>): Promise<T> {
    this.importing.add(bucket);
    try {
      return await work();
    } finally {
      this.importing.delete(bucket);
    }
  }
}
