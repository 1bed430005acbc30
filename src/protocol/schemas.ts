// The JSON shapes of requests and replies, as TypeBox schemas: plain JSON
// Schema objects that the route table (routes.ts) names and the OpenAPI
// document (src/http/openapi.ts) publishes as components. They describe; the
// hand-written parsers in validate.ts and bulk-parse.ts enforce, because they
// name the exact offending field and copy values into a Float64Array in the
// same pass (docs/decisions/validation.md). test/http-request-schemas.test.ts
// compiles these schemas and holds the parsers to them on generated bodies.

import { Type, type TSchema } from '@sinclair/typebox';
import { QUANTILE_METHODS } from '../core/methods.js';
import { ERROR_CODES } from './error-status.js';
import { IMPORT_FORMATS } from './import-format.js';
import { MAX_PERCENTILES_PER_QUERY, MAX_POOL_ID, MAX_POOLS_PER_QUERY, MAX_WINDOW_SECONDS } from './limits.js';

const PoolId = Type.Integer({ minimum: 0, maximum: MAX_POOL_ID, description: 'Pool identifier, 0 to 2^53-1.', examples: [123456] });
const Method = Type.Union(
  QUANTILE_METHODS.map((m) => Type.Literal(m)),
  { default: 'linear', description: 'numpy.percentile method.' },
);
const ImportState = Type.Union(['queued', 'running', 'done', 'failed'].map((s) => Type.Literal(s)));
const Percentile = Type.Number({ minimum: 0, maximum: 100 });
const Values = Type.Array(Type.Number({ description: 'Any finite float64; -0 allowed.' }), { minItems: 1, examples: [[1, 7, 2, 6]] });
const Percentiles = Type.Array(Percentile, { minItems: 1, maxItems: MAX_PERCENTILES_PER_QUERY });

const PoolIds = Type.Array(PoolId, {
  minItems: 1,
  maxItems: MAX_POOLS_PER_QUERY,
  description: 'Pools whose values are taken together, each pool once.',
  examples: [[1, 2, 3]],
});
const WindowSeconds = Type.Integer({
  minimum: 1,
  maximum: MAX_WINDOW_SECONDS,
  description: 'Keep the values of about the last this many seconds (arrival buckets of max(1 s, W/60)).',
  examples: [300],
});
/** A number, or null where there is no value to answer with (a pool whose window holds none). */
const Answer = Type.Union([Type.Number(), Type.Null()]);

/**
 * A /query body: exactly one of `poolId` and `poolIds` and exactly one of
 * `percentile` and `percentiles` (the other of each pair must be absent).
 */
const QueryRequest = Type.Union(
  [
    { poolId: PoolId, poolIds: Type.Optional(Type.Never()) },
    { poolIds: PoolIds, poolId: Type.Optional(Type.Never()) },
  ].flatMap((target) => [
    Type.Object({ ...target, percentile: Percentile, percentiles: Type.Optional(Type.Never()), method: Type.Optional(Method) }),
    Type.Object({ ...target, percentiles: Percentiles, percentile: Type.Optional(Type.Never()), method: Type.Optional(Method) }),
  ]),
  {
    description: 'Exactly one of `poolId` or `poolIds` (their union), and one of `percentile` or `percentiles`.',
    examples: [
      { poolId: 123456, percentile: 99.5 },
      { poolIds: [1, 2, 3], percentiles: [50, 99] },
    ],
  },
);

/** Every named shape; routes refer to them by name, the OpenAPI document lists them under components. */
export const SCHEMAS = {
  PoolId,
  Method,
  Values,
  AddRequest: Type.Object({ poolId: PoolId, poolValues: Values }, { examples: [{ poolId: 123456, poolValues: [1, 7, 2, 6] }] }),
  QueryRequest,
  AddOutcome: Type.Union([Type.Literal('Inserted'), Type.Literal('Appended')], {
    description: '"Inserted" when the pool was created, "Appended" when it existed.',
  }),
  QueryResult: Type.Object(
    { quantile: Answer, count: Type.Integer() },
    { description: '`quantile` is null when there is no value (count 0).', examples: [{ quantile: 6.984999999999999, count: 4 }] },
  ),
  QueryResults: Type.Object({ quantiles: Type.Array(Answer), count: Type.Integer() }),
  PoolSummary: Type.Object({
    poolId: PoolId,
    count: Type.Integer(),
    min: Answer,
    max: Answer,
    windowSeconds: Type.Union([WindowSeconds, Type.Null()], { description: 'The retention window; null: every value is kept.' }),
  }),
  PoolQuantiles: Type.Object({
    poolId: PoolId,
    count: Type.Integer(),
    method: Method,
    quantiles: Type.Array(Type.Object({ percentile: Percentile, value: Answer })),
  }),
  UnionQuantiles: Type.Object({
    pools: PoolIds,
    count: Type.Integer({ description: 'Values in the union.' }),
    method: Method,
    quantiles: Type.Array(Type.Object({ percentile: Percentile, value: Answer })),
  }),
  WindowSeconds,
  RetentionRequest: Type.Object({ windowSeconds: WindowSeconds }, { examples: [{ windowSeconds: 300 }] }),
  Retention: Type.Object({ poolId: PoolId, windowSeconds: Type.Union([WindowSeconds, Type.Null()]) }),
  AppendResult: Type.Object({ status: Type.Union([Type.Literal('inserted'), Type.Literal('appended')]), count: Type.Integer() }),
  PoolPage: Type.Object({
    pools: Type.Array(Type.Object({ poolId: PoolId, count: Type.Integer() })),
    next: Type.Union([PoolId, Type.Null()], { description: 'Pass as `after` for the next page.' }),
  }),
  PoolHistogram: Type.Object(
    {
      poolId: PoolId,
      count: Type.Integer(),
      min: Type.Number({ description: "The pool's smallest value." }),
      max: Type.Number({ description: "The pool's largest value." }),
      below: Type.Integer({ description: 'Values below the asked range (0 without min).' }),
      above: Type.Integer({ description: 'Values above the asked range (0 without max).' }),
      bins: Type.Array(Type.Object({ lo: Type.Number(), hi: Type.Number(), count: Type.Integer() }), {
        description: 'numpy.histogram bins: lo <= v < hi, the last bin also holds hi; below + sum(count) + above = count.',
      }),
    },
    {
      examples: [
        {
          poolId: 1,
          count: 5,
          min: 1,
          max: 10,
          below: 0,
          above: 0,
          bins: [
            { lo: 1, hi: 5.5, count: 4 },
            { lo: 5.5, hi: 10, count: 1 },
          ],
        },
      ],
    },
  ),
  PoolRank: Type.Object(
    {
      poolId: PoolId,
      count: Type.Integer(),
      below: Type.Integer({ description: 'Values < value.' }),
      equal: Type.Integer({ description: 'Values == value (-0 equals 0).' }),
      fraction: Type.Number({ description: '(below + equal) / count: the empirical CDF at value.' }),
    },
    { examples: [{ poolId: 1, count: 5, below: 1, equal: 2, fraction: 0.6 }] },
  ),
  ImportAccepted: Type.Object({ jobId: Type.String(), state: ImportState }),
  ImportJob: Type.Object({
    jobId: Type.String(),
    state: ImportState,
    format: Type.Union(IMPORT_FORMATS.map((f) => Type.Literal(f))),
    poolId: Type.Union([PoolId, Type.Null()], { description: 'null when rows name their pools.' }),
    bytes: Type.Integer({ description: 'Bytes parsed so far.' }),
    bytesTotal: Type.Integer({ description: 'Bytes received.' }),
    values: Type.Integer({ description: 'Values parsed so far; once done, imported.' }),
    pools: Type.Integer({ description: 'Pools the import added to (once done).' }),
    error: Type.Union([
      Type.Object({ message: Type.String(), line: Type.Optional(Type.Integer({ description: 'First bad line (f64: value number).' })) }),
      Type.Null(),
    ]),
  }),
  Status: Type.Object({ status: Type.String() }),
  ClusterStatus: Type.Object({
    shard: Type.String(),
    epoch: Type.Integer({ minimum: 1, description: 'Epoch of the shard map this shard runs with.' }),
    ownedBuckets: Type.Integer(),
    movingBuckets: Type.Array(Type.Integer(), { description: 'Buckets marked moving here.' }),
    pools: Type.Integer({ description: 'Pools in buckets this shard owns.' }),
    values: Type.Integer(),
    storedPools: Type.Integer({ description: 'Every pool held, owned or not (more than `pools` only during a move).' }),
    storedValues: Type.Integer(),
  }),
  BucketReport: Type.Object({
    bucket: Type.Integer(),
    owner: Type.String({ description: 'The shard the map gives the bucket to.' }),
    owned: Type.Boolean(),
    moving: Type.Union([Type.String(), Type.Null()], { description: 'Token of the moving mark, if any.' }),
    writesInFlight: Type.Integer({ description: 'Writes admitted and not yet durable.' }),
    pools: Type.Integer(),
    values: Type.Integer(),
  }),
  Export: Type.String({ format: 'binary', description: "A snapshot file (docs/storage-format.md, seq 0) of one bucket's pools." }),
  Error: Type.Object({
    error: Type.Union(ERROR_CODES.map((code) => Type.Literal(code))),
    message: Type.String(),
    field: Type.Optional(Type.String({ description: 'JSON path of the offending field, e.g. poolValues[3].' })),
  }),
} satisfies Record<string, TSchema>;

export type SchemaName = keyof typeof SCHEMAS;
