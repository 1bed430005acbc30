// poolq's entry point: configuration → engine → HTTP listening (not ready) →
// recovery → ready; SIGTERM/SIGINT drain requests, flush the log, snapshot and
// exit 0. Usage: node dist/src/main.js [--port 8000] [--data-dir ./data] ...

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, redactedConfig, SETTINGS } from './config.js';
import { createEngine } from './core/create-engine.js';
import type { QuantileEngine } from './core/engine.js';
import type { Logger } from 'pino';
import { createGcPacer } from './core/gc-pacer.js';
import { createLogger } from './logger.js';
import { createTsKernels } from './core/ts-kernels.js';
import { Metrics } from './http/metrics.js';
import { PoolqServer } from './http/server.js';
import { loadNativeUws } from './http/uws-loader.js';
import type { ClusterDeps } from './http/cluster-admin.js';
import { ShardGate } from './protocol/shard-gate.js';
import { readShardMapFile } from './protocol/shard-map-file.js';
import { lockDataDir } from './storage/data-dir-lock.js';
import { openDurableStore } from './storage/durable-store.js';
import type { ImportFormat } from './protocol/import-format.js';
import { inlineImportParser, startImportParser } from './workers/import-parser.js';
import { startWorkerPool } from './workers/worker-pool.js';

/** --import's format, from the file's extension. */
function formatOf(file: string): ImportFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.ndjson' || ext === '.jsonl') return 'ndjson';
  if (ext === '.f64' || ext === '.bin') return 'f64';
  return 'csv';
}

function usage(): string {
  const lines = Object.values(SETTINGS).map((s) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(22)} default ${s.default}: ${s.help}`);
  return `usage: npm start -- [flags]  (flags win over environment variables)\n${lines.join('\n')}`;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(usage());
    return;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`poolq: ${(err as Error).message}\n${usage()}`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  const { uws, packageName } = loadNativeUws();
  // Freed run buffers go back to the OS at the next full collection; the pacer makes that soon (core/gc-pacer.ts).
  const gcPacer = createGcPacer();
  const engine = await createEngine({ kind: config.engine, onRelease: gcPacer?.note });
  const metrics = new Metrics();
  metrics.attachEngine(engine);
  // Reads drop expired buckets of the pools they touch; this drops those of pools nobody reads.
  setInterval(() => engine.sweepExpired(), 1000).unref();
  const offload = config.workers > 0 ? await startWorkerPool({ threads: config.workers, engine: config.engine, inline: engine }) : null;
  if (offload !== null) engine.setMergeOffloader(offload.merge, config.offloadMergeValues);

  const importParser = config.workers > 0 ? await startImportParser(config.engine) : inlineImportParser(createTsKernels());
  const cluster =
    config.shardMap === null || config.shardName === null ? null : await openCluster(config.shardMap, config.shardName, engine, logger);
  const server = new PoolqServer({ uws, config, engine, metrics, logger, offload, importParser: importParser.parse, cluster });
  const imports = server.imports;
  const port = await server.listen();
  const shard =
    cluster === null ? {} : { shard: cluster.gate.name, epoch: cluster.gate.map.epoch, ownedBuckets: cluster.gate.ownedBuckets().length };
  logger.info(
    { config: { ...redactedConfig(config), port }, uws: packageName, node: process.version, ...shard },
    'poolq listening; recovering data',
  );

  let shuttingDown = false;
  const started = performance.now();
  let lock;
  try {
    lock = lockDataDir(config.dataDir);
  } catch (err) {
    logger.fatal({ err, dataDir: config.dataDir }, 'cannot use the data directory; refusing to start');
    process.exit(1);
  }
  const store = await openDurableStore({
    dataDir: config.dataDir,
    fsync: config.fsync,
    fsyncIntervalMs: config.fsyncIntervalMs,
    engine,
    logger,
    snapshotIntervalMs: config.snapshotIntervalMs,
    snapshotWalBytes: config.snapshotWalBytes,
    buildSnapshot: offload?.buildSnapshot,
    onRelease: gcPacer?.note,
  }).catch((err: unknown) => {
    logger.fatal({ err }, 'recovery failed; refusing to start');
    process.exit(1);
  });
  metrics.attachStorage(store.gauges());
  server.useWriter(store);
  if (config.importFile !== null && config.importPool !== null) {
    // A seed: loaded into a pool that does not exist yet. The import lands in
    // one log record, so once it did the pool exists and later starts skip it.
    const poolId = config.importPool;
    if (engine.hasPool(poolId)) {
      logger.info({ file: config.importFile, poolId }, 'start-up import skipped: the pool exists');
    } else {
      const { jobId } = imports.reserve();
      const options = { format: formatOf(config.importFile), poolId, column: null };
      const size = existsSync(config.importFile) ? statSync(config.importFile).size : 0; // a missing file fails the job
      const { finished } = imports.submit(jobId, config.importFile, options, size, false);
      const job = await finished;
      if (job.state !== 'done') {
        logger.fatal({ file: config.importFile, poolId, error: job.error }, 'start-up import failed; refusing to start');
        process.exit(1);
      }
      logger.info({ file: config.importFile, poolId, values: job.values }, 'start-up import loaded');
    }
  }
  server.setReady(store);
  const stats = engine.stats();
  logger.info({ pools: stats.pools, values: stats.values, recoveryMs: Math.round(performance.now() - started) }, 'poolq ready');

  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down: draining requests');
    await server.drain(config.shutdownGraceMs);
    await engine.whenMergesSettled();
    await store.close();
    lock.release();
    await offload?.close();
    await importParser.close();
    server.close();
    logger.info('poolq stopped cleanly');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** Cluster mode: the gate over the --shard-map file, reloaded on SIGHUP (and POST /cluster/shard-map/reload); a bad file keeps the old map. */
async function openCluster(mapPath: string, name: string, engine: QuantileEngine, logger: Logger): Promise<ClusterDeps> {
  let gate: ShardGate;
  try {
    gate = new ShardGate(await readShardMapFile(mapPath), name);
  } catch (err) {
    console.error(`poolq: ${(err as Error).message}`);
    process.exit(2);
  }
  const reloadShardMap = async () => {
    const map = await readShardMapFile(mapPath);
    gate.replaceMap(map);
    logger.info({ shard: gate.name, epoch: map.epoch, ownedBuckets: gate.ownedBuckets().length }, 'shard map loaded');
    return map;
  };
  process.on('SIGHUP', () => {
    reloadShardMap().catch((err: unknown) =>
      logger.error({ err: (err as Error).message, file: mapPath }, 'shard map not reloaded; keeping the old one'),
    );
  });
  return { gate, engine, reloadShardMap };
}

main().catch((err: unknown) => {
  console.error('poolq failed to start:', err);
  process.exit(1);
});
