// The one ownership rule of a poolq cluster, shared by every instance, the
// proxy's generated map and the cluster tools (docs/cluster.md):
//
//   bucket = poolId mod 4096        (the low 12 bits of the integer)
//   owner  = the shard the map assigns that bucket to
//
// "mod 4096" because HAProxy computes it with its own `mod(4096)` converter on
// the 64-bit integer it reads from the path or the JSON body, exactly as
// JavaScript's `%` does on an integer below 2^53; a hash would need Lua in the
// proxy. Pool ids are arbitrary client numbers, so their low bits spread pools
// across buckets as well as a hash unless a client picks ids in strides of
// 4096. The map file is JSON (`format`, `epoch`, `shards`, `owners` as
// inclusive bucket ranges); this module parses and checks it, and changes
// ownership, all without I/O.

import { isValidPoolId } from './pool-id.js';

export const BUCKET_COUNT = 4096;
export const SHARD_MAP_FORMAT = 'poolq-shard-map/1';

/** Lower-case letters, digits and inner dashes, at most 63: a DNS label, so a Kubernetes pod name fits. */
const SHARD_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ADDRESS = /^[A-Za-z0-9.-]+:\d{1,5}$/;

export interface ShardInfo {
  /** host:port the proxy and the cluster tools reach the shard at. */
  address: string;
}

export interface ShardMap {
  /** Raised by one on every change; instances report the epoch they run with. */
  readonly epoch: number;
  /** Shard name → address, in the file's order. */
  readonly shards: ReadonlyMap<string, ShardInfo>;
  /** Owner of each bucket (BUCKET_COUNT names). */
  readonly owners: readonly string[];
}

export class ShardMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardMapError';
  }
}

/** The bucket of a valid pool id (0 … 2^53−1); integer `%` is exact below 2^53. */
export function bucketOf(poolId: number): number {
  return poolId % BUCKET_COUNT;
}

export function isBucket(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value < BUCKET_COUNT;
}

export function isShardName(name: string): boolean {
  return SHARD_NAME.test(name);
}

export function ownerOfPool(map: ShardMap, poolId: number): string {
  if (!isValidPoolId(poolId)) throw new RangeError(`not a pool id: ${poolId}`);
  return map.owners[bucketOf(poolId)];
}

export function bucketsOf(map: ShardMap, shard: string): number[] {
  const out: number[] = [];
  map.owners.forEach((owner, bucket) => {
    if (owner === shard) out.push(bucket);
  });
  return out;
}

function fail(message: string): never {
  throw new ShardMapError(`shard map: ${message}`);
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where} must be an object`);
  return value as Record<string, unknown>;
}

function integer(value: unknown, where: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    fail(`${where} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return value;
}

/** Parses and checks a shard-map file's text; throws ShardMapError naming the first problem. */
export function parseShardMap(text: string): ShardMap {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    fail(`not JSON (${(err as Error).message})`);
  }
  const top = object(raw, 'the file');
  if (top.format !== SHARD_MAP_FORMAT) fail(`format must be "${SHARD_MAP_FORMAT}", got ${JSON.stringify(top.format)}`);
  const epoch = integer(top.epoch, 'epoch', 1, Number.MAX_SAFE_INTEGER);
  if (top.buckets !== BUCKET_COUNT) fail(`buckets must be ${BUCKET_COUNT}, got ${JSON.stringify(top.buckets)}`);

  const shards = new Map<string, ShardInfo>();
  for (const [name, value] of Object.entries(object(top.shards, 'shards'))) {
    if (!isShardName(name)) fail(`shard name ${JSON.stringify(name)} must be lower-case letters, digits and inner dashes (at most 63)`);
    const address = object(value, `shards.${name}`).address;
    if (typeof address !== 'string' || !ADDRESS.test(address))
      fail(`shards.${name}.address must be "host:port", got ${JSON.stringify(address)}`);
    shards.set(name, { address });
  }
  if (shards.size === 0) fail('shards must name at least one shard');

  if (!Array.isArray(top.owners)) fail('owners must be an array of {first, last, shard} bucket ranges');
  const owners: string[] = [];
  top.owners.forEach((value: unknown, i: number) => {
    const range = object(value, `owners[${i}]`);
    const first = integer(range.first, `owners[${i}].first`, 0, BUCKET_COUNT - 1);
    const last = integer(range.last, `owners[${i}].last`, 0, BUCKET_COUNT - 1);
    if (first !== owners.length)
      fail(`owners[${i}].first must be ${owners.length} (ranges are in order, without gaps or overlaps), got ${first}`);
    if (last < first) fail(`owners[${i}].last must be at least first (${first}), got ${last}`);
    const shard = range.shard;
    if (typeof shard !== 'string' || !shards.has(shard))
      fail(`owners[${i}].shard must be one of the shards (${[...shards.keys()].join(', ')}), got ${JSON.stringify(shard)}`);
    for (let b = first; b <= last; b++) owners.push(shard);
  });
  if (owners.length !== BUCKET_COUNT) fail(`owners must cover buckets 0 to ${BUCKET_COUNT - 1}; they end at ${owners.length - 1}`);
  return { epoch, shards, owners };
}

/** `{ "a": 1, "b": "x" }`: one line, spaced as Prettier writes JSON. */
function inlineObject(value: object): string {
  return `{ ${Object.entries(value)
    .map(([key, v]) => `${JSON.stringify(key)}: ${JSON.stringify(v)}`)
    .join(', ')} }`;
}

/** The map as file text: owners coalesced into ranges, one per line. */
export function formatShardMap(map: ShardMap): string {
  const ranges: { first: number; last: number; shard: string }[] = [];
  map.owners.forEach((shard, bucket) => {
    const open = ranges[ranges.length - 1];
    if (open !== undefined && open.shard === shard) open.last = bucket;
    else ranges.push({ first: bucket, last: bucket, shard });
  });
  const shardLines = [...map.shards].map(([name, info]) => `    ${JSON.stringify(name)}: ${inlineObject(info)}`);
  const ownerLines = ranges.map((r) => `    ${inlineObject(r)}`);
  return [
    '{',
    `  "format": ${JSON.stringify(SHARD_MAP_FORMAT)},`,
    `  "epoch": ${map.epoch},`,
    `  "buckets": ${BUCKET_COUNT},`,
    `  "shards": {\n${shardLines.join(',\n')}\n  },`,
    `  "owners": [\n${ownerLines.join(',\n')}\n  ]`,
    '}',
    '',
  ].join('\n');
}

/** A first map: the buckets split into equal contiguous ranges, in the order the shards are given. */
export function evenShardMap(shards: readonly { name: string; address: string }[]): ShardMap {
  if (shards.length === 0 || shards.length > BUCKET_COUNT)
    throw new ShardMapError(`shard map: between 1 and ${BUCKET_COUNT} shards, got ${shards.length}`);
  const owners: string[] = [];
  for (let b = 0; b < BUCKET_COUNT; b++) owners.push(shards[Math.floor((b * shards.length) / BUCKET_COUNT)].name);
  const map = { epoch: 1, shards: new Map(shards.map((s) => [s.name, { address: s.address }])), owners };
  return parseShardMap(formatShardMap(map));
}

/** A new map (next epoch) in which `buckets` belong to `shard`. */
export function assignBuckets(map: ShardMap, buckets: readonly number[], shard: string): ShardMap {
  if (!map.shards.has(shard)) throw new ShardMapError(`shard map: no shard named ${JSON.stringify(shard)}`);
  const owners = [...map.owners];
  for (const b of buckets) {
    if (!isBucket(b)) throw new ShardMapError(`shard map: ${b} is not a bucket (0 to ${BUCKET_COUNT - 1})`);
    owners[b] = shard;
  }
  return { epoch: map.epoch + 1, shards: map.shards, owners };
}

/** A new map (next epoch) with one more shard, owning nothing yet. */
export function addShard(map: ShardMap, name: string, address: string): ShardMap {
  if (map.shards.has(name)) throw new ShardMapError(`shard map: a shard named ${JSON.stringify(name)} exists`);
  const shards = new Map(map.shards).set(name, { address });
  return parseShardMap(formatShardMap({ epoch: map.epoch + 1, shards, owners: map.owners }));
}

/** A new map (next epoch) without `name`, which must own no bucket. */
export function removeShard(map: ShardMap, name: string): ShardMap {
  const owned = bucketsOf(map, name).length;
  if (owned > 0) throw new ShardMapError(`shard map: ${name} still owns ${owned} buckets; move them first`);
  const shards = new Map(map.shards);
  shards.delete(name);
  return parseShardMap(formatShardMap({ epoch: map.epoch + 1, shards, owners: map.owners }));
}
