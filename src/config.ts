// Service configuration: flags win over environment variables, which win over
// defaults (README, "Configuration"). Parsed once at start-up and printed
// in the start-up log line.

import { parseArgs } from 'node:util';
import path from 'node:path';
import type { EngineKind } from './core/kernels.js';
import { isShardName } from './core/shard-map.js';
import type { FsyncPolicy } from './storage/pool-writer.js';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  engine: EngineKind;
  fsync: FsyncPolicy;
  /** fdatasync period under --fsync=interval. */
  fsyncIntervalMs: number;
  maxBodyBytes: number;
  /** Snapshot when this much time passed since the last one (0: only by size and at shutdown). */
  snapshotIntervalMs: number;
  /** Snapshot when the log grew this much since the last one. */
  snapshotWalBytes: number;
  /** piscina worker threads (0 disables offloading). */
  workers: number;
  /** Merges of at least this many values run on a worker. */
  offloadMergeValues: number;
  /** Incoming batches of at least this many values are sorted on a worker. */
  offloadSortValues: number;
  /** Request bodies of at least this many bytes are parsed on a worker. */
  offloadParseBytes: number;
  /** Requests slower than this are logged. */
  slowRequestMs: number;
  /** Seconds to wait for in-flight requests at shutdown. */
  shutdownGraceMs: number;
  logLevel: string;
  /** When set, data endpoints require `Authorization: Bearer <token>`. */
  authToken: string | null;
  /** Cluster mode: the shard-map file (docs/cluster.md) and this instance's name in it; both or neither. */
  shardMap: string | null;
  shardName: string | null;
  /** Largest body of POST /cluster/buckets/{bucket}/import (an export of one bucket). */
  maxBucketImportBytes: number;
  /** Largest body POST /imports accepts (spooled to the data directory, not held in memory). */
  maxImportBytes: number;
  /** A data file loaded into importPool at start-up when that pool does not exist yet. */
  importFile: string | null;
  importPool: number | null;
  /** /ws: close a socket silent this long (pings are sent before). */
  wsIdleTimeoutSeconds: number;
  /** /ws: close a socket (1008) whose unsent replies exceed this many bytes. */
  wsMaxBacklogBytes: number;
}

interface Setting {
  flag: string;
  env: string;
  default: string;
  help: string;
}

export const SETTINGS = {
  port: { flag: 'port', env: 'PORT', default: '8000', help: 'TCP port to listen on' },
  host: { flag: 'host', env: 'HOST', default: '127.0.0.1', help: 'interface to bind; 0.0.0.0 for all IPv4 interfaces' },
  dataDir: { flag: 'data-dir', env: 'DATA_DIR', default: './data', help: 'where the log and snapshots live' },
  engine: { flag: 'engine', env: 'ENGINE', default: 'wasm', help: 'quantile engine: wasm or ts' },
  fsync: { flag: 'fsync', env: 'FSYNC', default: 'always', help: 'always (ack after fdatasync), interval, never' },
  fsyncIntervalMs: { flag: 'fsync-interval-ms', env: 'FSYNC_INTERVAL_MS', default: '100', help: 'fdatasync period for --fsync=interval' },
  maxBody: { flag: 'max-body', env: 'MAX_BODY', default: '16MiB', help: 'largest request body (B, KiB, MiB, GiB suffixes)' },
  snapshotIntervalMs: {
    flag: 'snapshot-interval-ms',
    env: 'SNAPSHOT_INTERVAL_MS',
    default: '300000',
    help: 'snapshot at least this often (0: never by time)',
  },
  snapshotWalBytes: {
    flag: 'snapshot-wal-bytes',
    env: 'SNAPSHOT_WAL_BYTES',
    default: '256MiB',
    help: 'snapshot once the log grew this much',
  },
  workers: { flag: 'workers', env: 'WORKERS', default: '1', help: 'piscina worker threads for heavy work (0: all inline)' },
  offloadMergeValues: {
    flag: 'offload-merge-values',
    env: 'OFFLOAD_MERGE_VALUES',
    default: '262144',
    help: 'merges at least this large run on a worker',
  },
  offloadSortValues: {
    flag: 'offload-sort-values',
    env: 'OFFLOAD_SORT_VALUES',
    default: '65536',
    help: 'batches at least this large are sorted on a worker',
  },
  offloadParseBytes: {
    flag: 'offload-parse-bytes',
    env: 'OFFLOAD_PARSE_BYTES',
    default: '1MiB',
    help: 'bodies at least this large are parsed on a worker',
  },
  slowRequestMs: { flag: 'slow-request-ms', env: 'SLOW_REQUEST_MS', default: '250', help: 'log requests slower than this' },
  shutdownGraceMs: {
    flag: 'shutdown-grace-ms',
    env: 'SHUTDOWN_GRACE_MS',
    default: '10000',
    help: 'wait this long for in-flight requests at shutdown',
  },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', default: 'info', help: 'pino level: fatal, error, warn, info, debug' },
  authToken: {
    flag: 'auth-token',
    env: 'AUTH_TOKEN',
    default: '',
    help: 'require Authorization: Bearer <token> on data endpoints (empty: off)',
  },
  shardMap: {
    flag: 'shard-map',
    env: 'SHARD_MAP',
    default: '',
    help: 'cluster mode: the shard-map file (with --shard-name); SIGHUP reloads it',
  },
  shardName: { flag: 'shard-name', env: 'SHARD_NAME', default: '', help: "cluster mode: this instance's shard name in the map" },
  maxBucketImport: {
    flag: 'max-bucket-import',
    env: 'MAX_BUCKET_IMPORT',
    default: '2GiB',
    help: 'cluster mode: largest bucket import body (moving buckets between shards)',
  },
  maxImport: { flag: 'max-import', env: 'MAX_IMPORT', default: '4GiB', help: 'largest POST /imports body (spooled to the data directory)' },
  importFile: {
    flag: 'import',
    env: 'IMPORT',
    default: '',
    help: 'data file (csv, ndjson or f64 by extension) loaded at start-up into --import-pool if that pool does not exist',
  },
  importPool: { flag: 'import-pool', env: 'IMPORT_POOL', default: '', help: 'pool that --import fills' },
  wsIdleTimeout: {
    flag: 'ws-idle-timeout',
    env: 'WS_IDLE_TIMEOUT',
    default: '60',
    help: '/ws: seconds of silence before a socket is closed (pinged first; 8-960)',
  },
  wsMaxBacklog: {
    flag: 'ws-max-backlog',
    env: 'WS_MAX_BACKLOG',
    default: '4MiB',
    help: '/ws: close a socket (1008) with more unsent replies than this',
  },
} as const satisfies Record<string, Setting>;

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

export class ConfigError extends Error {
  constructor(setting: Setting, value: string, expectation: string) {
    super(`--${setting.flag} / ${setting.env} must be ${expectation} (got ${JSON.stringify(value)})`);
    this.name = 'ConfigError';
  }
}

/** The configuration as it may be logged: secrets replaced. */
export function redactedConfig(config: Config): Record<string, unknown> {
  return { ...config, authToken: config.authToken === null ? null : '(set)' };
}

export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (m === null) return null;
  const unit = SIZE_UNITS[(m[2] || 'b').toLowerCase()];
  if (unit === undefined) return null;
  return Math.floor(Number(m[1]) * unit);
}

function integerIn(setting: Setting, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(setting, raw, `an integer from ${min} to ${max}`);
  }
  return n;
}

function sizeIn(setting: Setting, raw: string, min: number): number {
  const n = parseSize(raw);
  if (n === null || n < min) throw new ConfigError(setting, raw, `a size of at least ${min} bytes like 16MiB`);
  return n;
}

function oneOf<T extends string>(setting: Setting, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(setting, raw, `one of ${allowed.join(', ')}`);
  return raw as T;
}

function startupImport(file: string, pool: string): { importFile: string | null; importPool: number | null } {
  if (file === '' && pool === '') return { importFile: null, importPool: null };
  if (file === '') throw new ConfigError(SETTINGS.importFile, file, 'a file when --import-pool is set');
  const poolId = integerIn(SETTINGS.importPool, pool, 0, Number.MAX_SAFE_INTEGER);
  return { importFile: path.resolve(file), importPool: poolId };
}

export function loadConfig(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Config {
  const options = Object.fromEntries(Object.values(SETTINGS).map((s) => [s.flag, { type: 'string' as const }]));
  const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  const raw = (s: Setting): string => (values[s.flag] as string | undefined) ?? env[s.env] ?? s.default;
  const S = SETTINGS;
  return {
    port: integerIn(S.port, raw(S.port), 0, 65535),
    host: raw(S.host),
    dataDir: path.resolve(raw(S.dataDir)),
    engine: oneOf(S.engine, raw(S.engine), ['wasm', 'ts'] as const),
    fsync: oneOf(S.fsync, raw(S.fsync), ['always', 'interval', 'never'] as const),
    fsyncIntervalMs: integerIn(S.fsyncIntervalMs, raw(S.fsyncIntervalMs), 1, 60_000),
    maxBodyBytes: sizeIn(S.maxBody, raw(S.maxBody), 64),
    snapshotIntervalMs: integerIn(S.snapshotIntervalMs, raw(S.snapshotIntervalMs), 0, 86_400_000),
    snapshotWalBytes: sizeIn(S.snapshotWalBytes, raw(S.snapshotWalBytes), 4096),
    workers: integerIn(S.workers, raw(S.workers), 0, 64),
    offloadMergeValues: integerIn(S.offloadMergeValues, raw(S.offloadMergeValues), 1, 2 ** 31),
    offloadSortValues: integerIn(S.offloadSortValues, raw(S.offloadSortValues), 1, 2 ** 31),
    offloadParseBytes: sizeIn(S.offloadParseBytes, raw(S.offloadParseBytes), 1),
    slowRequestMs: integerIn(S.slowRequestMs, raw(S.slowRequestMs), 0, 3_600_000),
    shutdownGraceMs: integerIn(S.shutdownGraceMs, raw(S.shutdownGraceMs), 0, 3_600_000),
    logLevel: oneOf(S.logLevel, raw(S.logLevel), ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    authToken: raw(S.authToken) === '' ? null : raw(S.authToken),
    ...clusterSettings(raw(S.shardMap), raw(S.shardName)),
    maxBucketImportBytes: sizeIn(S.maxBucketImport, raw(S.maxBucketImport), 64),
    maxImportBytes: sizeIn(S.maxImport, raw(S.maxImport), 64),
    ...startupImport(raw(S.importFile), raw(S.importPool)),
    wsIdleTimeoutSeconds: integerIn(S.wsIdleTimeout, raw(S.wsIdleTimeout), 8, 960),
    wsMaxBacklogBytes: sizeIn(S.wsMaxBacklog, raw(S.wsMaxBacklog), 64 << 10),
  };
}

function clusterSettings(mapPath: string, name: string): { shardMap: string | null; shardName: string | null } {
  if (mapPath === '' && name === '') return { shardMap: null, shardName: null };
  if (mapPath === '') throw new ConfigError(SETTINGS.shardMap, mapPath, 'a shard-map file when --shard-name is given');
  if (!isShardName(name)) {
    throw new ConfigError(
      SETTINGS.shardName,
      name,
      'a shard name from the map (lower-case letters, digits, inner dashes) when --shard-map is given',
    );
  }
  return { shardMap: path.resolve(mapPath), shardName: name };
}
