// A cluster on one machine for development and tests: N poolq instances on
// loopback, each with its own data directory under `dir`, and HAProxy in front,
// all configured from one shard map in `dir`. `dir/cluster.json` records where
// everything is, so the other cluster commands (move, pools) find it.
//
//   dir/shard-map.json  dir/haproxy.cfg  dir/buckets.map  dir/haproxy-master.sock
//   dir/<shard>/ (data)  dir/<shard>.log  dir/haproxy.log  dir/cluster.json

import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { evenShardMap, formatShardMap, type ShardMap } from '../../core/shard-map.js';
import { readShardMapFile } from '../../protocol/shard-map-file.js';
import { haproxyBucketMap, haproxyConfig } from './haproxy-config.js';
import { checkHaproxyConfig, startHaproxy, type HaproxyProcess } from './haproxy-process.js';
import { startInstance, stopInstance, type InstanceProcess, type InstanceSpec } from './instance-process.js';
import { moveBuckets, type MoveReport } from './move-buckets.js';

export interface LocalClusterOptions {
  dir: string;
  shards: number;
  /** Proxy port; shards listen on the next ones. 0: free ports chosen by the system. */
  port: number;
  host?: string;
  /** Start from empty data directories and a new map. */
  fresh?: boolean;
  /** More poolq flags for every instance. */
  poolqArgs?: readonly string[];
  env?: Record<string, string>;
  /** HAProxy threads (default 1: on a small machine the proxy should not compete with the shards). */
  proxyThreads?: number;
}

/** dir/cluster.json */
export interface ClusterLayout {
  proxyUrl: string;
  mapPath: string;
  bucketMapPath: string;
  configPath: string;
  masterSocket: string;
}

export function readClusterLayout(dir: string): ClusterLayout {
  const file = path.join(dir, 'cluster.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: is a cluster running from ${dir} (npm run cluster -- --dir ${dir})?`);
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterLayout;
}

async function freePorts(count: number, host: string): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, host, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export class LocalCluster {
  readonly instances = new Map<string, InstanceProcess>();
  private proxy: HaproxyProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly layout: ClusterLayout,
    private map: ShardMap,
    private readonly options: LocalClusterOptions,
  ) {}

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const host = options.host ?? '127.0.0.1';
    const dir = path.resolve(options.dir);
    const mapPath = path.join(dir, 'shard-map.json');
    if (options.fresh) rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    let map: ShardMap;
    let proxyPort: number;
    if (existsSync(mapPath)) {
      map = await readShardMapFile(mapPath);
      if (map.shards.size !== options.shards) {
        throw new Error(
          `${mapPath} has ${map.shards.size} shards, not ${options.shards}: start with --fresh, or move buckets with npm run cluster -- move`,
        );
      }
      proxyPort = options.port === 0 ? (await freePorts(1, host))[0] : options.port;
    } else {
      const ports =
        options.port === 0
          ? await freePorts(options.shards + 1, host)
          : Array.from({ length: options.shards + 1 }, (_, i) => options.port + i);
      proxyPort = ports[0];
      map = evenShardMap(Array.from({ length: options.shards }, (_, i) => ({ name: `shard-${i}`, address: `${host}:${ports[i + 1]}` })));
      writeFileSync(mapPath, formatShardMap(map));
    }
    const layout: ClusterLayout = {
      proxyUrl: `http://${host}:${proxyPort}`,
      mapPath,
      bucketMapPath: path.join(dir, 'buckets.map'),
      configPath: path.join(dir, 'haproxy.cfg'),
      masterSocket: path.join(dir, 'haproxy-master.sock'),
    };
    const cluster = new LocalCluster(dir, layout, map, options);
    try {
      await Promise.all([...map.shards.keys()].map((name) => cluster.startShard(name)));
      await cluster.startProxy(`${host}:${proxyPort}`);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify(layout, null, 2) + '\n');
    return cluster;
  }

  get shardMap(): ShardMap {
    return this.map;
  }

  shardUrl(name: string): string {
    const info = this.map.shards.get(name);
    if (info === undefined) throw new Error(`no shard named ${name}`);
    return `http://${info.address}`;
  }

  private spec(name: string): InstanceSpec {
    const [host, port] = this.map.shards.get(name)!.address.split(':');
    return {
      name,
      host,
      port: Number(port),
      dataDir: path.join(this.dir, name),
      mapPath: this.layout.mapPath,
      logPath: path.join(this.dir, `${name}.log`),
      args: this.options.poolqArgs ?? [],
      env: this.options.env,
    };
  }

  /** Starts (or restarts) one shard; resolves when it is ready. */
  async startShard(name: string): Promise<InstanceProcess> {
    const instance = await startInstance(this.spec(name));
    this.instances.set(name, instance);
    return instance;
  }

  /** SIGKILL, as a crash would. */
  async killShard(name: string): Promise<void> {
    const instance = this.instances.get(name);
    if (instance === undefined) return;
    instance.proc.kill('SIGKILL');
    await instance.exited;
  }

  private async startProxy(bind: string): Promise<void> {
    const { configPath, bucketMapPath, masterSocket } = this.layout;
    writeFileSync(bucketMapPath, haproxyBucketMap(this.map));
    writeFileSync(configPath, haproxyConfig(this.map, { bind, bucketMapPath, threads: this.options.proxyThreads ?? 1 }));
    checkHaproxyConfig(configPath);
    rmSync(masterSocket, { force: true });
    const logPath = path.join(this.dir, 'haproxy.log');
    this.proxy = await startHaproxy(configPath, masterSocket, (line) => appendFileSync(logPath, line + '\n'));
  }

  /** Moves buckets with the scripted procedure, then rereads the map. */
  async moveBuckets(buckets: readonly number[], to: string, log?: (message: string) => void): Promise<MoveReport> {
    const report = await moveBuckets({
      mapPath: this.layout.mapPath,
      buckets,
      to,
      proxy: { bucketMapPath: this.layout.bucketMapPath, masterSocket: this.layout.masterSocket },
      authToken: this.options.env?.AUTH_TOKEN ?? null,
      log,
    });
    this.map = await readShardMapFile(this.layout.mapPath);
    return report;
  }

  async stop(): Promise<void> {
    await this.proxy?.stop();
    this.proxy = null;
    await Promise.all([...this.instances.values()].map((instance) => stopInstance(instance)));
    rmSync(path.join(this.dir, 'cluster.json'), { force: true });
  }
}
