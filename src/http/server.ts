// The HTTP front end's lifecycle on uWebSockets.js: listening, readiness,
// authentication, requests in flight and graceful shutdown. Routes come from
// the route table (src/protocol/routes.ts), bound by router.ts to the handlers
// in handlers.ts; /ws (ws-server.ts) runs on the same uWS app.

import { timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { QuantileEngine } from '../core/engine.js';
import { PoolqError, unavailable } from '../core/errors.js';
import type { RequestOffload } from '../protocol/offload.js';
import { ROUTES } from '../protocol/routes.js';
import type { PoolWriter } from '../storage/pool-writer.js';
import { BodyBufferPool } from './body-buffers.js';
import { ClusterAdmin, type ClusterDeps } from './cluster-admin.js';
import { Exchange, type ExchangeHooks } from './exchange.js';
import { gatedWriter } from './gated-writer.js';
import { createHandlers, type ServerState } from './handlers.js';
import { ImportJobs, importTopicName } from './import-jobs.js';
import { IngestRoutes } from './ingest-routes.js';
import { ingestWriter, type IngestWriter } from './ingest-writer.js';
import type { Metrics } from './metrics.js';
import type { ImportParser } from '../protocol/import-format.js';
import { buildOpenApiDocument } from './openapi.js';
import { Router, type PoolGuard, type RouterHost } from './router.js';
import { SubscriptionHub } from './subscription-hub.js';
import { PUSH_LIMIT_BYTES, WsServer } from './ws-server.js';
import type { Uws } from './uws-loader.js';

export type { ServerState } from './handlers.js';

export interface ServerDeps {
  uws: Uws;
  config: Config;
  engine: QuantileEngine;
  metrics: Metrics;
  logger: Logger;
  offload: RequestOffload | null;
  /** Cluster mode (--shard-map): the pool hook refuses other shards' pools with 421; absent: every pool is served here. */
  cluster?: ClusterDeps | null;
  /** Parses import files off the event loop (src/workers/import-parser.ts); absent: imports fail. */
  importParser?: ImportParser;
  /** Refuses pools this instance does not serve (see router.ts); in cluster mode the shard gate is this hook. */
  poolGuard?: PoolGuard;
}

export class PoolqServer implements ExchangeHooks, RouterHost {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  private state: ServerState = 'starting';
  private writer: IngestWriter | null = null;
  /** The store itself: /cluster imports and deletions of buckets this shard does not own bypass the gate. */
  private storeWriter: PoolWriter | null = null;
  private inFlight = 0;
  private drained: (() => void) | null = null;
  private readonly expectedAuthorization: Buffer | null;
  readonly hub: SubscriptionHub;
  /** Bulk imports (POST /imports, --import at start-up); their progress is the hub's `import` topic. */
  readonly imports: ImportJobs;
  private readonly ws: WsServer;

  constructor(private readonly deps: ServerDeps) {
    const { config, offload } = deps;
    this.app = deps.uws.App();
    this.expectedAuthorization = config.authToken === null ? null : Buffer.from(`Bearer ${config.authToken}`);
    const bodyBuffers = new BodyBufferPool();
    this.hub = new SubscriptionHub(deps.engine, { pushLimitBytes: PUSH_LIMIT_BYTES });
    const parser = deps.importParser;
    this.imports = new ImportJobs({
      parse: parser ?? (() => Promise.reject(new Error('this server has no import parser'))),
      writer: () => this.writer!,
      spoolDir: path.join(config.dataDir, 'imports'),
      onChange: (view) => this.hub.changed(importTopicName(view.jobId)),
    });
    this.hub.registerKind('import', (params) => this.imports.topic(params));
    const gate = deps.cluster?.gate;
    // In cluster mode the shard gate is the pool hook: another shard's pool gets 421 on every route and /ws request.
    const guard: PoolGuard | undefined =
      gate === undefined
        ? deps.poolGuard
        : (poolId) => {
            const error = gate.misdirection(poolId);
            return error === null ? null : { error };
          };
    this.ws = new WsServer(
      {
        config,
        engine: deps.engine,
        logger: deps.logger,
        metrics: deps.metrics,
        offload,
        hub: this.hub,
        writer: () => this.writer,
        state: () => this.state,
        // The router's pool hook, for /ws requests (a cluster answers them with its 421 error).
        poolGuard: guard === undefined ? undefined : (poolId) => guard(poolId, null)?.error ?? null,
      },
      this.app,
    );
    deps.metrics.attachWebSockets({
      connections: () => this.ws.connections,
      bufferedBytes: () => this.ws.bufferedBytes,
      pushes: () => this.hub.stats().pushes,
      skippedPushes: () => this.hub.stats().skipped,
    });
    const ingest = new IngestRoutes({
      config,
      engine: deps.engine,
      offload,
      bodyBuffers,
      writer: () => this.writer!,
    });
    const handlers = createHandlers({
      ingest,
      engine: deps.engine,
      offload,
      metrics: deps.metrics,
      bodyBuffers,
      offloadParseBytes: config.offloadParseBytes,
      offloadSortValues: config.offloadSortValues,
      openApiJson: JSON.stringify(buildOpenApiDocument()),
      writer: () => this.writer!,
      state: () => this.state,
      imports: this.imports,
      maxImportBytes: config.maxImportBytes,
      cluster: deps.cluster == null ? null : new ClusterAdmin(deps.cluster),
      storeWriter: () => this.storeWriter!,
      checkPools: (poolIds) => {
        if (gate !== undefined) for (const poolId of poolIds) gate.checkOwner(poolId);
      },
    });
    const limits = {
      maxBytes: config.maxBodyBytes,
      maxBulkBytes: config.maxBucketImportBytes,
      sharedFromBytes: offload !== null ? config.offloadParseBytes : Infinity,
      buffers: bodyBuffers,
    };
    new Router(this, limits, guard ?? null).bind(this.app, ROUTES, handlers);
  }

  // ---- lifecycle -------------------------------------------------------

  listen(): Promise<number> {
    const { host, port } = this.deps.config;
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (socket === false) {
          reject(new Error(`cannot listen on ${host}:${port} (address in use or not available)`));
          return;
        }
        this.listenSocket = socket;
        resolve(this.deps.uws.us_socket_local_port(socket));
      });
    });
  }

  /**
   * Recovery finished and the data directory is ours: changes may be written
   * (a start-up import, before ready) and leftover import spool files go.
   */
  useWriter(writer: PoolWriter): void {
    if (this.writer !== null) return;
    const ingest = ingestWriter(writer, (poolId) => this.hub.poolChanged(poolId));
    const gate = this.deps.cluster?.gate;
    this.writer = gate === undefined ? ingest : gatedWriter(ingest, gate);
    this.storeWriter = writer;
    this.imports.clearSpool();
  }

  /** Recovery finished: accept writes and report ready. */
  setReady(writer: PoolWriter): void {
    this.useWriter(writer);
    if (this.state === 'starting') this.state = 'ready';
  }

  get currentState(): ServerState {
    return this.state;
  }

  /**
   * Stops accepting connections and waits (up to graceMs) for in-flight
   * requests. Requests arriving on kept-alive connections meanwhile get 503
   * and a closed connection. The caller flushes storage, then calls close().
   */
  async drain(graceMs: number): Promise<void> {
    this.state = 'stopping';
    if (this.listenSocket !== null) {
      this.deps.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    const started = performance.now();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    // WebSocket adds already sent to storage are answered before the sockets close (1001).
    await this.ws.settle(Math.max(0, graceMs - (performance.now() - started)));
    this.ws.closeAll();
  }

  /** Closes every remaining connection. */
  close(): void {
    this.hub.close();
    (this.app as unknown as { close?: () => void }).close?.();
  }

  // ---- ExchangeHooks ---------------------------------------------------

  finished(ex: Exchange, status: string): void {
    const seconds = (performance.now() - ex.startedAt) / 1000;
    this.deps.metrics.observe(ex.route, status, seconds);
    if (seconds * 1000 >= this.deps.config.slowRequestMs) {
      this.deps.logger.warn({ route: ex.route, status: Number(status), ms: Math.round(seconds * 1000) }, 'slow request');
    }
    this.inFlight--;
    if (this.inFlight === 0 && this.drained !== null) this.drained();
  }

  internalError(ex: Exchange, err: unknown): void {
    this.deps.logger.error({ route: ex.route, err }, 'request failed');
  }

  // ---- RouterHost ------------------------------------------------------

  begin(res: HttpResponse, label: string, head = false): Exchange {
    this.inFlight++;
    const ex = new Exchange(res, head ? label.replace(/^GET/, 'HEAD') : label, this);
    ex.head = head;
    return ex;
  }

  admissible(authorized: boolean, needsData: boolean): boolean {
    return authorized && (!needsData || (this.state === 'ready' && this.writer !== null));
  }

  authorized(req: HttpRequest): boolean {
    const expected = this.expectedAuthorization;
    if (expected === null) return true;
    const given = Buffer.from(req.getHeader('authorization'));
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  admit(ex: Exchange, authorized: boolean, needsData: boolean): boolean {
    if (!authorized) {
      ex.sendError(new PoolqError('unauthorized', 'This endpoint needs the header Authorization: Bearer <token> (--auth-token).'), {
        'www-authenticate': 'Bearer',
      });
      return false;
    }
    if (!needsData || (this.state === 'ready' && this.writer !== null)) return true;
    const close = this.state === 'stopping';
    ex.sendError(
      unavailable(this.state === 'starting' ? 'poolq is recovering its data; retry shortly.' : 'poolq is shutting down.'),
      { 'retry-after': '1' },
      close,
    );
    return false;
  }
}
