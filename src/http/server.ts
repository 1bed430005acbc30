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
import { discardBodyThen, readBody } from './body-reader.js';
import { parseQueryBodyFast } from './bulk-parse.js';
import { loadDocsAssets, type DocsAssets } from './docs-page.js';
import { Exchange, inUwsCallback, jsonNumber, type ExchangeHooks } from './exchange.js';
import { IngestRoutes, isOctetStream } from './ingest-routes.js';
import { ingestWriter, type IngestWriter } from './ingest-writer.js';
import { checkIdempotencyKey } from '../protocol/idempotency-key.js';
import { echo, framingError } from './request-framing.js';
import { SubscriptionHub } from './subscription-hub.js';
import { PUSH_LIMIT_BYTES, WsServer, type PoolGuard } from './ws-server.js';
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
  checkSingleParams,
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
  /** Refuses pools this instance does not serve (a cluster's 421); applied to /ws requests. */
  poolGuard?: PoolGuard;
}

/** /query bodies are a few numbers; a limit of their own keeps a huge nested body from holding the event loop in JSON.parse. */
export const MAX_QUERY_BODY_BYTES = 64 << 10;

const INSERTED = '"Inserted"';
const APPENDED = '"Appended"';
const OK = '200 OK';
const CREATED = '201 Created';
const NO_CONTENT = '204 No Content';

export class PoolqServer implements ExchangeHooks {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | null = null;
  private state: ServerState = 'starting';
  private writer: IngestWriter | null = null;
  private inFlight = 0;
  private drained: (() => void) | null = null;
  private readonly openApiJson: string;
  private docs: DocsAssets | null = null;
  private readonly bodyBuffers = new BodyBufferPool();
  private readonly expectedAuthorization: Buffer | null;
  readonly hub: SubscriptionHub;
  private readonly ws: WsServer;
  private readonly ingest: IngestRoutes;

  constructor(private readonly deps: ServerDeps) {
    this.app = deps.uws.App();
    this.expectedAuthorization = deps.config.authToken === null ? null : Buffer.from(`Bearer ${deps.config.authToken}`);
    this.openApiJson = JSON.stringify(buildOpenApiDocument());
    this.hub = new SubscriptionHub(deps.engine, { pushLimitBytes: PUSH_LIMIT_BYTES });
    this.ws = new WsServer(
      {
        ...deps,
        hub: this.hub,
        writer: () => this.writer,
        state: () => this.state,
      },
      this.app,
    );
    deps.metrics.attachWebSockets({
      connections: () => this.ws.connections,
      bufferedBytes: () => this.ws.bufferedBytes,
      pushes: () => this.hub.stats().pushes,
      skippedPushes: () => this.hub.stats().skipped,
    });
    this.ingest = new IngestRoutes({
      config: deps.config,
      engine: deps.engine,
      offload: deps.offload,
      bodyBuffers: this.bodyBuffers,
      writer: () => this.writer!,
      refuseBody: (ex, reason, close) => this.refuseBody(ex, reason, close),
    });
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
    this.writer = ingestWriter(writer, (poolId) => this.hub.poolChanged(poolId));
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
    // WebSocket adds already sent to storage are answered before the sockets close.
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

  // ---- routing ---------------------------------------------------------

  private begin(res: HttpResponse, route: string, head = false): Exchange {
    this.inFlight++;
    const ex = new Exchange(res, head ? route.replace(/^GET/, 'HEAD') : route, this);
    ex.head = head;
    return ex;
  }

  private routes(): void {
    const app = this.app;
    // Every GET route also answers HEAD (RFC 9110 §9.3.2): same status and headers, no body.
    const get = (pattern: string, handler: (res: HttpResponse, req: HttpRequest, head: boolean) => void) => {
      app.get(pattern, (res, req) => handler(res, req, false));
      app.head(pattern, (res, req) => handler(res, req, true));
    };
    app.post('/add', (res, req) => {
      const key = req.getHeader('idempotency-key');
      this.withBody(res, req, 'POST /add', true, (ex, body) => this.add(ex, body, this.keyOf(key)));
    });
    app.post('/query', (res, req) =>
      this.withBody(res, req, 'POST /query', false, (ex, body) => this.query(ex, body), Math.min(MAX_QUERY_BODY_BYTES, this.deps.config.maxBodyBytes)),
    );
    app.post('/batch', (res, req) => {
      const key = req.getHeader('idempotency-key');
      const contentLength = req.getHeader('content-length');
        const framing = framingError(req);
      const authorized = this.authorized(req);
      const ex = this.begin(res, 'POST /batch');
      if (!this.admissible(authorized, true)) {
        discardBodyThen(res, contentLength, () => this.admit(ex, authorized, true));
        return;
      }
      if (framing !== null) return ex.sendError(framing, undefined, true); // cannot tell where the body ends
      try {
        this.ingest.batch(ex, res, contentLength, this.keyOf(key));
      } catch (err) {
        discardBodyThen(res, contentLength, () => ex.sendError(err));
      }
    });

    get('/pools', (res, req, head) => {
      const query = req.getQuery();
      this.sync(res, req, 'GET /pools', (ex) => this.listPools(ex, query), head);
    });
    get('/pools/:poolId', (res, req, head) => {
      const id = req.getParameter(0);
      this.sync(res, req, 'GET /pools/{poolId}', (ex) => this.poolSummary(ex, id), head);
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
    get('/pools/:poolId/quantiles', (res, req, head) => {
      const id = req.getParameter(0);
      const query = req.getQuery();
      this.sync(res, req, 'GET /pools/{poolId}/quantiles', (ex) => this.poolQuantiles(ex, id, query), head);
    });
    app.post('/pools/:poolId/values', (res, req) => {
      const id = req.getParameter(0);
      const key = req.getHeader('idempotency-key');
      if (isOctetStream(req.getHeader('content-type'))) {
        const contentLength = req.getHeader('content-length');
        const framing = framingError(req);
        const authorized = this.authorized(req);
        const ex = this.begin(res, 'POST /pools/{poolId}/values');
        if (!this.admissible(authorized, true)) {
          discardBodyThen(res, contentLength, () => this.admit(ex, authorized, true));
          return;
        }
        if (framing !== null) return ex.sendError(framing, undefined, true); // cannot tell where the body ends
        try {
          this.ingest.binaryValues(ex, res, contentLength, parsePoolIdText(id), this.keyOf(key));
        } catch (err) {
          discardBodyThen(res, contentLength, () => ex.sendError(err));
        }
        return;
      }
      this.withBody(res, req, 'POST /pools/{poolId}/values', true, (ex, body) => {
        const poolId = parsePoolIdText(id);
        const values = this.parseLarge(body, (offload) => offload.parseValuesBody(body), () => checkValues(parseJson(body), 'body'));
        ex.settle(values, (parsed) => this.appendParsed(ex, { poolId, values: parsed }, true, this.keyOf(key)));
      });
    });

    get('/healthz', (res, _req, head) => {
      this.begin(res, 'GET /healthz', head).send(OK, '{"status":"ok"}');
    });
    get('/readyz', (res, _req, head) => {
      const ex = this.begin(res, 'GET /readyz', head);
      if (this.state === 'ready') ex.send(OK, '{"status":"ready"}');
      else ex.sendError(unavailable(this.state === 'starting' ? 'poolq is recovering its data.' : 'poolq is shutting down.'));
    });
    get('/metrics', (res, _req, head) => {
      const ex = this.begin(res, 'GET /metrics', head);
      this.deps.metrics.render().then(
        ({ contentType, body }) => ex.send(OK, body, contentType),
        (err: unknown) => ex.sendError(err),
      );
    });
    get('/openapi.json', (res, _req, head) => {
      this.begin(res, 'GET /openapi.json', head).send(OK, this.openApiJson);
    });
    get('/docs', (res, _req, head) => {
      const ex = this.begin(res, 'GET /docs', head);
      const docs = this.docsAssets();
      ex.send(OK, docs.page, 'text/html; charset=utf-8');
    });
    get('/docs/:asset', (res, req, head) => {
      const name = req.getParameter(0);
      const ex = this.begin(res, 'GET /docs/{asset}', head);
      const asset = this.docsAssets().files.get(name);
      if (asset === undefined) ex.sendError(new PoolqError('not_found', `No documentation asset named ${echo(name)}.`));
      else ex.send(OK, asset.body, asset.contentType, { 'cache-control': 'public, max-age=3600' });
    });

    // Known paths with a method they do not serve: 405 with Allow.
    const allowed: [string, string][] = [
      ['/add', 'POST'],
      ['/query', 'POST'],
      ['/batch', 'POST'],
      ['/pools', 'GET, HEAD'],
      ['/pools/:poolId', 'GET, HEAD, DELETE'],
      ['/pools/:poolId/quantiles', 'GET, HEAD'],
      ['/pools/:poolId/values', 'POST'],
      ['/healthz', 'GET, HEAD'],
      ['/readyz', 'GET, HEAD'],
      ['/metrics', 'GET, HEAD'],
      ['/openapi.json', 'GET, HEAD'],
      ['/docs', 'GET, HEAD'],
    ];
    for (const [pattern, allow] of allowed) {
      app.any(pattern, (res, req) => {
        const method = req.getCaseSensitiveMethod();
        this.begin(res, 'other').sendError(
          new PoolqError('method_not_allowed', `${method} is not allowed on ${pattern.replace(':poolId', '{poolId}')}; use ${allow}.`),
          { allow },
        );
      });
    }
    app.any('/*', (res, req) => {
      const url = req.getUrl();
      const method = req.getCaseSensitiveMethod();
      this.begin(res, 'other', method === 'HEAD').sendError(new PoolqError('not_found', `No route for ${method} ${echo(url, 200)}.`));
    });
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

  private admissible(authorized: boolean, writes: boolean): boolean {
    return authorized && this.state === 'ready' && (!writes || this.writer !== null);
  }

  private guard(ex: Exchange, authorized: boolean, writes: boolean, work: () => void): void {
    if (!this.admit(ex, authorized, writes)) return;
    try {
      work();
    } catch (err) {
      ex.sendError(err);
    }
  }

  private sync(res: HttpResponse, req: HttpRequest, route: string, work: (ex: Exchange) => void, head = false): void {
    const authorized = this.authorized(req);
    const ex = this.begin(res, route, head);
    inUwsCallback(res, () => this.guard(ex, authorized, false, () => work(ex)));
  }

  private withBody(
    res: HttpResponse,
    req: HttpRequest,
    route: string,
    writes: boolean,
    handle: (ex: Exchange, body: Buffer) => void,
    max = this.deps.config.maxBodyBytes,
  ): void {
    const contentLength = req.getHeader('content-length');
    const framing = framingError(req);
    const authorized = this.authorized(req);
    const ex = this.begin(res, route);
    if (!this.admissible(authorized, writes)) {
      discardBodyThen(res, contentLength, () => this.admit(ex, authorized, writes));
      return;
    }
    if (framing !== null) return ex.sendError(framing, undefined, true); // cannot tell where the body ends
    const shared = this.deps.offload !== null ? this.deps.config.offloadParseBytes : Infinity;
    readBody(res, contentLength, max, shared, this.bodyBuffers, (result) => {
      if (!result.ok) {
        this.refuseBody(ex, result.reason, result.close, max);
        return;
      }
      try {
        handle(ex, result.body);
      } catch (err) {
        ex.sendError(err);
      }
    });
  }

  /** A body refused before it was read: with a content-length, uWS reads and discards the rest after the reply (body-reader.ts). */
  private refuseBody(ex: Exchange, reason: 'too_large' | 'bad_length', close: boolean, max = this.deps.config.maxBodyBytes): void {
    const err =
      reason === 'too_large'
        ? new PoolqError('payload_too_large', `The request body exceeds the ${max}-byte limit${max === this.deps.config.maxBodyBytes ? ' (--max-body)' : ' of this endpoint'}.`)
        : new PoolqError('invalid_request', 'The content-length header is not a valid length.', 'content-length');
    ex.sendError(err, undefined, close);
  }

  /** The Idempotency-Key header, checked ('' when absent). */
  private keyOf(header: string): string | null {
    return header === '' ? null : checkIdempotencyKey(header, 'Idempotency-Key');
  }

  // ---- handlers --------------------------------------------------------

  private add(ex: Exchange, body: Buffer, key: string | null): void {
    const request = this.parseLarge(body, (offload) => offload.parseAddBody(body), () => parseAddRequest(parseJson(body)));
    ex.settle(request, (parsed) => this.appendParsed(ex, parsed, false, key));
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
  private appendParsed(ex: Exchange, request: AddRequest, resourceStyle: boolean, key: string | null): void {
    const { poolId, values } = request;
    const offload = this.deps.offload;
    const sorted =
      offload !== null && values.length >= this.deps.config.offloadSortValues
        ? offload.sortBatch(values)
        : this.deps.engine.sortBatch(values);
    ex.settle(sorted, (run) => {
      ex.settle(this.writer!.append(poolId, run, key), (outcome) => {
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

  private poolQuantiles(ex: Exchange, id: string, query: string): void {
    const poolId = parsePoolIdText(id);
    const params = new URLSearchParams(query);
    checkSingleParams(params, ['p', 'method']);
    const percentiles = parsePercentileQuery(params.get('p'));
    const method = checkMethod(params.get('method') ?? undefined);
    const engine = this.deps.engine;
    const values = engine.quantiles(poolId, percentiles, method);
    const items = percentiles.map((p, i) => `{"percentile":${jsonNumber(p)},"value":${jsonNumber(values[i])}}`);
    ex.send(OK, `{"poolId":${poolId},"count":${engine.countOf(poolId)},"method":"${method}","quantiles":[${items.join(',')}]}`);
  }
}
