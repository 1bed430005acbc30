// The route table (src/protocol/routes.ts) against what is derived from it:
// the OpenAPI document describes exactly its routes with every status each can
// return; the real server answers each route, answers 405 with the table's
// Allow on every other method of a known path, asks for the token exactly on
// the routes marked auth; and the router's pool hook (ServerDeps.poolGuard)
// sees the pool id of path and body routes alike and can refuse it.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { PoolqError } from '../src/core/errors.js';
import { evenShardMap, formatShardMap } from '../src/core/shard-map.js';
import { buildOpenApiDocument } from '../src/http/openapi.js';
import { Metrics } from '../src/http/metrics.js';
import type { PoolGuard } from '../src/http/router.js';
import { PoolqServer } from '../src/http/server.js';
import { loadNativeUws } from '../src/http/uws-loader.js';
import { allowTable, pathParameters, responsesOf, ROUTES, type HttpMethod, type RouteSpec } from '../src/protocol/routes.js';
import { openDurableStore, type DurableStore } from '../src/storage/durable-store.js';
import { createTestEngine } from './helpers/engines.js';
import { startServer, type ServerProcess } from './helpers/server-process.js';

const TOKEN = 'route-table-token';
const METHODS: HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** An import job the server knows (set once one was started), for GET /imports/{jobId}. */
let knownJobId = '0000000000000000';

/** A request path for a route template: pool 1, bucket 1, a file that exists, a known job. */
function concrete(route: RouteSpec): string {
  const asset = route.operationId === 'dashboardAsset' ? 'main.js' : 'swagger-ui.css';
  const params: Record<string, string> = { poolId: '1', bucket: '1', asset, jobId: knownJobId };
  const filled = route.path.replace(/\{([^}]+)\}/g, (_, name: string) => params[name]);
  const query: Record<string, string> = { getQuantiles: '?p=50', getRank: '?value=1', startImport: '?poolId=1' };
  return `${filled}${query[route.operationId] ?? ''}`;
}

/** A body the route accepts. */
function bodyFor(route: RouteSpec): string | undefined {
  if (route.body === undefined) return undefined;
  return {
    add: '{"poolId": 1, "poolValues": [1]}',
    query: '{"poolId": 1, "percentile": 50}',
    appendValues: '[1]',
    startImport: '1\n',
    importBucket: 'not an export', // refused (409: the shard owns bucket 1), but served
  }[route.operationId];
}

describe('the OpenAPI document', () => {
  const doc = buildOpenApiDocument() as {
    paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>;
  };

  it('has exactly one operation per route of the table, and no other', () => {
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    for (const route of ROUTES) expect(doc.paths[route.path][route.method.toLowerCase()].operationId).toBe(route.operationId);
  });

  it('declares every status an operation can return', () => {
    for (const route of ROUTES) {
      const statuses = Object.keys(doc.paths[route.path][route.method.toLowerCase()].responses).map(Number);
      expect(statuses.sort(), route.operationId).toEqual([...responsesOf(route).keys()].sort());
      const expected = [500, ...Object.keys(route.replies).map(Number)];
      if (route.auth) expect(statuses, route.operationId).toContain(401);
      if (route.body !== undefined) expected.push(400, 413);
      if (route.needsData) expected.push(503);
      if (route.poolId !== undefined) expected.push(400);
      for (const status of expected) expect(statuses, `${route.operationId} ${status}`).toContain(status);
    }
  });

  it('declares every path parameter of every template', () => {
    for (const route of ROUTES) {
      for (const name of pathParameters(route.path)) {
        const declared = route.poolId?.in === 'path' ? route.poolId.name === name : false;
        expect(declared || (route.parameters ?? []).some((p) => p.in === 'path' && p.name === name), `${route.path} {${name}}`).toBe(true);
      }
    }
  });
});

describe('the server answers the table', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    // cluster mode, as the only shard (every pool is its own), so the /cluster routes are served too
    const mapPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'poolq-routes-')), 'shard-map.json');
    writeFileSync(mapPath, formatShardMap(evenShardMap([{ name: 'only', address: '127.0.0.1:1' }])));
    server = await startServer(['--shard-map', mapPath, '--shard-name', 'only'], { env: { AUTH_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('serves every route (never a route-level 404 or 405), and asks for the token exactly where the table says', async () => {
    const started = await fetch(server.url('/imports?poolId=1'), {
      method: 'POST',
      body: '1\n',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    knownJobId = ((await started.json()) as { jobId: string }).jobId;
    for (const route of ROUTES) {
      const url = server.url(concrete(route));
      const withToken = await fetch(url, { method: route.method, body: bodyFor(route), headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await withToken.text();
      expect(
        [404, 405].includes(withToken.status) && /not_found"|method_not_allowed/.test(text) && !/pool_not_found/.test(text),
        `${route.operationId}: ${text}`,
      ).toBe(false);
      expect(withToken.status, `${route.operationId}: ${text}`).toBeLessThan(500);
      const without = await fetch(url, { method: route.method, body: bodyFor(route) });
      await without.arrayBuffer();
      if (route.auth) expect(without.status, route.operationId).toBe(401);
      else expect(without.status, route.operationId).not.toBe(401);
    }
  });

  it('answers 405 with the Allow of the table on every other method of a known path', async () => {
    for (const [template, methods] of allowTable()) {
      const route = ROUTES.find((r) => r.path === template)!;
      for (const method of METHODS.filter((m) => !methods.includes(m))) {
        const res = await fetch(server.url(concrete(route)), { method, body: method === 'GET' ? undefined : '{}' });
        const json = (await res.json()) as { error: string; message: string };
        expect(res.status, `${method} ${template}`).toBe(405);
        expect(json.error).toBe('method_not_allowed');
        expect(res.headers.get('allow'), `${method} ${template}`).toBe(methods.join(', '));
        expect(json.message).toContain(template);
      }
    }
  });
});

describe('the pool hook (ServerDeps.poolGuard)', () => {
  const seen: [string, number][] = [];
  let server: PoolqServer;
  let store: DurableStore;
  let base = '';

  beforeAll(async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'poolq-guard-'));
    const config = loadConfig(['--port', '0', '--data-dir', dataDir, '--fsync', 'never', '--workers', '0'], {});
    const engine = await createTestEngine('ts');
    const poolGuard: PoolGuard = (poolId, route) => {
      seen.push([route.operationId, poolId]);
      if (poolId % 2 === 0) return null;
      return { error: new PoolqError('not_found', `Pool ${poolId} is served elsewhere.`), headers: { 'x-pool-owner': 'elsewhere' } };
    };
    server = new PoolqServer({
      uws: loadNativeUws().uws,
      config,
      engine,
      metrics: new Metrics(),
      logger: pino({ level: 'silent' }),
      offload: null,
      poolGuard,
    });
    base = `http://127.0.0.1:${await server.listen()}`;
    store = await openDurableStore({ dataDir, fsync: 'never', engine, snapshotIntervalMs: 0, snapshotWalBytes: 0 });
    server.setReady(store);
  });
  afterAll(async () => {
    await server.drain(0);
    await store.close();
    server.close();
  });

  it('is asked about pool ids from the path and from the body, and its refusal (with headers) is the reply', async () => {
    const post = (p: string, body: string) => fetch(`${base}${p}`, { method: 'POST', body });
    expect((await post('/add', '{"poolId": 2, "poolValues": [1]}')).status).toBe(200);
    const refused = await post('/add', '{"poolId": 3, "poolValues": [1]}');
    expect(refused.status).toBe(404);
    expect(refused.headers.get('x-pool-owner')).toBe('elsewhere');
    expect(await refused.json()).toEqual({ error: 'not_found', message: 'Pool 3 is served elsewhere.' });
    expect((await post('/query', '{"poolId": 5, "percentiles": [50]}')).status).toBe(404);
    expect((await post('/pools/7/values', '[1]')).status).toBe(404);
    expect((await fetch(`${base}/pools/9`)).status).toBe(404);
    expect((await fetch(`${base}/pools/2`)).status).toBe(200);
    expect((await fetch(`${base}/pools/3`)).status).toBe(404);
    expect(seen).toEqual([
      ['add', 2],
      ['add', 3],
      ['query', 5],
      ['appendValues', 7],
      ['getPool', 9],
      ['getPool', 2],
      ['getPool', 3],
    ]);
    // Refused appends changed nothing.
    expect((await post('/query', '{"poolId": 2, "percentile": 50}')).status).toBe(200);
    expect(await (await fetch(`${base}/pools?limit=10`)).json()).toEqual({ pools: [{ poolId: 2, count: 1 }], next: null });
  });

  it('is not asked when the pool id itself is invalid (400 first)', async () => {
    const before = seen.length;
    const res = await fetch(`${base}/pools/abc`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { field: string }).field).toBe('poolId');
    expect(seen.length).toBe(before);
  });
});
