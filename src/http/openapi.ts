// The OpenAPI 3.1 description of the HTTP contract (docs/api.md), served at
// GET /openapi.json and rendered at GET /docs. It is derived from the route
// table (src/protocol/routes.ts) and the schemas it names: one operation per
// route, with every status responsesOf() says the operation can return.

import type { TSchema } from '@sinclair/typebox';
import { DEFAULT_MAX_BODY_BYTES } from '../protocol/limits.js';
import { pathParameters, responsesOf, ROUTES, type ParameterSpec, type RouteSpec, type SchemaRef } from '../protocol/routes.js';
import { SCHEMAS, type SchemaName } from '../protocol/schemas.js';

type Json = Record<string, unknown>;

const DESCRIPTION = [
  'Pools of float64 values with exact percentile queries, equal bit for bit to numpy.percentile.',
  'Appends are acknowledged only once durable (default --fsync=always).',
  'Every error is JSON `{"error", "message", "field"?}`.',
  `Request bodies are limited by --max-body (default ${DEFAULT_MAX_BODY_BYTES / 2 ** 20} MiB).`,
  'Any path not listed here answers 404 `not_found`; a listed path asked with a method it does not serve',
  'answers 405 `method_not_allowed` with an `Allow` header naming the methods it does.',
].join(' ');

/** A schema as JSON (TypeBox keeps its metadata under symbol keys, which JSON drops). */
function plain(schema: TSchema): Json {
  return JSON.parse(JSON.stringify(schema)) as Json;
}

function schemaOf(ref: SchemaRef): Json {
  const component = (name: SchemaName): Json => ({ $ref: `#/components/schemas/${name}` });
  if (typeof ref === 'string') return component(ref as SchemaName);
  if (Array.isArray(ref)) return { oneOf: (ref as readonly SchemaName[]).map(component) };
  return plain(ref as TSchema);
}

function content(schema: SchemaRef, contentType: string | readonly string[] = 'application/json'): Json {
  const types = typeof contentType === 'string' ? [contentType] : contentType;
  return Object.fromEntries(types.map((type) => [type, { schema: schemaOf(schema) }]));
}

function parameter(spec: ParameterSpec): Json {
  return {
    name: spec.name,
    in: spec.in,
    ...(spec.in === 'path' || spec.required === true ? { required: true } : {}),
    ...(spec.description !== undefined ? { description: spec.description } : {}),
    schema: schemaOf(spec.schema),
  };
}

function parametersOf(route: RouteSpec): Json[] {
  const declared = route.parameters ?? [];
  const path = pathParameters(route.path).map((name): ParameterSpec => {
    if (route.poolId?.in === 'path' && route.poolId.name === name)
      return { name, in: 'path', description: 'Pool identifier.', schema: 'PoolId' };
    const spec = declared.find((p) => p.in === 'path' && p.name === name);
    if (spec === undefined) throw new Error(`${route.method} ${route.path}: path parameter ${name} is not declared`);
    return spec;
  });
  return [...path, ...declared.filter((p) => p.in !== 'path')].map(parameter);
}

function operation(route: RouteSpec): Json {
  const responses: Json = {};
  for (const [status, response] of responsesOf(route)) {
    responses[String(status)] = {
      description: response.description,
      ...(response.headers !== undefined
        ? {
            headers: Object.fromEntries(
              Object.entries(response.headers).map(([name, text]) => [name, { description: text, schema: { type: 'string' } }]),
            ),
          }
        : {}),
      ...(response.schema !== undefined ? { content: content(response.schema, response.contentType) } : {}),
    };
  }
  const parameters = parametersOf(route);
  return {
    summary: route.summary,
    operationId: route.operationId,
    // Bearer auth is enforced only when the server runs with --auth-token, hence the empty alternative.
    security: route.auth ? [{ bearer: [] }, {}] : [],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body !== undefined
      ? {
          requestBody: {
            required: true,
            content: {
              ...content(route.body.schema, route.body.contentType),
              ...(route.body.binary !== undefined
                ? {
                    [route.body.binary.contentType]: {
                      schema: { type: 'string', format: 'binary', description: route.body.binary.description },
                    },
                  }
                : {}),
            },
          },
        }
      : {}),
    responses,
  };
}

export function buildOpenApiDocument(routes: readonly RouteSpec[] = ROUTES): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    paths[route.path][route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'poolq',
      version: '1.0.0',
      description: DESCRIPTION,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Required on data endpoints when the server runs with --auth-token.' },
      },
      schemas: Object.fromEntries(Object.entries(SCHEMAS).map(([name, schema]) => [name, plain(schema)])),
    },
  };
}
