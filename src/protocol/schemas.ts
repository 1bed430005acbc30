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
import { MAX_PERCENTILES_PER_QUERY, MAX_POOL_ID } from './limits.js';

const PoolId = Type.Integer({ minimum: 0, maximum: MAX_POOL_ID, description: 'Pool identifier, 0 to 2^53-1.', examples: [123456] });
const Method = Type.Union(
  QUANTILE_METHODS.map((m) => Type.Literal(m)),
  { default: 'linear', description: 'numpy.percentile method.' },
);
const Percentile = Type.Number({ minimum: 0, maximum: 100 });
const Values = Type.Array(Type.Number({ description: 'Any finite float64; -0 allowed.' }), { minItems: 1, examples: [[1, 7, 2, 6]] });
const Percentiles = Type.Array(Percentile, { minItems: 1, maxItems: MAX_PERCENTILES_PER_QUERY });

/** A /query body: exactly one of `percentile` and `percentiles` (the other must be absent). */
const QueryRequest = Type.Union(
  [
    Type.Object({ poolId: PoolId, percentile: Percentile, percentiles: Type.Optional(Type.Never()), method: Type.Optional(Method) }),
    Type.Object({ poolId: PoolId, percentiles: Percentiles, percentile: Type.Optional(Type.Never()), method: Type.Optional(Method) }),
  ],
  { description: 'Exactly one of `percentile` or `percentiles`.', examples: [{ poolId: 123456, percentile: 99.5 }] },
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
  QueryResult: Type.Object({ quantile: Type.Number(), count: Type.Integer() }, { examples: [{ quantile: 6.984999999999999, count: 4 }] }),
  QueryResults: Type.Object({ quantiles: Type.Array(Type.Number()), count: Type.Integer() }),
  PoolSummary: Type.Object({ poolId: PoolId, count: Type.Integer(), min: Type.Number(), max: Type.Number() }),
  PoolQuantiles: Type.Object({
    poolId: PoolId,
    count: Type.Integer(),
    method: Method,
    quantiles: Type.Array(Type.Object({ percentile: Percentile, value: Type.Number() })),
  }),
  AppendResult: Type.Object({ status: Type.Union([Type.Literal('inserted'), Type.Literal('appended')]), count: Type.Integer() }),
  PoolPage: Type.Object({
    pools: Type.Array(Type.Object({ poolId: PoolId, count: Type.Integer() })),
    next: Type.Union([PoolId, Type.Null()], { description: 'Pass as `after` for the next page.' }),
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
