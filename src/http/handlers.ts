// The code behind each operation of the route table (src/protocol/routes.ts),
// keyed by operationId. The router has already authenticated the request,
// checked readiness, read the body within its limit and parsed a path pool id
// into `input.poolId`; a handler parses what is its own (body, query) with the
// src/protocol parsers, does the work and writes the reply.

import type { QuantileEngine } from '../core/engine.js';
import { PoolqError, poolNotFound, unavailable } from '../core/errors.js';
import { parseQueryBodyFast } from '../protocol/bulk-parse.js';
import type { RequestOffload } from '../protocol/offload.js';
import { checkIdempotencyKey } from '../protocol/idempotency-key.js';
import {
  checkMethod,
  checkSingleParams,
  checkValues,
  parseAddRequest,
  parseJson,
  parseListQuery,
  parsePercentileQuery,
  parsePoolsQuery,
  parseQueryRequest,
  parseRetentionRequest,
  parseWindowQuery,
  type AddRequest,
  type QueryRequest,
  type UnionQueryRequest,
} from '../protocol/validate.js';
import type { BodyBufferPool } from './body-buffers.js';
import { parseHistogramQuery, parseRankQuery } from '../protocol/distribution-query.js';
import { loadDashboardAssets, type DashboardAssets } from './dashboard-assets.js';
import { loadDocsAssets, type DocsAssets } from './docs-page.js';
import { createImportHandlers, type ImportHandlerContext } from './import-handlers.js';
import { jsonNumber, type Exchange } from './exchange.js';
import { isOctetStream, type IngestRoutes } from './ingest-routes.js';
import type { IngestWriter } from './ingest-writer.js';
import type { Metrics } from './metrics.js';
import type { Handler, Handlers, RouteInput } from './router.js';
import type { PoolWriter } from '../storage/pool-writer.js';
import type { ClusterAdmin } from './cluster-admin.js';
import { createClusterHandlers } from './cluster-handlers.js';

export type ServerState = 'starting' | 'ready' | 'stopping';

export interface HandlerContext extends ImportHandlerContext {
  /** The octet-stream and NDJSON bodies. */
  ingest: IngestRoutes;
  engine: QuantileEngine;
  offload: RequestOffload | null;
  metrics: Metrics;
  bodyBuffers: BodyBufferPool;
  /** Bodies of at least this many bytes are parsed on a worker, batches of at least offloadSortValues sorted there. */
  offloadParseBytes: number;
  offloadSortValues: number;
  openApiJson: string;
  /** The store, once recovery finished (routes that need data run only then). */
  writer(): IngestWriter;
  state(): ServerState;
  /** Cluster mode: the /cluster work (ClusterAdmin) and the store it writes to without the gate; null otherwise. */
  cluster: ClusterAdmin | null;
  storeWriter(): PoolWriter;
  /** Cluster mode: refuses (421) a query over several pools unless this shard owns every one; the router's pool hook sees one id. */
  checkPools(poolIds: readonly number[]): void;
}

const OK = '200 OK';
const CREATED = '201 Created';
const NO_CONTENT = '204 No Content';
const INSERTED = '"Inserted"';
const APPENDED = '"Appended"';

/** Typed at its definition, stored untyped in the map (the router passes parse's result to handle). */
const handler = <T>(h: Handler<T>): Handler => h as Handler;

/** The request's Idempotency-Key header, checked (null when absent). */
function keyOf(input: RouteInput): string | null {
  const header = input.headers['idempotency-key'] ?? '';
  return header === '' ? null : checkIdempotencyKey(header, 'Idempotency-Key');
}

/** `?windowSeconds=W` of a POST /pools/{poolId}/values (checked even when unused): W when this request creates the pool, else null. */
function windowOnCreationOf(engine: QuantileEngine, input: RouteInput): number | null {
  const window = parseWindowQuery(new URLSearchParams(input.query).get('windowSeconds'));
  return window !== null && !engine.hasPool(input.poolId) ? window : null;
}

export function createHandlers(ctx: HandlerContext): Handlers {
  const { engine, offload } = ctx;
  let docs: DocsAssets | null = null;
  const docsAssets = (): DocsAssets => (docs ??= loadDocsAssets());
  let dashboard: DashboardAssets | null = null;
  const dashboardAssets = (): DashboardAssets => (dashboard ??= loadDashboardAssets());

  /**
   * Parses a body inline, or on a worker when it is large (JSON.parse of 1e6
   * numbers holds a thread ~100 ms). The body's recycled shared buffer is
   * handed back once the worker is done with it.
   */
  function parseLarge<T>(body: Buffer, onWorker: (offload: RequestOffload) => Promise<T>, inline: () => T): T | Promise<T> {
    if (offload === null || body.length < ctx.offloadParseBytes) return inline();
    const parsed = onWorker(offload);
    void parsed.finally(() => ctx.bodyBuffers.give(body.buffer)).catch(() => {});
    return parsed;
  }

  const windowOnCreation = (input: RouteInput): number | null => windowOnCreationOf(engine, input);

  /** Sorts (on a worker when large), logs and applies an append, then replies. */
  function append(
    ex: Exchange,
    poolId: number,
    values: Float64Array,
    key: string | null,
    reply: (created: boolean, count: number) => void,
  ): void {
    const sorted = offload !== null && values.length >= ctx.offloadSortValues ? offload.sortBatch(values) : engine.sortBatch(values);
    ex.settle(sorted, (run) => {
      ex.settle(ctx.writer().append(poolId, run, key), (outcome) => reply(outcome.created, outcome.count));
    });
  }

  return {
    add: handler<AddRequest>({
      parse: (body) =>
        parseLarge(
          body,
          (o) => o.parseAddBody(body),
          () => parseAddRequest(parseJson(body)),
        ),
      handle: (ex, input, request) =>
        append(ex, request.poolId, request.values, keyOf(input), (created) => ex.send(OK, created ? INSERTED : APPENDED)),
    }),

    batch: handler({
      parse: () => {
        throw new Error('POST /batch bodies are streamed (stream)');
      },
      stream: (ex, res, input, contentLength, guard) => {
        ctx.ingest.batch(ex, res, contentLength, keyOf(input), guard);
        return true;
      },
      handle: () => {},
    }),

    query: handler<QueryRequest | UnionQueryRequest>({
      parse: (body) => parseQueryBodyFast(body) ?? parseQueryRequest(parseJson(body)),
      handle: (ex, _input, request) => {
        if ('poolIds' in request) ctx.checkPools(request.poolIds);
        const { quantiles, count } =
          'poolIds' in request
            ? engine.quantilesAcross(request.poolIds, request.percentiles, request.method)
            : engine.quantilesWithCount(request.poolId, request.percentiles, request.method);
        if (request.many) ex.send(OK, `{"quantiles":[${quantiles.map(jsonNumber).join(',')}],"count":${count}}`);
        else ex.send(OK, `{"quantile":${jsonNumber(quantiles[0])},"count":${count}}`);
      },
    }),

    listPools: handler({
      handle: (ex, input) => {
        const { limit, after } = parseListQuery(new URLSearchParams(input.query)); // each parameter at most once
        // a shard lists the pools it owns: during a move, a pool is listed by exactly one shard
        const page = ctx.cluster === null ? engine.listPools(after, limit) : ctx.cluster.listOwnedPools(after, limit);
        ex.send(OK, JSON.stringify(page));
      },
    }),

    getPool: handler({
      handle: (ex, input) => {
        const s = engine.summary(input.poolId);
        ex.send(
          OK,
          `{"poolId":${s.poolId},"count":${s.count},"min":${jsonNumber(s.min)},"max":${jsonNumber(s.max)},"windowSeconds":${s.windowSeconds}}`,
        );
      },
    }),

    deletePool: handler({
      handle: (ex, input) => {
        const poolId = input.poolId;
        ex.settle(ctx.writer().deletePool(poolId), (existed) => {
          if (existed) ex.sendEmpty(NO_CONTENT);
          else ex.sendError(new PoolqError('pool_not_found', `Pool ${poolId} does not exist.`));
        });
      },
    }),

    getQuantiles: handler({
      handle: (ex, input) => {
        const poolId = input.poolId;
        const params = new URLSearchParams(input.query);
        checkSingleParams(params, ['p', 'method']);
        const percentiles = parsePercentileQuery(params.get('p'));
        const method = checkMethod(params.get('method') ?? undefined);
        const { quantiles, count } = engine.quantilesWithCount(poolId, percentiles, method);
        const items = percentiles.map((p, i) => `{"percentile":${jsonNumber(p)},"value":${jsonNumber(quantiles[i])}}`);
        ex.send(OK, `{"poolId":${poolId},"count":${count},"method":"${method}","quantiles":[${items.join(',')}]}`);
      },
    }),

    getUnionQuantiles: handler({
      handle: (ex, input) => {
        const params = new URLSearchParams(input.query);
        const pools = parsePoolsQuery(params.get('pools'));
        const percentiles = parsePercentileQuery(params.get('p'));
        const method = checkMethod(params.get('method') ?? undefined);
        ctx.checkPools(pools);
        const { quantiles, count } = engine.quantilesAcross(pools, percentiles, method);
        const items = percentiles.map((p, i) => `{"percentile":${jsonNumber(p)},"value":${jsonNumber(quantiles[i])}}`);
        ex.send(OK, `{"pools":[${pools.join(',')}],"count":${count},"method":"${method}","quantiles":[${items.join(',')}]}`);
      },
    }),

    setRetention: handler<number>({
      parse: (body) => parseRetentionRequest(parseJson(body)),
      handle: (ex, input, windowSeconds) => {
        const status = engine.hasPool(input.poolId) ? OK : CREATED;
        ex.settle(ctx.writer().setRetention(input.poolId, windowSeconds), () =>
          ex.send(status, `{"poolId":${input.poolId},"windowSeconds":${windowSeconds}}`),
        );
      },
    }),

    deleteRetention: handler({
      handle: (ex, input) => {
        if (!engine.hasPool(input.poolId)) return ex.sendError(poolNotFound(input.poolId));
        ex.settle(ctx.writer().setRetention(input.poolId, null), () => ex.sendEmpty(NO_CONTENT));
      },
    }),

    getHistogram: handler({
      handle: (ex, input) => {
        const { bins, range } = parseHistogramQuery(new URLSearchParams(input.query));
        const h = engine.histogram(input.poolId, bins, range);
        const items = h.bins.map((b) => `{"lo":${jsonNumber(b.lo)},"hi":${jsonNumber(b.hi)},"count":${b.count}}`);
        ex.send(
          OK,
          `{"poolId":${h.poolId},"count":${h.count},"min":${jsonNumber(h.min)},"max":${jsonNumber(h.max)},"below":${h.below},"above":${h.above},"bins":[${items.join(',')}]}`,
        );
      },
    }),

    getRank: handler({
      handle: (ex, input) => {
        const r = engine.rank(input.poolId, parseRankQuery(new URLSearchParams(input.query)));
        ex.send(OK, `{"poolId":${r.poolId},"count":${r.count},"below":${r.below},"equal":${r.equal},"fraction":${jsonNumber(r.fraction)}}`);
      },
    }),

    ...createImportHandlers(ctx),

    dashboard: handler({
      handle: (ex) => {
        const index = dashboardAssets().index;
        ex.send(OK, index.body, index.contentType);
      },
    }),

    dashboardAsset: handler({
      handle: (ex, input) => {
        const name = input.params.asset;
        const asset = dashboardAssets().files.get(name);
        if (asset === undefined) ex.sendError(new PoolqError('not_found', `No dashboard file named ${name}.`));
        else ex.send(OK, asset.body, asset.contentType, { 'cache-control': 'no-cache' });
      },
    }),

    appendValues: handler<Float64Array>({
      parse: (body) =>
        parseLarge(
          body,
          (o) => o.parseValuesBody(body),
          () => checkValues(parseJson(body), 'body'),
        ),
      stream: (ex, res, input, contentLength) => {
        if (!isOctetStream(input.headers['content-type'] ?? '')) return false;
        ctx.ingest.binaryValues(ex, res, contentLength, input.poolId, keyOf(input), windowOnCreation(input));
        return true;
      },
      handle: (ex, input, values) => {
        const poolId = input.poolId;
        const window = windowOnCreation(input);
        const appendNow = (): void =>
          append(ex, poolId, values, keyOf(input), (created, count) => {
            // With a window, the retention record created the pool just before the values.
            if (created || window !== null) ex.send(CREATED, `{"status":"inserted","count":${count}}`);
            else ex.send(OK, `{"status":"appended","count":${count}}`);
          });
        if (window !== null) ex.settle(ctx.writer().setRetention(poolId, window), appendNow);
        else appendNow();
      },
    }),

    healthz: handler({ handle: (ex) => ex.send(OK, '{"status":"ok"}') }),

    readyz: handler({
      handle: (ex) => {
        const state = ctx.state();
        if (state === 'ready') ex.send(OK, '{"status":"ready"}');
        else ex.sendError(unavailable(state === 'starting' ? 'poolq is recovering its data.' : 'poolq is shutting down.'));
      },
    }),

    metrics: handler({
      handle: (ex) =>
        ctx.metrics.render().then(
          ({ contentType, body }) => ex.send(OK, body, contentType),
          (err: unknown) => ex.sendError(err),
        ),
    }),

    openapi: handler({ handle: (ex) => ex.send(OK, ctx.openApiJson) }),

    docs: handler({ handle: (ex) => ex.send(OK, docsAssets().page, 'text/html; charset=utf-8') }),

    docsAsset: handler({
      handle: (ex, input) => {
        const name = input.params.asset;
        const asset = docsAssets().files.get(name);
        if (asset === undefined) ex.sendError(new PoolqError('not_found', `No documentation asset named ${name}.`));
        else ex.send(OK, asset.body, asset.contentType, { 'cache-control': 'public, max-age=3600' });
      },
    }),

    ...createClusterHandlers(ctx.cluster, ctx.storeWriter),
  };
}
