// The OpenAPI 3.1 description of the HTTP contract (../shared/api.md), served
// at GET /openapi.json and rendered at GET /docs. A test checks that every
// route the server answers is described here and vice versa.

import { QUANTILE_METHODS } from '../core/methods.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, MAX_PERCENTILES_PER_QUERY } from './validate.js';

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });

const poolIdParam = {
  name: 'poolId',
  in: 'path',
  required: true,
  description: 'Pool identifier, 0 to 2^53-1.',
  schema: ref('PoolId'),
};

const ERRORS = {
  '400': errorResponse('Malformed request: invalid_json or invalid_request (with `field`).'),
  '401': errorResponse('unauthorized: the server runs with --auth-token and the bearer token is missing or wrong.'),
  '413': errorResponse('payload_too_large: the body exceeds --max-body.'),
  '503': errorResponse('unavailable: recovering, shutting down, or storage cannot accept writes.'),
};

export function buildOpenApiDocument(): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'poolq',
      version: '1.0.0',
      description:
        'Pools of float64 values with exact percentile queries, equal bit for bit to numpy.percentile. ' +
        'Appends are acknowledged only once durable (default --fsync=always).',
    },
    servers: [{ url: '/' }],
    // Only enforced when the server runs with --auth-token; operations endpoints override it with [].
    security: [{ bearer: [] }, {}],
    paths: {
      '/add': {
        post: {
          summary: 'Append values to a pool, creating it if new',
          operationId: 'add',
          requestBody: { required: true, content: json(ref('AddRequest')) },
          responses: {
            '200': {
              description: '"Inserted" when the pool was created, "Appended" when it existed.',
              content: json({ type: 'string', enum: ['Inserted', 'Appended'] }),
            },
            ...ERRORS,
          },
        },
      },
      '/query': {
        post: {
          summary: 'Percentile(s) of a pool',
          operationId: 'query',
          requestBody: { required: true, content: json(ref('QueryRequest')) },
          responses: {
            '200': {
              description: '`quantile` for `percentile`, `quantiles` (same order) for `percentiles`.',
              content: json({ oneOf: [ref('QueryResult'), ref('QueryResults')] }),
            },
            '404': errorResponse('pool_not_found'),
            ...ERRORS,
          },
        },
      },
      '/pools': {
        get: {
          summary: 'List pools in ascending poolId order',
          operationId: 'listPools',
          parameters: [
            {
              name: 'limit',
              in: 'query',
              schema: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT },
            },
            { name: 'after', in: 'query', description: 'Return pools with poolId greater than this.', schema: ref('PoolId') },
          ],
          responses: {
            '200': { description: 'A page of pools.', content: json(ref('PoolPage')) },
            '400': ERRORS['400'],
            '503': ERRORS['503'],
          },
        },
      },
      '/pools/{poolId}': {
        parameters: [poolIdParam],
        get: {
          summary: 'Count, min and max of a pool',
          operationId: 'getPool',
          responses: {
            '200': { description: 'Pool summary.', content: json(ref('PoolSummary')) },
            '404': errorResponse('pool_not_found'),
            '400': ERRORS['400'],
            '503': ERRORS['503'],
          },
        },
        delete: {
          summary: 'Delete a pool',
          operationId: 'deletePool',
          responses: {
            '204': { description: 'Deleted (durably, under --fsync=always).' },
            '404': errorResponse('pool_not_found'),
            '400': ERRORS['400'],
            '503': ERRORS['503'],
          },
        },
      },
      '/pools/{poolId}/quantiles': {
        parameters: [poolIdParam],
        get: {
          summary: 'Percentiles of a pool',
          operationId: 'getQuantiles',
          parameters: [
            {
              name: 'p',
              in: 'query',
              required: true,
              description: `Comma-separated percentiles from 0 to 100 (at most ${MAX_PERCENTILES_PER_QUERY}), e.g. 50,90,99.5.`,
              schema: { type: 'string' },
            },
            { name: 'method', in: 'query', schema: ref('Method') },
          ],
          responses: {
            '200': { description: 'Quantiles in request order.', content: json(ref('PoolQuantiles')) },
            '404': errorResponse('pool_not_found'),
            '400': ERRORS['400'],
            '503': ERRORS['503'],
          },
        },
      },
      '/pools/{poolId}/values': {
        parameters: [poolIdParam],
        post: {
          summary: 'Append values (body: a JSON array of numbers)',
          operationId: 'appendValues',
          requestBody: { required: true, content: json(ref('Values')) },
          responses: {
            '201': { description: 'Pool created.', content: json(ref('AppendResult')) },
            '200': { description: 'Values appended to an existing pool.', content: json(ref('AppendResult')) },
            ...ERRORS,
          },
        },
      },
      '/healthz': {
        get: { summary: 'Liveness: 200 while the process serves', operationId: 'healthz', security: [], responses: { '200': { description: 'Alive.' } } },
      },
      '/readyz': {
        get: {
          summary: 'Readiness: 200 once recovery finished, 503 before and while shutting down',
          operationId: 'readyz', security: [],
          responses: { '200': { description: 'Ready.' }, '503': ERRORS['503'] },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          operationId: 'metrics', security: [],
          responses: { '200': { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/openapi.json': {
        get: { summary: 'This document', operationId: 'openapi', security: [], responses: { '200': { description: 'OpenAPI 3.1 document.' } } },
      },
      '/docs': {
        get: {
          summary: 'Interactive documentation rendering /openapi.json',
          operationId: 'docs', security: [],
          responses: { '200': { description: 'HTML page.', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Required on data endpoints when the server runs with --auth-token.' },
      },
      schemas: {
        PoolId: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, examples: [123456] },
        Method: { type: 'string', enum: [...QUANTILE_METHODS], default: 'linear', description: 'numpy.percentile method.' },
        Percentile: { type: 'number', minimum: 0, maximum: 100 },
        Values: {
          type: 'array',
          minItems: 1,
          items: { type: 'number', description: 'Any finite float64; -0 allowed.' },
          examples: [[1, 7, 2, 6]],
        },
        AddRequest: {
          type: 'object',
          required: ['poolId', 'poolValues'],
          properties: { poolId: ref('PoolId'), poolValues: ref('Values') },
          examples: [{ poolId: 123456, poolValues: [1, 7, 2, 6] }],
        },
        QueryRequest: {
          type: 'object',
          required: ['poolId'],
          description: 'Exactly one of `percentile` or `percentiles`.',
          properties: {
            poolId: ref('PoolId'),
            percentile: ref('Percentile'),
            percentiles: { type: 'array', minItems: 1, maxItems: MAX_PERCENTILES_PER_QUERY, items: ref('Percentile') },
            method: ref('Method'),
          },
          examples: [{ poolId: 123456, percentile: 99.5 }],
        },
        QueryResult: {
          type: 'object',
          required: ['quantile', 'count'],
          properties: { quantile: { type: 'number' }, count: { type: 'integer' } },
          examples: [{ quantile: 6.984999999999999, count: 4 }],
        },
        QueryResults: {
          type: 'object',
          required: ['quantiles', 'count'],
          properties: { quantiles: { type: 'array', items: { type: 'number' } }, count: { type: 'integer' } },
        },
        PoolSummary: {
          type: 'object',
          required: ['poolId', 'count', 'min', 'max'],
          properties: { poolId: ref('PoolId'), count: { type: 'integer' }, min: { type: 'number' }, max: { type: 'number' } },
        },
        PoolQuantiles: {
          type: 'object',
          required: ['poolId', 'count', 'method', 'quantiles'],
          properties: {
            poolId: ref('PoolId'),
            count: { type: 'integer' },
            method: ref('Method'),
            quantiles: {
              type: 'array',
              items: {
                type: 'object',
                required: ['percentile', 'value'],
                properties: { percentile: ref('Percentile'), value: { type: 'number' } },
              },
            },
          },
        },
        AppendResult: {
          type: 'object',
          required: ['status', 'count'],
          properties: { status: { type: 'string', enum: ['inserted', 'appended'] }, count: { type: 'integer' } },
        },
        PoolPage: {
          type: 'object',
          required: ['pools', 'next'],
          properties: {
            pools: {
              type: 'array',
              items: { type: 'object', required: ['poolId', 'count'], properties: { poolId: ref('PoolId'), count: { type: 'integer' } } },
            },
            next: { oneOf: [ref('PoolId'), { type: 'null' }], description: 'Pass as `after` for the next page.' },
          },
        },
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: {
              type: 'string',
              enum: [
                'invalid_json',
                'invalid_request',
                'pool_not_found',
                'payload_too_large',
                'not_found',
                'method_not_allowed',
                'unauthorized',
                'unavailable',
                'internal',
              ],
            },
            message: { type: 'string' },
            field: { type: 'string', description: 'JSON path of the offending field, e.g. poolValues[3].' },
          },
        },
      },
    },
  };
}
