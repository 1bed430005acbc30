// The code behind each operation of the route table (src/protocol/routes.ts),
// keyed by operationId. The router has already authenticated the request,
// checked readiness, read the body within its limit and parsed a path pool id
// into `input.poolId`; a handler parses what is its own (body, query) with the
// src/protocol parsers, does the work and writes the reply.

import type { QuantileEngine } from '../core/engine.js';
import { PoolqError, unavailable } from '../core/errors.js';
import { parseQueryBodyFast } from '../protocol/bulk-parse.js';
import type { RequestOffload } from '../protocol/offload.js';
import {
  checkMethod,
  checkValues,
  parseAddRequest,
  parseJson,
  parseListQuery,
  parsePercentileQuery,
  parseQueryRequest,
  type AddRequest,
  type QueryRequest,
} from '../protocol/validate.js';
import type { AppendOutcome } from '../core/engine.js';
import type { ShardGate } from '../protocol/shard-gate.js';
import type { Awaitable, PoolWriter } from '../storage/pool-writer.js';
import type { ClusterAdmin } from './cluster-admin.js';
import { createClusterHandlers } from './cluster-handlers.js';
import type { BodyBufferPool } from './body-buffers.js';
import { loadDocsAssets, type DocsAssets } from './docs-page.js';
import { jsonNumber, type Exchange } from './exchange.js';
import type { Metrics } from './metrics.js';
import type { Handler, Handlers } from './router.js';

export type ServerState = 'starting' | 'ready' | 'stopping';

export interface HandlerContext {
  engine: QuantileEngine;
  offload: RequestOffload | null;
  metrics: Metrics;
  bodyBuffers: BodyBufferPool;
  /** Bodies of at least this many bytes are parsed on a worker, batches of at least offloadSortValues sorted there. */
  offloadParseBytes: number;
  offloadSortValues: number;
  openApiJson: string;
  /** The store, once recovery finished (routes that need data run only then). */
  writer(): PoolWriter;
  state(): ServerState;
  /** Cluster mode: the gate writes pass (421, or 503 while their bucket moves) and the /cluster work; null otherwise. */
  cluster: { gate: ShardGate; admin: ClusterAdmin } | null;
}

const OK = '200 OK';
const CREATED = '201 Created';
const NO_CONTENT = '204 No Content';
const INSERTED = '"Inserted"';
const APPENDED = '"Appended"';

/** Typed at its definition, stored untyped in the map (the router passes parse's result to handle). */
const handler = <T>(h: Handler<T>): Handler => h as Handler;

export function createHandlers(ctx: HandlerContext): Handlers {
  const { engine, offload } = ctx;
  let docs: DocsAssets | null = null;
  const docsAssets = (): DocsAssets => (docs ??= loadDocsAssets());

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

  /**
   * Runs a write to one pool through the cluster gate: refused before it
   * starts (421; 503 while its bucket moves, which the router's pool check,
   * made before the body was parsed, cannot know yet) and counted until it
   * settles, so a bucket export waits for it.
   */
  function gatedWrite<T>(poolId: number, write: () => Awaitable<T>): Awaitable<T> {
    if (ctx.cluster === null) return write();
    const release = ctx.cluster.gate.admitWrite(poolId);
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

  /** Sorts (on a worker when large), logs and applies an append, then replies. */
  function append(ex: Exchange, poolId: number, values: Float64Array, reply: (created: boolean, count: number) => void): void {
    const outcome = gatedWrite(poolId, (): Awaitable<AppendOutcome> => {
      const sorted = offload !== null && values.length >= ctx.offloadSortValues ? offload.sortBatch(values) : engine.sortBatch(values);
      return sorted instanceof Promise ? sorted.then((run) => ctx.writer().append(poolId, run)) : ctx.writer().append(poolId, sorted);
    });
    ex.settle(outcome, (o) => reply(o.created, o.count));
  }

  return {
    add: handler<AddRequest>({
      parse: (body) =>
        parseLarge(
          body,
          (o) => o.parseAddBody(body),
          () => parseAddRequest(parseJson(body)),
        ),
      handle: (ex, _input, request) => append(ex, request.poolId, request.values, (created) => ex.send(OK, created ? INSERTED : APPENDED)),
    }),

    query: handler<QueryRequest>({
      parse: (body) => parseQueryBodyFast(body) ?? parseQueryRequest(parseJson(body)),
      handle: (ex, _input, request) => {
        const values = engine.quantiles(request.poolId, request.percentiles, request.method);
        const count = engine.countOf(request.poolId)!;
        if (request.many) ex.send(OK, `{"quantiles":[${values.map(jsonNumber).join(',')}],"count":${count}}`);
        else ex.send(OK, `{"quantile":${jsonNumber(values[0])},"count":${count}}`);
      },
    }),

    listPools: handler({
      handle: (ex, input) => {
        const { limit, after } = parseListQuery(new URLSearchParams(input.query));
        // a shard lists the pools it owns: during a move, a pool is listed by exactly one shard
        const page = ctx.cluster === null ? engine.listPools(after, limit) : ctx.cluster.admin.listOwnedPools(after, limit);
        ex.send(OK, JSON.stringify(page));
      },
    }),

    getPool: handler({
      handle: (ex, input) => {
        const s = engine.summary(input.poolId);
        ex.send(OK, `{"poolId":${s.poolId},"count":${s.count},"min":${jsonNumber(s.min)},"max":${jsonNumber(s.max)}}`);
      },
    }),

    deletePool: handler({
      handle: (ex, input) => {
        const poolId = input.poolId;
        ex.settle(
          gatedWrite(poolId, () => ctx.writer().deletePool(poolId)),
          (existed) => {
            if (existed) ex.sendEmpty(NO_CONTENT);
            else ex.sendError(new PoolqError('pool_not_found', `Pool ${poolId} does not exist.`));
          },
        );
      },
    }),

    getQuantiles: handler({
      handle: (ex, input) => {
        const poolId = input.poolId;
        const params = new URLSearchParams(input.query);
        const percentiles = parsePercentileQuery(params.get('p'));
        const method = checkMethod(params.get('method') ?? undefined);
        const values = engine.quantiles(poolId, percentiles, method);
        const items = percentiles.map((p, i) => `{"percentile":${jsonNumber(p)},"value":${jsonNumber(values[i])}}`);
        ex.send(OK, `{"poolId":${poolId},"count":${engine.countOf(poolId)},"method":"${method}","quantiles":[${items.join(',')}]}`);
      },
    }),

    appendValues: handler<Float64Array>({
      parse: (body) =>
        parseLarge(
          body,
          (o) => o.parseValuesBody(body),
          () => checkValues(parseJson(body), 'body'),
        ),
      handle: (ex, input, values) =>
        append(ex, input.poolId, values, (created, count) => {
          if (created) ex.send(CREATED, `{"status":"inserted","count":${count}}`);
          else ex.send(OK, `{"status":"appended","count":${count}}`);
        }),
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

    ...createClusterHandlers(ctx.cluster?.admin ?? null, ctx.writer),
  };
}
