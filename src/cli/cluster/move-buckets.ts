// Moving buckets from their owners to another shard, as one scripted procedure
// (docs/cluster.md, "Moving buckets", gives the reasoning for the order):
//
//   1. check every instance runs the map's epoch;
//   2. mark the buckets moving on their owners: appends and deletes there get
//      503 + Retry-After from now on, queries are still answered;
//   3. export each bucket (the owner first waits for writes admitted before the
//      mark) and import it on the target, which does not own it yet and so
//      serves none of it; check the target holds exactly what was exported;
//   4. check the marks are still in place (an owner restarted in between would
//      have lost its mark and may have taken writes: undo and stop), write the
//      new map (next epoch) and tell every instance but the old owners to load it;
//   5. regenerate the proxy's bucket map and reload HAProxy; from here the
//      target takes the buckets' traffic. Wait until the old HAProxy process
//      has finished its last connections;
//   6. the old owners load the map (a stray request now gets 421), delete their
//      copies and lift the marks.
//
// Nothing acknowledged is lost (the export holds every write admitted before
// the mark; none is admitted after) and nothing is doubled (the import
// replaces, and the old copy is deleted only when no route leads to it).

import { rename, writeFile } from 'node:fs/promises';
import { assignBuckets, bucketsOf, formatShardMap, type ShardMap } from '../../core/shard-map.js';
import { readShardMapFile } from '../../protocol/shard-map-file.js';
import { shardClient, type BucketReport, type ClusterStatus, type ShardClient } from './admin-client.js';
import { haproxyBucketMap } from './haproxy-config.js';
import { reloadHaproxy, waitForOldWorkers } from './haproxy-process.js';

export interface ProxyControl {
  /** The bucket map file HAProxy reads (rewritten). */
  bucketMapPath: string;
  /** HAProxy's master CLI socket (reload, and watching the old process leave). */
  masterSocket: string;
}

export interface MoveOptions {
  mapPath: string;
  buckets: readonly number[];
  to: string;
  proxy: ProxyControl;
  authToken: string | null;
  /** Runs after the map file is written, before instances reload it (copy it to other machines, update a ConfigMap). */
  syncMap?: () => Promise<void>;
  /** How long instances may take to see the new map file after syncMap (a Kubernetes ConfigMap takes up to ~1 min). */
  mapWaitMs?: number;
  log?: (message: string) => void;
}

export interface MovedBucket {
  bucket: number;
  from: string;
  pools: number;
  values: number;
}

export interface MoveReport {
  epoch: number;
  to: string;
  moved: MovedBucket[];
  /** From the first mark to the proxy routing to the new owner: appends to these buckets got 503 meanwhile. */
  writesRefusedMs: number;
  totalMs: number;
}

export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, text);
  await rename(temp, path);
}

export async function writeShardMap(mapPath: string, map: ShardMap): Promise<void> {
  await writeFileAtomically(mapPath, formatShardMap(map));
}

function clientsOf(map: ShardMap, authToken: string | null): Map<string, ShardClient> {
  return new Map([...map.shards].map(([name, info]) => [name, shardClient(name, info.address, authToken)]));
}

/** Tells each instance to reload its map file until it reports `epoch` (for at most `waitMs`). */
async function reloadAndCheck(clients: readonly ShardClient[], epoch: number, waitMs = 0): Promise<void> {
  const deadline = Date.now() + waitMs;
  await Promise.all(
    clients.map(async (client) => {
      for (;;) {
        const status = await client.json<ClusterStatus>('POST', '/cluster/shard-map/reload');
        if (status.epoch === epoch) return;
        if (Date.now() >= deadline) {
          throw new Error(`${client.name} loaded map epoch ${status.epoch}, expected ${epoch}: is its copy of the map up to date?`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }),
  );
}

export async function moveBuckets(options: MoveOptions): Promise<MoveReport> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const map = await readShardMapFile(options.mapPath);
  const clients = clientsOf(map, options.authToken);
  const target = clients.get(options.to);
  if (target === undefined) throw new Error(`the map has no shard named ${options.to}`);
  const buckets = [...new Set(options.buckets)].filter((b) => map.owners[b] !== options.to).sort((a, b) => a - b);
  if (buckets.length === 0) return { epoch: map.epoch, to: options.to, moved: [], writesRefusedMs: 0, totalMs: 0 };

  // 1. everyone on the same epoch
  await Promise.all(
    [...clients.values()].map(async (client) => {
      const status = await client.json<ClusterStatus>('GET', '/cluster');
      if (status.epoch !== map.epoch || status.shard !== client.name) {
        throw new Error(
          `${client.name} (${client.address}) reports shard ${status.shard} at epoch ${status.epoch}; the map file is epoch ${map.epoch}. Reload it first.`,
        );
      }
    }),
  );

  // 2. mark
  const marks = new Map<number, string>();
  const refusedFrom = performance.now();
  const ownerOf = (bucket: number) => clients.get(map.owners[bucket])!;
  const undo = async () => {
    await Promise.allSettled(buckets.map((b) => target.json('DELETE', `/cluster/buckets/${b}/pools`)));
    await Promise.allSettled(
      [...marks].map(([b, token]) => ownerOf(b).json('DELETE', `/cluster/buckets/${b}/moving?token=${encodeURIComponent(token)}`)),
    );
  };
  const moved: MovedBucket[] = [];
  try {
    for (const bucket of buckets) {
      const report = await ownerOf(bucket).json<BucketReport>('PUT', `/cluster/buckets/${bucket}/moving`);
      marks.set(bucket, report.moving!);
    }
    log(`marked ${buckets.length} bucket(s) moving to ${options.to}`);

    // 3. copy
    for (const bucket of buckets) {
      const owner = ownerOf(bucket);
      const { bytes, headers } = await owner.bytes('GET', `/cluster/buckets/${bucket}/export`);
      const pools = Number(headers.get('x-poolq-pools'));
      const values = Number(headers.get('x-poolq-values'));
      const imported = await target.json<BucketReport>('POST', `/cluster/buckets/${bucket}/import`, bytes);
      if (imported.pools !== pools || imported.values !== values) {
        throw new Error(
          `bucket ${bucket}: exported ${pools} pools / ${values} values from ${owner.name} but ${options.to} holds ${imported.pools} / ${imported.values}`,
        );
      }
      moved.push({ bucket, from: owner.name, pools, values });
    }
    log(`copied ${moved.reduce((n, m) => n + m.values, 0)} values in ${moved.reduce((n, m) => n + m.pools, 0)} pools`);

    // 4. switch the instances (old owners last)
    await checkMarks(buckets, marks, ownerOf, map.epoch);
  } catch (err) {
    await undo();
    throw err;
  }
  const next = assignBuckets(map, buckets, options.to);
  const oldOwners = new Set(buckets.map((b) => map.owners[b]));
  const others = [...clients.values()].filter((c) => !oldOwners.has(c.name));
  await writeShardMap(options.mapPath, next);
  try {
    await options.syncMap?.();
    await checkMarks(buckets, marks, ownerOf, map.epoch, next.epoch);
    await reloadAndCheck(others, next.epoch, options.mapWaitMs);
  } catch (err) {
    // Nothing routes to the target yet: put the old map back everywhere it may have been loaded.
    await writeShardMap(options.mapPath, { ...map, epoch: next.epoch + 1 });
    await options.syncMap?.().catch(() => {});
    await Promise.allSettled([...clients.values()].map((c) => c.json('POST', '/cluster/shard-map/reload')));
    await undo();
    throw err;
  }
  log(`map epoch ${next.epoch} loaded by ${others.map((c) => c.name).join(', ')}`);

  // 5. the proxy
  await writeFileAtomically(options.proxy.bucketMapPath, haproxyBucketMap(next));
  await reloadHaproxy(options.proxy.masterSocket);
  const writesRefusedMs = performance.now() - refusedFrom;
  log(`proxy routes the buckets to ${options.to} (appends refused for ${Math.round(writesRefusedMs)} ms)`);
  if (!(await waitForOldWorkers(options.proxy.masterSocket))) {
    log('the old HAProxy process still has connections after 40 s; requests it routes to the old owners get 421 from now on');
  }

  // 6. retire the old copies
  const retiring = [...oldOwners].map((name) => clients.get(name)!);
  await reloadAndCheck(retiring, next.epoch, options.mapWaitMs);
  for (const bucket of buckets) {
    const owner = ownerOf(bucket);
    await owner.json('DELETE', `/cluster/buckets/${bucket}/pools`);
    await owner.json('DELETE', `/cluster/buckets/${bucket}/moving?token=${encodeURIComponent(marks.get(bucket)!)}`);
  }
  log(`old copies deleted on ${[...oldOwners].join(', ')}`);
  return { epoch: next.epoch, to: options.to, moved, writesRefusedMs, totalMs: performance.now() - started };
}

/**
 * The owners still hold the marks placed in step 2, or (after a restart that
 * read the new map) run `newEpoch` and so refuse the buckets anyway.
 */
async function checkMarks(
  buckets: readonly number[],
  marks: ReadonlyMap<number, string>,
  ownerOf: (bucket: number) => ShardClient,
  epoch: number,
  newEpoch?: number,
): Promise<void> {
  for (const bucket of buckets) {
    const owner = ownerOf(bucket);
    const status = await owner.json<ClusterStatus>('GET', '/cluster');
    if (newEpoch !== undefined && status.epoch === newEpoch) continue;
    const report = await owner.json<BucketReport>('GET', `/cluster/buckets/${bucket}`);
    if (status.epoch !== epoch || report.moving !== marks.get(bucket)) {
      throw new Error(
        `${owner.name} lost the moving mark of bucket ${bucket} (restarted?); it may have taken writes after the export. Nothing was switched; run the move again.`,
      );
    }
  }
}

/** Every bucket a shard owns (draining it). */
export async function bucketsOwnedBy(mapPath: string, shard: string): Promise<number[]> {
  return bucketsOf(await readShardMapFile(mapPath), shard);
}
