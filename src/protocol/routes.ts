// The route table: one declaration per HTTP operation. Everything else about a
// route is derived from its entry here: the uWS registration, authentication,
// the 503 readiness gate, the body limit, the pool-id check and its cluster
// hook (src/http/router.ts), the 405 `Allow` table (allowTable), the statuses
// it documents (responsesOf) and its OpenAPI operation (src/http/openapi.ts).
//
// Adding a route:
//   1. Add an entry to ROUTES below: method, path (OpenAPI template syntax,
//      `/pools/{poolId}/rank`), operationId, summary, and
//        auth       true when --auth-token guards it (401 otherwise derived);
//        needsData  true when it reads or writes pools (503 while recovering
//                   or shutting down);
//        poolId     where its pool id comes from, if it has one (below);
//        parameters query, header and non-pool path parameters;
//        body       the request body's schema (400 and 413 are derived);
//        replies    its success replies; errors: error codes its handler
//                   itself may produce (pool_not_found, …).
//      Shapes are TypeBox schemas, named in schemas.ts or written inline.
//   2. Add the handler under the same operationId in src/http/handlers.ts
//      (the type of that map fails to compile until you do).
//   test/http-routes.test.ts checks the table, the OpenAPI document and the
//   live server against each other.
//
// Pool ids: `poolId: { in: 'path', name }` makes the router parse that path
// parameter with the pool-id rule (400 `invalid_request` naming it) before the
// handler runs; `poolId: { in: 'body', field }` makes it read that field of
// the request the handler's parse step returns. Either way the id then passes
// through the router's one pool hook, the PoolGuard (router.ts checkPool),
// which is where a cluster instance refuses pools it does not own (421,
// src/protocol/shard-gate.ts).

import type { TSchema } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { MAX_HISTOGRAM_BINS } from '../core/distribution.js';
import type { ErrorCode } from '../core/errors.js';
import { BUCKET_COUNT } from '../core/shard-map.js';
import { ERROR_HEADERS, ERROR_MEANING, statusOf } from './error-status.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, MAX_PERCENTILES_PER_QUERY, MAX_POOLS_PER_QUERY, MAX_QUERY_BODY_BYTES } from './limits.js';
import { DEFAULT_BATCH_LIMITS } from './ndjson-batch.js';
import type { SchemaName } from './schemas.js';
import { DEFAULT_HISTOGRAM_BINS } from './distribution-query.js';
import { IMPORT_FORMATS } from './import-format.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A named schema (an OpenAPI component), several of them (any one of), or an inline schema. */
export type SchemaRef = SchemaName | readonly SchemaName[] | TSchema;

export interface ParameterSpec {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly required?: boolean;
  readonly description?: string;
  readonly schema: SchemaRef;
}

/** Where a route's pool id comes from: a path parameter, or a field of the parsed request body. */
export type PoolIdSource = { readonly in: 'path'; readonly name: string } | { readonly in: 'body'; readonly field: string };

export interface ReplySpec {
  readonly description: string;
  readonly schema?: SchemaRef;
  /** Media types of the reply body (default application/json when there is a schema). */
  readonly contentType?: string | readonly string[];
  /** Response headers it carries, by name → description. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RouteSpec {
  readonly method: HttpMethod;
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly auth: boolean;
  readonly needsData: boolean;
  readonly poolId?: PoolIdSource;
  readonly parameters?: readonly ParameterSpec[];
  readonly body?: {
    readonly schema: SchemaRef;
    readonly contentType?: string | readonly string[];
    /** Also takes raw bytes of this media type (application/octet-stream), described here. */
    readonly binary?: { readonly contentType: string; readonly description: string };
    /** The handler reads the body itself (an import, to a file), past --max-body; see router.ts. */
    readonly streamed?: boolean;
    /** A transfer between shards: limited by --max-bucket-import instead of --max-body, read whole on the event loop. */
    readonly bulk?: true;
  };
  /** A body limit below --max-body. */
  readonly maxBodyBytes?: number;
  readonly replies: Readonly<Record<number, ReplySpec>>;
  readonly errors?: readonly ErrorCode[];
}

const POOL_ID_PATH = { in: 'path', name: 'poolId' } as const;
const BUCKET_PARAMETER = {
  name: 'bucket',
  in: 'path',
  required: true,
  description: `A bucket of the shard map: poolId mod ${BUCKET_COUNT}, 0 to ${BUCKET_COUNT - 1}.`,
  schema: Type.Integer({ minimum: 0, maximum: BUCKET_COUNT - 1 }),
} as const;
const CLUSTER_ONLY = 'Cluster mode (--shard-map) only; without it, 404 `not_found`.';
const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  description:
    '1-64 visible ASCII characters. A retry with a key seen in the last 24 hours returns the first outcome without appending again (keys are logged: they survive restarts).',
  schema: Type.String({ pattern: '^[\\x21-\\x7e]{1,64}$' }),
} as const;
const POOL_ID_BODY = { in: 'body', field: 'poolId' } as const;
/** `?p=…&method=…`, shared by the GET quantile routes of one pool and of several. */
const PERCENTILE_QUERY_PARAMETERS: readonly ParameterSpec[] = [
  {
    name: 'p',
    in: 'query',
    required: true,
    description: `Comma-separated percentiles from 0 to 100 (at most ${MAX_PERCENTILES_PER_QUERY}), e.g. 50,90,99.5.`,
    schema: Type.String(),
  },
  { name: 'method', in: 'query', schema: 'Method' },
];

export const ROUTES = [
  {
    method: 'POST',
    path: '/add',
    operationId: 'add',
    summary: 'Append values to a pool, creating it if new',
    auth: true,
    needsData: true,
    poolId: POOL_ID_BODY,
    parameters: [IDEMPOTENCY_KEY],
    body: { schema: 'AddRequest' },
    replies: { 200: { description: '"Inserted" when the pool was created, "Appended" when it existed.', schema: 'AddOutcome' } },
  },
  {
    method: 'POST',
    path: '/batch',
    operationId: 'batch',
    summary: 'Append to many pools at once (NDJSON, one AddRequest per line), all or nothing',
    auth: true,
    needsData: true,
    parameters: [IDEMPOTENCY_KEY],
    body: { schema: 'AddRequest', contentType: 'application/x-ndjson' },
    replies: {
      200: {
        description: `Every line appended: distinct pools and values. At most ${DEFAULT_BATCH_LIMITS.maxLines} lines of ${DEFAULT_BATCH_LIMITS.maxLineBytes} bytes and ${DEFAULT_BATCH_LIMITS.maxValues} values; a bad line is named as field line[N].`,
        schema: Type.Object({ pools: Type.Integer(), values: Type.Integer() }),
      },
    },
  },
  {
    method: 'POST',
    path: '/query',
    operationId: 'query',
    summary: 'Percentile(s) of a pool, or of the union of several (poolIds)',
    auth: true,
    needsData: true,
    poolId: POOL_ID_BODY,
    body: { schema: 'QueryRequest' },
    maxBodyBytes: MAX_QUERY_BODY_BYTES,
    replies: {
      200: {
        description: '`quantile` for `percentile`, `quantiles` (same order) for `percentiles`.',
        schema: ['QueryResult', 'QueryResults'],
      },
    },
    errors: ['pool_not_found'],
  },
  {
    method: 'GET',
    path: '/pools',
    operationId: 'listPools',
    summary: 'List pools in ascending poolId order',
    auth: true,
    needsData: true,
    parameters: [
      { name: 'limit', in: 'query', schema: Type.Integer({ minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT }) },
      { name: 'after', in: 'query', description: 'Return pools with poolId greater than this.', schema: 'PoolId' },
    ],
    replies: { 200: { description: 'A page of pools.', schema: 'PoolPage' } },
  },
  {
    method: 'GET',
    path: '/pools/{poolId}',
    operationId: 'getPool',
    summary: 'Count, min and max of a pool',
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    replies: { 200: { description: 'Pool summary.', schema: 'PoolSummary' } },
    errors: ['pool_not_found'],
  },
  {
    method: 'DELETE',
    path: '/pools/{poolId}',
    operationId: 'deletePool',
    summary: 'Delete a pool',
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    replies: { 204: { description: 'Deleted (durably, under --fsync=always).' } },
    errors: ['pool_not_found'],
  },
  {
    method: 'GET',
    path: '/pools/{poolId}/quantiles',
    operationId: 'getQuantiles',
    summary: 'Percentiles of a pool',
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    parameters: [...PERCENTILE_QUERY_PARAMETERS],
    replies: { 200: { description: 'Quantiles in request order.', schema: 'PoolQuantiles' } },
    errors: ['pool_not_found'],
  },
  {
    method: 'POST',
    path: '/pools/{poolId}/values',
    operationId: 'appendValues',
    summary: 'Append values (body: a JSON array of numbers, or little-endian float64s as application/octet-stream)',
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    parameters: [
      IDEMPOTENCY_KEY,
      {
        name: 'windowSeconds',
        in: 'query',
        description: 'Used when this request creates the pool: its retention window (PUT …/retention changes an existing one).',
        schema: 'WindowSeconds',
      },
    ],
    body: {
      schema: 'Values',
      binary: {
        contentType: 'application/octet-stream',
        description: 'Little-endian IEEE-754 float64 values, 8 bytes each; NaN and ±Infinity refused naming body[i].',
      },
    },
    replies: {
      200: { description: 'Values appended to an existing pool.', schema: 'AppendResult' },
      201: { description: 'Pool created.', schema: 'AppendResult' },
    },
  },
  {
    method: 'PUT',
    path: '/pools/{poolId}/retention',
    operationId: 'setRetention',
    summary: "Keep only the pool's values of about the last windowSeconds (creates the pool if new)",
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    body: { schema: 'RetentionRequest' },
    replies: {
      200: { description: 'The window now in force (durably, under --fsync=always).', schema: 'Retention' },
      201: { description: 'The pool did not exist: it was created, empty, with this window.', schema: 'Retention' },
    },
  },
  {
    method: 'DELETE',
    path: '/pools/{poolId}/retention',
    operationId: 'deleteRetention',
    summary: 'Remove the window: the pool keeps every value it holds and every later one',
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    replies: { 204: { description: 'No window any more (also when there was none).' } },
    errors: ['pool_not_found'],
  },
  {
    method: 'GET',
    path: '/quantiles',
    operationId: 'getUnionQuantiles',
    summary: 'Percentiles of the union of several pools',
    auth: true,
    needsData: true,
    parameters: [
      {
        name: 'pools',
        in: 'query',
        required: true,
        description: `Comma-separated pool ids (1 to ${MAX_POOLS_PER_QUERY}, each counted once), e.g. 1,2,3.`,
        schema: Type.String(),
      },
      ...PERCENTILE_QUERY_PARAMETERS,
    ],
    replies: { 200: { description: 'Quantiles of the union, in request order.', schema: 'UnionQuantiles' } },
    errors: ['pool_not_found'],
  },
  {
    method: 'GET',
    path: '/pools/{poolId}/histogram',
    operationId: 'getHistogram',
    summary: 'Equal-width histogram of a pool (numpy.histogram), counted from its sorted runs',
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    parameters: [
      {
        name: 'bins',
        in: 'query',
        schema: Type.Integer({ minimum: 1, maximum: MAX_HISTOGRAM_BINS, default: DEFAULT_HISTOGRAM_BINS }),
      },
      { name: 'min', in: 'query', description: "Lower edge (default: the pool's minimum).", schema: Type.Number() },
      { name: 'max', in: 'query', description: "Upper edge (default: the pool's maximum).", schema: Type.Number() },
    ],
    replies: { 200: { description: 'Bins in ascending order.', schema: 'PoolHistogram' } },
    errors: ['pool_not_found'],
  },
  {
    method: 'GET',
    path: '/pools/{poolId}/rank',
    operationId: 'getRank',
    summary: 'How many values lie below and at a value (the empirical CDF)',
    auth: true,
    needsData: true,
    poolId: POOL_ID_PATH,
    parameters: [{ name: 'value', in: 'query', required: true, description: 'A finite number.', schema: Type.Number() }],
    replies: { 200: { description: 'Counts and fraction.', schema: 'PoolRank' } },
    errors: ['pool_not_found'],
  },
  {
    method: 'POST',
    path: '/imports',
    operationId: 'startImport',
    summary: 'Import a file of values in the background (all or nothing)',
    auth: true,
    needsData: true,
    parameters: [
      {
        name: 'poolId',
        in: 'query',
        description: 'Pool for every value; optional when rows name their pools (a CSV poolId column, NDJSON objects).',
        schema: 'PoolId',
      },
      {
        name: 'format',
        in: 'query',
        schema: Type.Union(
          IMPORT_FORMATS.map((f) => Type.Literal(f)),
          { default: 'csv' },
        ),
      },
      { name: 'column', in: 'query', description: 'CSV value column: a header name or a 0-based index.', schema: Type.String() },
    ],
    body: {
      schema: Type.String({ description: 'The file, streamed to the data directory (at most --max-import, default 4 GiB).' }),
      contentType: ['text/csv', 'application/x-ndjson', 'application/octet-stream'],
      streamed: true,
    },
    replies: {
      202: {
        description: 'The file was received; follow the job at GET /imports/{jobId}.',
        schema: 'ImportAccepted',
        headers: { location: 'The job.' },
      },
    },
  },
  {
    method: 'GET',
    path: '/imports/{jobId}',
    operationId: 'getImport',
    summary: 'State and progress of an import',
    auth: true,
    needsData: false,
    parameters: [{ name: 'jobId', in: 'path', required: true, schema: Type.String() }],
    replies: { 200: { description: 'The job.', schema: 'ImportJob' } },
    errors: ['not_found'],
  },
  {
    method: 'GET',
    path: '/',
    operationId: 'dashboard',
    summary: 'The dashboard (a page in the browser)',
    auth: false,
    needsData: false,
    replies: { 200: { description: 'HTML page.', schema: Type.String(), contentType: 'text/html' } },
  },
  {
    method: 'GET',
    path: '/dashboard/{asset}',
    operationId: 'dashboardAsset',
    summary: 'A script or stylesheet of the dashboard',
    auth: false,
    needsData: false,
    parameters: [{ name: 'asset', in: 'path', required: true, description: 'File name, e.g. main.js.', schema: Type.String() }],
    replies: { 200: { description: 'The file.', schema: Type.String(), contentType: ['text/css', 'text/javascript'] } },
    errors: ['not_found'],
  },
  {
    method: 'GET',
    path: '/healthz',
    operationId: 'healthz',
    summary: 'Liveness: 200 while the process serves',
    auth: false,
    needsData: false,
    replies: { 200: { description: 'Alive.', schema: 'Status' } },
  },
  {
    method: 'GET',
    path: '/readyz',
    operationId: 'readyz',
    summary: 'Readiness: 200 once recovery finished, 503 before and while shutting down',
    auth: false,
    needsData: false,
    replies: { 200: { description: 'Ready.', schema: 'Status' } },
    errors: ['unavailable'],
  },
  {
    method: 'GET',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics',
    auth: false,
    needsData: false,
    replies: { 200: { description: 'Prometheus text exposition format.', schema: Type.String(), contentType: 'text/plain' } },
  },
  {
    method: 'GET',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This document',
    auth: false,
    needsData: false,
    replies: { 200: { description: 'OpenAPI 3.1 document.', schema: Type.Object({}) } },
  },
  {
    method: 'GET',
    path: '/docs',
    operationId: 'docs',
    summary: 'Interactive documentation rendering /openapi.json',
    auth: false,
    needsData: false,
    replies: { 200: { description: 'HTML page.', schema: Type.String(), contentType: 'text/html' } },
  },
  {
    method: 'GET',
    path: '/docs/{asset}',
    operationId: 'docsAsset',
    summary: 'A script or stylesheet of the documentation page',
    auth: false,
    needsData: false,
    parameters: [{ name: 'asset', in: 'path', required: true, description: 'File name, e.g. swagger-ui.css.', schema: Type.String() }],
    replies: {
      200: {
        description: 'The file.',
        schema: Type.String(),
        contentType: ['text/css', 'text/javascript'],
        headers: { 'cache-control': 'Cached for an hour.' },
      },
    },
    errors: ['not_found'],
  },
  {
    method: 'GET',
    path: '/cluster',
    operationId: 'clusterStatus',
    summary: `This shard: its name, map epoch, buckets and pools. ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    replies: { 200: { description: 'The shard as it runs now.', schema: 'ClusterStatus' } },
    errors: ['not_found'],
  },
  {
    method: 'POST',
    path: '/cluster/shard-map/reload',
    operationId: 'reloadShardMap',
    summary: `Reread the --shard-map file (as SIGHUP does); an invalid file is refused and the old map kept. ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    replies: { 200: { description: 'The shard with the map it loaded.', schema: 'ClusterStatus' } },
    errors: ['not_found', 'invalid_request'],
  },
  {
    method: 'GET',
    path: '/cluster/buckets/{bucket}',
    operationId: 'getBucket',
    summary: `What this shard holds of a bucket, and whether it owns it or has it marked moving. ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    parameters: [BUCKET_PARAMETER],
    replies: { 200: { description: 'The bucket here.', schema: 'BucketReport' } },
    errors: ['not_found', 'invalid_request'],
  },
  {
    method: 'PUT',
    path: '/cluster/buckets/{bucket}/moving',
    operationId: 'markBucketMoving',
    summary: `Mark a bucket as moving away: its appends and deletes get 503 + Retry-After until the mark is lifted. ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    parameters: [BUCKET_PARAMETER],
    replies: { 200: { description: "The bucket, with the mark's token in `moving`.", schema: 'BucketReport' } },
    errors: ['not_found', 'invalid_request'],
  },
  {
    method: 'DELETE',
    path: '/cluster/buckets/{bucket}/moving',
    operationId: 'unmarkBucketMoving',
    summary: `Lift a bucket's moving mark (only the given one, with ?token=). ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    parameters: [BUCKET_PARAMETER, { name: 'token', in: 'query', description: 'The token PUT …/moving returned.', schema: Type.String() }],
    replies: { 200: { description: 'The bucket.', schema: 'BucketReport' } },
    errors: ['not_found', 'conflict'],
  },
  {
    method: 'GET',
    path: '/cluster/buckets/{bucket}/export',
    operationId: 'exportBucket',
    summary: `The bucket's pools in the snapshot format, once every write admitted before the mark has settled. ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    parameters: [BUCKET_PARAMETER],
    replies: {
      200: {
        description: "A snapshot file (docs/storage-format.md) holding exactly the bucket's pools.",
        schema: 'Export',
        contentType: 'application/octet-stream',
        headers: { 'x-poolq-pools': 'Pools in the export.', 'x-poolq-values': 'Values in the export.' },
      },
    },
    errors: ['not_found', 'invalid_request', 'conflict'],
  },
  {
    method: 'POST',
    path: '/cluster/buckets/{bucket}/import',
    operationId: 'importBucket',
    summary: `Replace this shard's copy of the exported pools, in a bucket it does not own (yet); durable like appends. ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    parameters: [BUCKET_PARAMETER],
    body: { schema: 'Export', contentType: 'application/octet-stream', bulk: true },
    replies: { 200: { description: 'The bucket here after the import.', schema: 'BucketReport' } },
    errors: ['not_found', 'conflict'],
  },
  {
    method: 'DELETE',
    path: '/cluster/buckets/{bucket}/pools',
    operationId: 'deleteBucketPools',
    summary: `Delete this shard's copy of a bucket it no longer owns (the last step of a move). ${CLUSTER_ONLY}`,
    auth: true,
    needsData: true,
    parameters: [BUCKET_PARAMETER],
    replies: { 200: { description: 'What was deleted (pools, values).', schema: 'BucketReport' } },
    errors: ['not_found', 'invalid_request', 'conflict'],
  },
] as const satisfies readonly RouteSpec[];

export type OperationId = (typeof ROUTES)[number]['operationId'];

/** The label of a route in metrics and logs: `POST /add`, `GET /pools/{poolId}`. */
export function routeLabel(route: RouteSpec): string {
  return `${route.method} ${route.path}`;
}

/** Path parameter names in template order: `/pools/{poolId}/values` → ['poolId']. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
}

/** Every path of the table with the methods it serves, in table order: the `Allow` header of a 405. */
export function allowTable(routes: readonly RouteSpec[] = ROUTES): Map<string, HttpMethod[]> {
  const table = new Map<string, HttpMethod[]>();
  for (const route of routes) {
    const methods = table.get(route.path) ?? [];
    methods.push(route.method);
    if (route.method === 'GET') methods.push('HEAD'); // every GET route answers HEAD (router.ts)
    table.set(route.path, methods);
  }
  return table;
}

export interface ResponseSpec extends ReplySpec {
  /** The error codes a client may see with this status (error responses only). */
  readonly codes?: readonly ErrorCode[];
}

/** Error codes every request of the route may meet before or around its handler. */
function derivedErrors(route: RouteSpec): ErrorCode[] {
  const codes: ErrorCode[] = [];
  if (route.body !== undefined) codes.push('invalid_json', 'invalid_request', 'payload_too_large');
  else if (route.poolId !== undefined || (route.parameters ?? []).some((p) => p.in !== 'path')) codes.push('invalid_request');
  if (route.poolId !== undefined) codes.push('misdirected');
  if (route.auth) codes.push('unauthorized');
  if (route.needsData) codes.push('unavailable');
  codes.push('internal');
  return codes;
}

/**
 * Every status the operation can answer, by status code: its own replies, then
 * one response per error status with the codes behind it. (A method the path
 * does not serve gets 405, and an unknown path 404; those belong to no
 * operation, and the OpenAPI document states them once, in its description.)
 */
export function responsesOf(route: RouteSpec): Map<number, ResponseSpec> {
  const responses = new Map<number, ResponseSpec>();
  for (const [status, reply] of Object.entries(route.replies)) responses.set(Number(status), reply);
  const codes = new Set<ErrorCode>([...(route.errors ?? []), ...derivedErrors(route)]);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
  for (const [status, statusCodes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const description = statusCodes.map((code) => `\`${code}\`: ${ERROR_MEANING[code]}.`).join(' ');
    const headers = Object.assign({}, ...statusCodes.map((code) => ERROR_HEADERS[code] ?? {})) as Record<string, string>;
    responses.set(status, { description, schema: 'Error', codes: statusCodes, ...(Object.keys(headers).length > 0 ? { headers } : {}) });
  }
  return responses;
}
