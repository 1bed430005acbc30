// The cluster commands, shared by `npm run cluster -- <command>` (src/cli/cluster.ts)
// and `poolq cluster <command>` (src/cli/main.ts); docs/cluster.md. Commands:
//
//   [up] --shards N [--port 8000] [--dir ./data/cluster] [--fresh] [--poolq "FLAGS"]
//   status | pools                     [--dir DIR | --shard-map FILE]
//   move --buckets 17,100-199 --to NAME [--dir DIR | --shard-map FILE --bucket-map FILE --master-socket SOCK]
//        [--sync-map-cmd CMD] [--map-wait-s S]
//   drain --from NAME --to NAME        (the same options as move)
//   init-map --shards name=host:port,...
//   add-shard --shard-map FILE --name NAME --address HOST:PORT
//   remove-shard --shard-map FILE --name NAME   (a drained shard: it owns no bucket)
//   haproxy-config --shard-map FILE --bind HOST:PORT --bucket-map FILE [--threads N] [--dns]
//   haproxy-map --shard-map FILE
//
// Admin calls send AUTH_TOKEN (or --auth-token) as a bearer token.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { addShard, removeShard, BUCKET_COUNT, evenShardMap, formatShardMap, isBucket } from '../../core/shard-map.js';
import { readShardMapFile } from '../../protocol/shard-map-file.js';
import { shardClient, type ClusterStatus } from './admin-client.js';
import { haproxyBucketMap, haproxyConfig } from './haproxy-config.js';
import { listClusterPools } from './list-pools.js';
import { LocalCluster, readClusterLayout } from './local-cluster.js';
import { bucketsOwnedBy, moveBuckets, writeShardMap, type ProxyControl } from './move-buckets.js';

const OPTIONS = {
  shards: { type: 'string' },
  port: { type: 'string' },
  dir: { type: 'string' },
  fresh: { type: 'boolean' },
  poolq: { type: 'string' },
  'shard-map': { type: 'string' },
  'bucket-map': { type: 'string' },
  'master-socket': { type: 'string' },
  buckets: { type: 'string' },
  to: { type: 'string' },
  from: { type: 'string' },
  name: { type: 'string' },
  address: { type: 'string' },
  bind: { type: 'string' },
  threads: { type: 'string' },
  dns: { type: 'boolean' },
  'auth-token': { type: 'string' },
  'sync-map-cmd': { type: 'string' },
  'map-wait-s': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

export class UsageError extends Error {}

function required(values: Values, name: keyof Values): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function integerOption(values: Values, name: keyof Values, fallback: number, min: number, max: number): number {
  const text = values[name];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (typeof text !== 'string' || !/^\d+$/.test(text) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** "17,100-199" → [17, 100, …, 199] */
export function parseBucketList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const first = m === null ? NaN : Number(m[1]);
    const last = m === null ? NaN : Number(m[2] ?? m[1]);
    if (!isBucket(first) || !isBucket(last) || last < first)
      throw new UsageError(`--buckets: ${JSON.stringify(part)} is not a bucket or range within 0-${BUCKET_COUNT - 1}`);
    for (let b = first; b <= last; b++) out.push(b);
  }
  return out;
}

function authToken(values: Values): string | null {
  return values['auth-token'] ?? process.env.AUTH_TOKEN ?? null;
}

function mapPathOf(values: Values): string {
  if (values['shard-map'] !== undefined) return path.resolve(values['shard-map']);
  return readClusterLayout(path.resolve(values.dir ?? 'data/cluster')).mapPath;
}

function proxyOf(values: Values): ProxyControl {
  if (values['bucket-map'] !== undefined || values['master-socket'] !== undefined) {
    return { bucketMapPath: path.resolve(required(values, 'bucket-map')), masterSocket: path.resolve(required(values, 'master-socket')) };
  }
  const layout = readClusterLayout(path.resolve(values.dir ?? 'data/cluster'));
  return { bucketMapPath: layout.bucketMapPath, masterSocket: layout.masterSocket };
}

async function up(values: Values): Promise<void> {
  const cluster = await LocalCluster.start({
    dir: values.dir ?? 'data/cluster',
    shards: integerOption(values, 'shards', 3, 1, 64),
    port: integerOption(values, 'port', 8000, 0, 65535),
    fresh: values.fresh === true,
    poolqArgs: values.poolq?.split(/\s+/).filter((a) => a !== '') ?? [],
  });
  for (const [name, instance] of cluster.instances) {
    console.log(`${name}: http://${cluster.shardMap.shards.get(name)!.address} (pid ${instance.pid}, data ${instance.spec.dataDir})`);
  }
  console.log(`proxy: ${cluster.layout.proxyUrl}   (HAProxy; files in ${cluster.dir}; Ctrl-C stops everything)`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  console.log('stopping the cluster…');
  await cluster.stop();
}

async function status(values: Values): Promise<void> {
  const map = await readShardMapFile(mapPathOf(values));
  console.log(`map epoch ${map.epoch}`);
  for (const [name, info] of map.shards) {
    const client = shardClient(name, info.address, authToken(values));
    const line = await client.json<ClusterStatus>('GET', '/cluster').then(
      (s) =>
        `epoch ${s.epoch}, ${s.ownedBuckets} buckets, ${s.pools} pools, ${s.values} values${s.movingBuckets.length > 0 ? `, moving ${s.movingBuckets.join(',')}` : ''}`,
      (err: unknown) => `unreachable (${(err as Error).message})`,
    );
    console.log(`${name} ${info.address}: ${line}`);
  }
}

async function pools(values: Values): Promise<void> {
  const map = await readShardMapFile(mapPathOf(values));
  let count = 0;
  let total = 0;
  for await (const pool of listClusterPools(map, authToken(values))) {
    process.stdout.write(JSON.stringify(pool) + '\n');
    count++;
    total += pool.count;
  }
  console.error(`${count} pools, ${total} values on ${map.shards.size} shards`);
}

async function move(values: Values, drain: boolean): Promise<void> {
  const mapPath = mapPathOf(values);
  const to = required(values, 'to');
  const buckets = drain ? await bucketsOwnedBy(mapPath, required(values, 'from')) : parseBucketList(required(values, 'buckets'));
  const syncCommand = values['sync-map-cmd'];
  const report = await moveBuckets({
    mapPath,
    buckets,
    to,
    proxy: proxyOf(values),
    authToken: authToken(values),
    log: (m) => console.error(m),
    // e.g. copy the file to the other machines, or apply it as a Kubernetes ConfigMap ($SHARD_MAP is its path)
    syncMap: syncCommand === undefined ? undefined : () => runShell(syncCommand, { SHARD_MAP: mapPath }),
    mapWaitMs: integerOption(values, 'map-wait-s', 0, 0, 3600) * 1000,
  });
  console.log(JSON.stringify(report, null, 2));
}

function runShell(command: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}`))));
  });
}

/** Runs one cluster command; `argv` are its arguments (`pools --dir X`, or none for `up`). */
export async function clusterCommand(argv: readonly string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  const command = positionals[0] ?? 'up';
  if (values.help === true) {
    console.log('usage: see the top of src/cli/cluster.ts and docs/cluster.md');
    return;
  }
  switch (command) {
    case 'up':
      return up(values);
    case 'status':
      return status(values);
    case 'pools':
      return pools(values);
    case 'move':
      return move(values, false);
    case 'drain':
      return move(values, true);
    case 'init-map': {
      const shards = required(values, 'shards')
        .split(',')
        .map((item) => {
          const [name, address] = item.split('=');
          if (address === undefined) throw new UsageError(`--shards: ${JSON.stringify(item)} is not name=host:port`);
          return { name, address };
        });
      process.stdout.write(formatShardMap(evenShardMap(shards)));
      return;
    }
    case 'add-shard': {
      const mapPath = path.resolve(required(values, 'shard-map'));
      const map = addShard(await readShardMapFile(mapPath), required(values, 'name'), required(values, 'address'));
      await writeShardMap(mapPath, map);
      console.log(`${mapPath}: epoch ${map.epoch}, ${values.name} added with no buckets`);
      return;
    }
    case 'remove-shard': {
      const mapPath = path.resolve(required(values, 'shard-map'));
      const map = removeShard(await readShardMapFile(mapPath), required(values, 'name'));
      await writeShardMap(mapPath, map);
      console.log(`${mapPath}: epoch ${map.epoch}, ${values.name} removed`);
      return;
    }
    case 'haproxy-config': {
      const map = await readShardMapFile(path.resolve(required(values, 'shard-map')));
      const threads = values.threads === undefined ? undefined : integerOption(values, 'threads', 1, 1, 64);
      process.stdout.write(
        haproxyConfig(map, {
          bind: required(values, 'bind'),
          bucketMapPath: required(values, 'bucket-map'),
          threads,
          dns: values.dns === true,
        }),
      );
      return;
    }
    case 'haproxy-map':
      process.stdout.write(haproxyBucketMap(await readShardMapFile(path.resolve(required(values, 'shard-map')))));
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}
