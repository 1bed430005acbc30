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
import type { PoolWriter } from '../storage/pool-writer.js';
import type { Offload } from '../workers/offload.js';
import { BodyBufferPool } from './body-buffers.js';
import { readBody } from './body-reader.js';
import { parseQueryBodyFast } from './bulk-parse.js';
import { parseHistogramQuery, parseRankQuery } from '../protocol/distribution-query.js';
import { parseImportQuery } from '../protocol/import-format.js';
import { loadDashboardAssets, type DashboardAssets } from './dashboard-assets.js';
import { loadDocsAssets, type DocsAssets } from './docs-page.js';
import { Exchange, inUwsCallback, jsonNumber, type ExchangeHooks } from './exchange.js';
import type { ImportJobs } from './import-jobs.js';
import { spoolBody } from './import-upload.js';
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
  imports: ImportJobs;
}

const INSERTED = '"Inserted"';
const APPENDED = '"Appended"';
const OK = '200 OK';
const CREATED = '201 Created';
const NO_CONTENT = '204 No Content';
const ACCEPTED = '202 Accepted';

export class PoolqServer implements ExchangeHooks {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  private state: ServerState = 'starting';
  private writer: PoolWriter | null = null;
  private inFlight = 0;
  private drained: (() => void) | null = null;
  private readonly openApiJson: string;
  private docs: DocsAssets | null = null;
  private dashboard: DashboardAssets | null = null;
  private readonly bodyBuffers = new BodyBufferPool();
  private readonly expectedAuthorization: Buffer | null;

  constructor(private readonly deps: ServerDeps) {
    this.app = deps.uws.App();
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
        ex.settle(this.writer!.deletePool(poolId), (existed) => {
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
        const values = this.parseLarge(
          body,
          (offload) => offload.parseValuesBody(body),
          () => checkValues(parseJson(body), 'body'),
        );
        ex.settle(values, (parsed) => this.appendParsed(ex, { poolId, values: parsed }, true));
      });
    });
    app.get('/pools/:poolId/histogram', (res, req) => {
      const id = req.getParameter(0);
      const query = req.getQuery();
      this.sync(res, req, 'GET /pools/{poolId}/histogram', (ex) => this.poolHistogram(ex, id, query));
    });
    app.get('/pools/:poolId/rank', (res, req) => {
      const id = req.getParameter(0);
      const query = req.getQuery();
      this.sync(res, req, 'GET /pools/{poolId}/rank', (ex) => this.poolRank(ex, id, query));
    });
    app.post('/imports', (res, req) => this.startImport(res, req));
    app.get('/imports/:jobId', (res, req) => {
      const jobId = req.getParameter(0);
      this.sync(res, req, 'GET /imports/{jobId}', (ex) => {
        const job = this.deps.imports.get(jobId);
        if (job === undefined)
          ex.sendError(
            new PoolqError('not_found', `No import job ${JSON.stringify(jobId)} (jobs are forgotten when the server restarts).`),
          );
        else ex.send(OK, JSON.stringify(job));
      });
    });
    app.get('/', (res) => {
      const index = this.dashboardAssets().index;
      this.begin(res, 'GET /').send(OK, index.body, index.contentType);
    });
    app.get('/dashboard/:asset', (res, req) => {
      const name = req.getParameter(0);
      const ex = this.begin(res, 'GET /dashboard/{asset}');
      const asset = this.dashboardAssets().files.get(name);
      if (asset === undefined) ex.sendError(new PoolqError('not_found', `No dashboard file named ${name}.`));
      else ex.send(OK, asset.body, asset.contentType, { 'cache-control': 'no-cache' });
    });

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
      ['/pools/:poolId/histogram', 'GET'],
      ['/pools/:poolId/rank', 'GET'],
      ['/imports', 'POST'],
      ['/imports/:jobId', 'GET'],
      ['/', 'GET'],
      ['/healthz', 'GET'],
      ['/readyz', 'GET'],
      ['/metrics', 'GET'],
      ['/openapi.json', 'GET'],
      ['/docs', 'GET'],
    ];
    for (const [pattern, allow] of allowed) {
      app.any(pattern, (res, req) => {
        const method = req.getCaseSensitiveMethod();
        this.begin(res, 'other').sendError(
          new PoolqError('method_not_allowed', `${method} is not allowed on ${pattern.replace(/:(\w+)/g, '{$1}')}; use ${allow}.`),
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

  private dashboardAssets(): DashboardAssets {
    this.dashboard ??= loadDashboardAssets();
    return this.dashboard;
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
  ): void {
    const contentLength = req.getHeader('content-length');
    const authorized = this.authorized(req);
    const ex = this.begin(res, route);
    if (!this.admit(ex, authorized, writes)) return;
    const max = this.deps.config.maxBodyBytes;
    const shared = this.deps.offload !== null ? this.deps.config.offloadParseBytes : Infinity;
    readBody(res, contentLength, max, shared, this.bodyBuffers, (result) => {
      if (!result.ok) {
        // We did not read the body, so the connection cannot be reused: close it.
        const err =
          result.reason === 'too_large'
            ? new PoolqError('payload_too_large', `The request body exceeds the ${max}-byte limit (--max-body).`)
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
    const request = this.parseLarge(
      body,
      (offload) => offload.parseAddBody(body),
      () => parseAddRequest(parseJson(body)),
    );
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
    const sorted =
      offload !== null && values.length >= this.deps.config.offloadSortValues
        ? offload.sortBatch(values)
        : this.deps.engine.sortBatch(values);
    ex.settle(sorted, (run) => {
      ex.settle(this.writer!.append(poolId, run), (outcome) => {
        if (!resourceStyle) ex.send(OK, outcome.created ? INSERTED : APPENDED);
        else if (outcome.created) ex.send(CREATED, `{"status":"inserted","count":${outcome.count}}`);
        else ex.send(OK, `{"status":"appended","count":${outcome.count}}`);
      });
    });
  }

  private query(ex: Exchange, body: Buffer): void {
    const request = parseQueryBodyFast(body) ?? parseQueryRequest(parseJson(body));
    const engine = this.deps.engine;
    const values = engine.quantiles(request.poolId, request.percentiles, request.method);
    const count = engine.countOf(request.poolId)!;
    if (request.many) ex.send(OK, `{"quantiles":[${values.map(jsonNumber).join(',')}],"count":${count}}`);
    else ex.send(OK, `{"quantile":${jsonNumber(values[0])},"count":${count}}`);
  }

  private listPools(ex: Exchange, query: string): void {
    const { limit, after } = parseListQuery(new URLSearchParams(query));
    const page = this.deps.engine.listPools(after, limit);
    ex.send(OK, JSON.stringify(page));
  }

  private poolSummary(ex: Exchange, id: string): void {
    const s = this.deps.engine.summary(parsePoolIdText(id));
    ex.send(OK, `{"poolId":${s.poolId},"count":${s.count},"min":${jsonNumber(s.min)},"max":${jsonNumber(s.max)}}`);
  }

  private poolHistogram(ex: Exchange, id: string, query: string): void {
    const poolId = parsePoolIdText(id);
    const { bins, range } = parseHistogramQuery(new URLSearchParams(query));
    const h = this.deps.engine.histogram(poolId, bins, range);
    const items = h.bins.map((b) => `{"lo":${jsonNumber(b.lo)},"hi":${jsonNumber(b.hi)},"count":${b.count}}`);
    ex.send(
      OK,
      `{"poolId":${poolId},"count":${h.count},"min":${jsonNumber(h.min)},"max":${jsonNumber(h.max)},"below":${h.below},"above":${h.above},"bins":[${items.join(',')}]}`,
    );
  }

  private poolRank(ex: Exchange, id: string, query: string): void {
    const r = this.deps.engine.rank(parsePoolIdText(id), parseRankQuery(new URLSearchParams(query)));
    ex.send(OK, `{"poolId":${r.poolId},"count":${r.count},"below":${r.below},"equal":${r.equal},"fraction":${jsonNumber(r.fraction)}}`);
  }

  /**
   * POST /imports: the query is checked before a byte of the body is read
   * (a refusal then closes the connection, as for any unread body); the body
   * streams to a spool file under the data directory; 202 names the job.
   */
  private startImport(res: HttpResponse, req: HttpRequest): void {
    const query = req.getQuery();
    const contentLength = req.getHeader('content-length');
    const authorized = this.authorized(req);
    const ex = this.begin(res, 'POST /imports');
    if (!this.admit(ex, authorized, true)) return;
    let options;
    try {
      options = parseImportQuery(new URLSearchParams(query));
    } catch (err) {
      ex.sendError(err, undefined, true);
      return;
    }
    const max = this.deps.config.maxImportBytes;
    const imports = this.deps.imports;
    const { jobId, file } = imports.reserve();
    spoolBody(ex, contentLength, max, file, (result) => {
      if (!result.ok) {
        const err =
          result.reason === 'too_large'
            ? new PoolqError('payload_too_large', `The import exceeds the ${max}-byte limit (--max-import).`)
            : result.reason === 'bad_length'
              ? new PoolqError('invalid_request', 'The content-length header is not a valid length.', 'content-length')
              : unavailable(`The import could not be written to the data directory: ${result.message}`);
        ex.sendError(err, undefined, true);
        return;
      }
      const { view } = imports.submit(jobId, file, options, result.bytes, true);
      ex.send(ACCEPTED, JSON.stringify({ jobId, state: view.state }), undefined, { location: `/imports/${jobId}` });
    });
  }

  private poolQuantiles(ex: Exchange, id: string, query: string): void {
    const poolId = parsePoolIdText(id);
    const params = new URLSearchParams(query);
    const percentiles = parsePercentileQuery(params.get('p'));
    const method = checkMethod(params.get('method') ?? undefined);
    const engine = this.deps.engine;
    const values = engine.quantiles(poolId, percentiles, method);
    const items = percentiles.map((p, i) => `{"percentile":${jsonNumber(p)},"value":${jsonNumber(values[i])}}`);
    ex.send(OK, `{"poolId":${poolId},"count":${engine.countOf(poolId)},"method":"${method}","quantiles":[${items.join(',')}]}`);
  }
}
