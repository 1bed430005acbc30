// The durable store's options: what a caller may pass, the defaults, and the
// one validation that turns them into the settings the store runs with.
// Option errors say `options.X must be …`.

import type { QuantileEngine } from '../core/engine.js';
import { invalidOption } from '../core/errors.js';
import { nodeFileLayer, type FileLayer } from './file-layer.js';
import type { FsyncPolicy } from './pool-writer.js';
import { KEY_DEFAULTS } from './idempotency-keys.js';
import { writeSnapshotFile, type SnapshotBuilder } from './snapshot-format.js';
import { silentLogger, type StorageLogger } from './storage-types.js';

export interface DurableStoreOptions {
  /** Directory for WAL segments and snapshots; created if missing. */
  dataDir: string;
  fsync: FsyncPolicy;
  /** `interval` only: fdatasync at most this long after a write. Default 200 ms. */
  fsyncIntervalMs?: number;
  /** Must be empty: recovery fills it. */
  engine: QuantileEngine;
  /** Default: node:fs. Tests pass a power-cut / fault-injecting double. */
  files?: FileLayer;
  logger?: StorageLogger;
  /** Snapshot when this long has passed since the last one and something changed. Default 60 s; 0 disables. */
  snapshotIntervalMs?: number;
  /** Snapshot when this many WAL bytes were written since the last one. Default 256 MiB; 0 disables. */
  snapshotWalBytes?: number;
  /** Bound on bytes of records queued or held for re-writing; past it, changes get 'unavailable'. Default 64 MiB. */
  maxPendingBytes?: number;
  /** Bound on records queued or held for re-writing. Default 100 000. */
  maxPendingRecords?: number;
  /** After a failed retry, refuse changes this long before trying the disk again. Default 1000 ms. */
  retryBackoffMs?: number;
  /** `never`: fdatasync once no write came for this long, releasing the records held for re-writing. Default 1000 ms; 0 turns it off. */
  idleSyncMs?: number;
  /**
   * `always`: how long a commit may wait to gather as many appends as the
   * last one held (docs/durability.md, "Commit gathering"). Default 0.5 ms; 0
   * turns it off.
   */
  commitGatherMs?: number;
  /**
   * Writes and fdatasyncs a snapshot file (default: writeSnapshotFile through
   * `files`). A piscina worker can run writeSnapshotFileSync instead; it then
   * bypasses `files`, so only use it with the real file layer.
   */
  buildSnapshot?: SnapshotBuilder;
  /** Told the bytes of applied records the log stops holding (`interval`/`never`): a GC pacer's cue. Default: nobody. */
  onRelease?: (bytes: number) => void;
  /** Wall clock, ms since the epoch: the default time of a change and the idempotency window's clock. Default Date.now. */
  clock?: () => number;
  /** How long an idempotency key is remembered, counted from its record's time. Default 24 h. */
  idempotencyWindowMs?: number;
  /** At most this many idempotency keys are remembered; past it the oldest is forgotten. Default 1 000 000. */
  maxIdempotencyKeys?: number;
}

export const STORE_DEFAULTS = {
  fsyncIntervalMs: 200,
  snapshotIntervalMs: 60_000,
  snapshotWalBytes: 256 << 20,
  maxPendingBytes: 64 << 20,
  maxPendingRecords: 100_000,
  retryBackoffMs: 1000,
  idleSyncMs: 1000,
  commitGatherMs: 0.5,
  idempotencyWindowMs: KEY_DEFAULTS.windowMs,
  maxIdempotencyKeys: KEY_DEFAULTS.maxEntries,
};

/** The numeric settings, defaults filled in. */
export interface StoreTuning {
  fsyncIntervalMs: number;
  snapshotIntervalMs: number;
  snapshotWalBytes: number;
  maxPendingBytes: number;
  maxPendingRecords: number;
  retryBackoffMs: number;
  idleSyncMs: number;
  commitGatherMs: number;
  idempotencyWindowMs: number;
  maxIdempotencyKeys: number;
}

/** Everything the store runs with, validated and defaulted. */
export interface StoreSettings extends StoreTuning {
  /** Without trailing slashes. */
  dataDir: string;
  fsync: FsyncPolicy;
  engine: QuantileEngine;
  files: FileLayer;
  logger: StorageLogger;
  buildSnapshot: SnapshotBuilder;
  clock: () => number;
  onRelease: (bytes: number) => void;
}

function optionalNumber(options: object, name: keyof StoreTuning, min: number): number {
  const value = (options as Record<string, unknown>)[name];
  if (value === undefined) return STORE_DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw invalidOption(name, `an integer >= ${min}`, value);
  return value;
}

/** Validates `options` (TypeError naming the option) and fills in the defaults. */
export function resolveStoreOptions(options: DurableStoreOptions): StoreSettings {
  if (typeof options !== 'object' || options === null) throw invalidOption('', 'an object', options);
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0)
    throw invalidOption('dataDir', 'a non-empty string', options.dataDir);
  if (options.fsync !== 'always' && options.fsync !== 'interval' && options.fsync !== 'never') {
    throw invalidOption('fsync', "'always', 'interval' or 'never'", options.fsync);
  }
  const engine = options.engine;
  if (typeof engine !== 'object' || engine === null || typeof engine.appendSortedRun !== 'function')
    throw invalidOption('engine', 'a QuantileEngine', typeof engine);
  if (engine.poolIds().length > 0) throw invalidOption('engine', 'an empty engine (recovery fills it)', `${engine.poolIds().length} pools`);
  if (options.clock !== undefined && typeof options.clock !== 'function')
    throw invalidOption('clock', 'a function returning ms since the epoch', typeof options.clock);
  if (options.onRelease !== undefined && typeof options.onRelease !== 'function')
    throw invalidOption('onRelease', 'a function taking a byte count', typeof options.onRelease);
  const files = options.files ?? nodeFileLayer;
  return {
    dataDir: options.dataDir.length > 1 ? options.dataDir.replace(/\/+$/, '') : options.dataDir,
    fsync: options.fsync,
    engine,
    files,
    logger: options.logger ?? silentLogger,
    buildSnapshot: options.buildSnapshot ?? ((path, seq, pools) => writeSnapshotFile(files, path, seq, pools)),
    fsyncIntervalMs: optionalNumber(options, 'fsyncIntervalMs', 1),
    snapshotIntervalMs: optionalNumber(options, 'snapshotIntervalMs', 0),
    snapshotWalBytes: optionalNumber(options, 'snapshotWalBytes', 0),
    maxPendingBytes: optionalNumber(options, 'maxPendingBytes', 1),
    maxPendingRecords: optionalNumber(options, 'maxPendingRecords', 1),
    retryBackoffMs: optionalNumber(options, 'retryBackoffMs', 0),
    idleSyncMs: optionalNumber(options, 'idleSyncMs', 0),
    commitGatherMs: optionalNumber(options, 'commitGatherMs', 0),
    idempotencyWindowMs: optionalNumber(options, 'idempotencyWindowMs', 0),
    maxIdempotencyKeys: optionalNumber(options, 'maxIdempotencyKeys', 0),
    clock: options.clock ?? Date.now,
    onRelease: options.onRelease ?? (() => {}),
  };
}
