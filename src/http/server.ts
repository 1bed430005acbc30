// The HTTP front end on uWebSockets.js: routing, request lifecycle, readiness
// and graceful shutdown. Handlers copy what they need from `req` at the top
// (it is invalid after return), attach onAborted (Exchange) before any async
// step, and write every reply corked (Exchange.send).

import { timingSafeEqual } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { QuantileEngine } from '../core/engine.js';
import { PoolqError, unavailable } from '../core/errors.js';
import type { AppendOutcome } from '../core/engine.js';
import type { ShardGate } from '../protocol/shard-gate.js';
import type { Awaitable, PoolWriter } from '../storage/pool-writer.js';
import type { Offload } from '../workers/offload.js';
import { BodyBufferPool } from './body-buffers.js';
import { ClusterAdmin, type ClusterDeps } from './cluster-admin.js';
import { CLUSTER_ALLOWED, registerClusterRoutes } from './cluster-routes.js';
import { readBody } from './body-reader.js';
import { parseQueryBodyFast } from './bulk-parse.js';
import { loadDocsAssets, type DocsAssets } from './docs-page.js';
import { Exchange, inUwsCallback, jsonNumber, type ExchangeHooks } from './exchange.js';
import type { Metrics } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import type { Uws } from './uws-loader.js';
import {
  checkValues,
  parseAddRequest,
  parseJson,
  parseListQuery,
  parsePercentileQuery,
  parsePoolIdText,
  parseQueryRequest,
  checkMethod,
  type AddRequest,
} from './validate.js';

export type ServerState = 'starting' | 'ready' | 'stopping';

export interface ServerDeps {
  uws: Uws;
  config: Config;
  engine: QuantileEngine;
  metrics: Metrics;
  logger: Logger;
  offload: Offload | null;
  /** Cluster mode (--shard-map): the ownership gate and the /cluster endpoints; null serves every pool. */
  cluster: ClusterDeps | null;
}

const INSERTED = '"Inserted"';
const APPENDED = '"Appended"';
const OK = '200 OK';
const CREATED = '201 Created';
const NO_CONTENT = '204 No Content';

export class PoolqServer implements ExchangeHooks {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  private state: ServerState = 'starting';
  private writer: PoolWriter | null = null;
  private inFlight = 0;
  private drained: (() => void) | null = null;
  private readonly openApiJson: string;
  private docs: DocsAssets | null = null;
  private readonly bodyBuffers = new BodyBufferPool();
  private readonly expectedAuthorization: Buffer | null;
  private readonly gate: ShardGate | null;
  private readonly clusterAdmin: ClusterAdmin | null;

  constructor(private readonly deps: ServerDeps) {
    this.app = deps.uws.App();
    this.gate = deps.cluster?.gate ?? null;
    this.clusterAdmin = deps.cluster === null ? null : new ClusterAdmin(deps.cluster);
    this.expectedAuthorization = deps.config.authToken === null ? null : Buffer.from(`Bearer ${deps.config.authToken}`);
    this.openApiJson = JSON.stringify(buildOpenApiDocument());
    this.routes();
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

  /** Recovery finished: accept writes and report ready. */
  setReady(writer: PoolWriter): void {
    this.writer = writer;
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
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Closes every remaining connection. */
  close(): void {
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

  // ---- routing ---------------------------------------------------------

  private begin(res: HttpResponse, route: string): Exchange {
    this.inFlight++;
    return new Exchange(res, route, this);
  }

  private routes(): void {
    const app = this.app;
    app.post('/add', (res, req) => this.withBody(res, req, 'POST /add', true, (ex, body) => this.add(ex, body)));
    app.post('/query', (res, req) => this.withBody(res, req, 'POST /query', false, (ex, body) => this.query(ex, body)));

    app.get('/pools', (res, req) => {
      const query = req.getQuery();
      this.sync(res, req, 'GET /pools', (ex) => this.listPools(ex, query));
    });
    app.get('/pools/:poolId', (res, req) => {
      const id = req.getParameter(0);
      this.sync(res, req, 'GET /pools/{poolId}', (ex) => this.poolSummary(ex, id));
    });
    app.del('/pools/:poolId', (res, req) => {
      const id = req.getParameter(0);
      const authorized = this.authorized(req);
      const ex = this.begin(res, 'DELETE /pools/{poolId}');
      this.guard(ex, authorized, true, () => {
        const poolId = parsePoolIdText(id);
        ex.settle(this.gatedWrite(poolId, () => this.writer!.deletePool(poolId)), (existed) => {
          if (existed) ex.sendEmpty(NO_CONTENT);
          else ex.sendError(new PoolqError('pool_not_found', `Pool ${poolId} does not exist.`));
        });
      });
    });
    app.get('/pools/:poolId/quantiles', (res, req) => {
      const id = req.getParameter(0);
      const query = req.getQuery();
      this.sync(res, req, 'GET /pools/{poolId}/quantiles', (ex) => this.poolQuantiles(ex, id, query));
    });
    app.post('/pools/:poolId/values', (res, req) => {
      const id = req.getParameter(0);
      this.withBody(res, req, 'POST /pools/{poolId}/values', true, (ex, body) => {
        const poolId = parsePoolIdText(id);
        this.gate?.checkOwner(poolId);
        const values = this.parseLarge(body, (offload) => offload.parseValuesBody(body), () => checkValues(parseJson(body), 'body'));
        ex.settle(values, (parsed) => this.appendParsed(ex, { poolId, values: parsed }, true));
      });
    });

    if (this.clusterAdmin !== null) {
      registerClusterRoutes(app, this.clusterAdmin, {
        begin: (res, route) => this.begin(res, route),
        authorized: (req) => this.authorized(req),
        guard: (ex, authorized, writes, work) => this.guard(ex, authorized, writes, work),
        withBody: (res, req, route, handle, maxBytes) => this.withBody(res, req, route, true, handle, maxBytes),
        writer: () => this.writer!,
        maxImportBytes: this.deps.config.maxImportBytes,
      });
    }

    app.get('/healthz', (res) => {
      this.begin(res, 'GET /healthz').send(OK, '{"status":"ok"}');
    });
    app.get('/readyz', (res) => {
      const ex = this.begin(res, 'GET /readyz');
      if (this.state === 'ready') ex.send(OK, '{"status":"ready"}');
      else ex.sendError(unavailable(this.state === 'starting' ? 'poolq is recovering its data.' : 'poolq is shutting down.'));
    });
    app.get('/metrics', (res) => {
      const ex = this.begin(res, 'GET /metrics');
      this.deps.metrics.render().then(
        ({ contentType, body }) => ex.send(OK, body, contentType),
        (err: unknown) => ex.sendError(err),
      );
    });
    app.get('/openapi.json', (res) => {
      this.begin(res, 'GET /openapi.json').send(OK, this.openApiJson);
    });
    app.get('/docs', (res) => {
      const ex = this.begin(res, 'GET /docs');
      const docs = this.docsAssets();
      ex.send(OK, docs.page, 'text/html; charset=utf-8');
    });
    app.get('/docs/:asset', (res, req) => {
      const name = req.getParameter(0);
      const ex = this.begin(res, 'GET /docs/{asset}');
      const asset = this.docsAssets().files.get(name);
      if (asset === undefined) ex.sendError(new PoolqError('not_found', `No documentation asset named ${name}.`));
      else ex.send(OK, asset.body, asset.contentType, { 'cache-control': 'public, max-age=3600' });
    });

    // Known paths with a method they do not serve: 405 with Allow.
    const allowed: [string, string][] = [
      ['/add', 'POST'],
      ['/query', 'POST'],
      ['/pools', 'GET'],
      ['/pools/:poolId', 'GET, DELETE'],
      ['/pools/:poolId/quantiles', 'GET'],
      ['/pools/:poolId/values', 'POST'],
      ['/healthz', 'GET'],
      ['/readyz', 'GET'],
      ['/metrics', 'GET'],
      ['/openapi.json', 'GET'],
      ['/docs', 'GET'],
      ...(this.clusterAdmin === null ? [] : CLUSTER_ALLOWED),
    ];
    for (const [pattern, allow] of allowed) {
      app.any(pattern, (res, req) => {
        const method = req.getCaseSensitiveMethod();
        this.begin(res, 'other').sendError(
          new PoolqError('method_not_allowed', `${method} is not allowed on ${pattern.replace(/:(\w+)/, '{$1}')}; use ${allow}.`),
          { allow },
        );
      });
    }
    app.any('/*', (res, req) => {
      const url = req.getUrl();
      const method = req.getCaseSensitiveMethod();
      this.begin(res, 'other').sendError(new PoolqError('not_found', `No route for ${method} ${url}.`));
    });
  }

  /**
   * Runs a write to one pool through the cluster gate: refused (421, or 503
   * while its bucket moves) before it starts, and counted until it settles so
   * a bucket export waits for it.
   */
  private gatedWrite<T>(poolId: number, write: () => Awaitable<T>): Awaitable<T> {
    if (this.gate === null) return write();
    const release = this.gate.admitWrite(poolId);
    let result: Awaitable<T>;
    try {
      result = write();
    } catch (err) {
      release();
      throw err;
    }
    if (result instanceof Promise) void result.then(release, release);
    else release();
    return result;
  }

  private docsAssets(): DocsAssets {
    this.docs ??= loadDocsAssets();
    return this.docs;
  }

  /** Whether the request carries the configured bearer token (always true without --auth-token). */
  private authorized(req: HttpRequest): boolean {
    const expected = this.expectedAuthorization;
    if (expected === null) return true;
    const given = Buffer.from(req.getHeader('authorization'));
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /**
   * Rejects unauthenticated requests (401) and work that needs recovered data
   * (or a writer) with 503; returns false then.
   */
  private admit(ex: Exchange, authorized: boolean, writes: boolean): boolean {
    if (!authorized) {
      ex.sendError(new PoolqError('unauthorized', 'This endpoint needs the header Authorization: Bearer <token> (--auth-token).'), {
        'www-authenticate': 'Bearer',
      });
      return false;
    }
    if (this.state === 'ready' && (!writes || this.writer !== null)) return true;
    const close = this.state === 'stopping';
    ex.sendError(
      unavailable(this.state === 'starting' ? 'poolq is recovering its data; retry shortly.' : 'poolq is shutting down.'),
      { 'retry-after': '1' },
      close,
    );
    return false;
  }

  private guard(ex: Exchange, authorized: boolean, writes: boolean, work: () => void): void {
    if (!this.admit(ex, authorized, writes)) return;
    try {
      work();
    } catch (err) {
      ex.sendError(err);
    }
  }

  private sync(res: HttpResponse, req: HttpRequest, route: string, work: (ex: Exchange) => void): void {
    const authorized = this.authorized(req);
    const ex = this.begin(res, route);
    inUwsCallback(res, () => this.guard(ex, authorized, false, () => work(ex)));
  }

  private withBody(
    res: HttpResponse,
    req: HttpRequest,
    route: string,
    writes: boolean,
    handle: (ex: Exchange, body: Buffer) => void,
    /** A larger limit for bulk bodies read whole on the event loop (imports, --max-import); they never go to a worker. */
    bulkMaxBytes?: number,
  ): void {
    const contentLength = req.getHeader('content-length');
    const authorized = this.authorized(req);
    const ex = this.begin(res, route);
    if (!this.admit(ex, authorized, writes)) return;
    const max = bulkMaxBytes ?? this.deps.config.maxBodyBytes;
    const shared = this.deps.offload !== null && bulkMaxBytes === undefined ? this.deps.config.offloadParseBytes : Infinity;
    readBody(res, contentLength, max, shared, this.bodyBuffers, (result) => {
      if (!result.ok) {
        // We did not read the body, so the connection cannot be reused: close it.
        const err =
          result.reason === 'too_large'
            ? new PoolqError('payload_too_large', `The request body exceeds the ${max}-byte limit (${bulkMaxBytes === undefined ? '--max-body' : '--max-import'}).`)
            : new PoolqError('invalid_request', 'The content-length header is not a valid length.', 'content-length');
        ex.sendError(err, undefined, true);
        return;
      }
      try {
        handle(ex, result.body);
      } catch (err) {
        ex.sendError(err);
      }
    });
  }

  // ---- handlers --------------------------------------------------------

  private add(ex: Exchange, body: Buffer): void {
    const request = this.parseLarge(body, (offload) => offload.parseAddBody(body), () => parseAddRequest(parseJson(body)));
    ex.settle(request, (parsed) => this.appendParsed(ex, parsed, false));
  }

  /**
   * Parses a body inline, or on a worker when it is large (JSON.parse of 1e6
   * numbers holds a thread ~100 ms). The body's recycled shared buffer is
   * handed back once the worker is done with it.
   */
  private parseLarge<T>(body: Buffer, onWorker: (offload: Offload) => Promise<T>, inline: () => T): T | Promise<T> {
    const offload = this.deps.offload;
    if (offload === null || body.length < this.deps.config.offloadParseBytes) return inline();
    const parsed = onWorker(offload);
    void parsed.finally(() => this.bodyBuffers.give(body.buffer)).catch(() => {});
    return parsed;
  }

  /** Sorts (on a worker when large), logs and applies an append, then replies. */
  private appendParsed(ex: Exchange, request: AddRequest, resourceStyle: boolean): void {
    const { poolId, values } = request;
    const offload = this.deps.offload;
    const appended = this.gatedWrite(poolId, (): Awaitable<AppendOutcome> => {
      const sorted =
        offload !== null && values.length >= this.deps.config.offloadSortValues
          ? offload.sortBatch(values)
          : this.deps.engine.sortBatch(values);
      return sorted instanceof Promise ? sorted.then((run) => this.writer!.append(poolId, run)) : this.writer!.append(poolId, sorted);
    });
    ex.settle(appended, (outcome) => {
      if (!resourceStyle) ex.send(OK, outcome.created ? INSERTED : APPENDED);
      else if (outcome.created) ex.send(CREATED, `{"status":"inserted","count":${outcome.count}}`);
      else ex.send(OK, `{"status":"appended","count":${outcome.count}}`);
    });
  }

  private query(ex: Exchange, body: Buffer): void {
    const request = parseQueryBodyFast(body) ?? parseQueryRequest(parseJson(body));
    this.gate?.checkOwner(request.poolId);
    const engine = this.deps.engine;
    const values = engine.quantiles(request.poolId, request.percentiles, request.method);
    const count = engine.countOf(request.poolId)!;
    if (request.many) ex.send(OK, `{"quantiles":[${values.map(jsonNumber).join(',')}],"count":${count}}`);
    else ex.send(OK, `{"quantile":${jsonNumber(values[0])},"count":${count}}`);
  }

  private listPools(ex: Exchange, query: string): void {
    const { limit, after } = parseListQuery(new URLSearchParams(query));
    const page = this.clusterAdmin === null ? this.deps.engine.listPools(after, limit) : this.clusterAdmin.listOwnedPools(after, limit);
    ex.send(OK, JSON.stringify(page));
  }

  private poolSummary(ex: Exchange, id: string): void {
    const poolId = parsePoolIdText(id);
    this.gate?.checkOwner(poolId);
    const s = this.deps.engine.summary(poolId);
    ex.send(OK, `{"poolId":${s.poolId},"count":${s.count},"min":${jsonNumber(s.min)},"max":${jsonNumber(s.max)}}`);
  }

  private poolQuantiles(ex: Exchange, id: string, query: string): void {
    const poolId = parsePoolIdText(id);
    this.gate?.checkOwner(poolId);
    const params = new URLSearchParams(query);
    const percentiles = parsePercentileQuery(params.get('p'));
    const method = checkMethod(params.get('method') ?? undefined);
    const engine = this.deps.engine;
    const values = engine.quantiles(poolId, percentiles, method);
    const items = percentiles.map((p, i) => `{"percentile":${jsonNumber(p)},"value":${jsonNumber(values[i])}}`);
    ex.send(OK, `{"poolId":${poolId},"count":${engine.countOf(poolId)},"method":"${method}","quantiles":[${items.join(',')}]}`);
  }
}
