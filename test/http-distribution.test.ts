// GET /pools/{poolId}/histogram and /rank over real HTTP: the reply shapes,
// -0 in JSON, the query parameters' refusals (400 naming the field), unknown
// pools, other methods, and the OpenAPI document listing both.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from './helpers/server-process.js';

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer();
  await fetch(server.url('/add'), { method: 'POST', body: '{"poolId": 1, "poolValues": [10, 2, 1, 3, 2]}' });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function get(path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(server.url(path));
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('GET /pools/{poolId}/histogram', () => {
  it('answers numpy.histogram bins and the pool extremes', async () => {
    expect(await get('/pools/1/histogram?bins=3')).toEqual({
      status: 200,
      json: {
        poolId: 1,
        count: 5,
        min: 1,
        max: 10,
        below: 0,
        above: 0,
        bins: [
          { lo: 1, hi: 4, count: 4 },
          { lo: 4, hi: 7, count: 0 },
          { lo: 7, hi: 10, count: 1 },
        ],
      },
    });
  });

  it('takes 10 bins by default and an asked range, counting what lies outside it', async () => {
    const { json } = await get('/pools/1/histogram');
    expect((json.bins as unknown[]).length).toBe(10);
    expect(await get('/pools/1/histogram?bins=2&min=2&max=4')).toMatchObject({
      status: 200,
      json: {
        below: 1,
        above: 1,
        bins: [
          { lo: 2, hi: 3, count: 2 },
          { lo: 3, hi: 4, count: 1 },
        ],
      },
    });
  });

  it('refuses bad parameters with 400 naming them, and unknown pools with 404', async () => {
    for (const [query, field] of [
      ['bins=0', 'bins'],
      ['bins=10001', 'bins'],
      ['bins=2.5', 'bins'],
      ['bins=abc', 'bins'],
      ['min=x', 'min'],
      ['max=1e400', 'max'],
      ['min=5&max=1', 'max'],
    ]) {
      expect(await get(`/pools/1/histogram?${query}`), query).toMatchObject({ status: 400, json: { error: 'invalid_request', field } });
    }
    expect(await get('/pools/2/histogram')).toMatchObject({ status: 404, json: { error: 'pool_not_found' } });
    expect(await get('/pools/x/histogram')).toMatchObject({ status: 400, json: { field: 'poolId' } });
    const res = await fetch(server.url('/pools/1/histogram'), { method: 'POST' });
    expect(res.status).toBe(405);
  });
});

describe('GET /pools/{poolId}/rank', () => {
  it('answers below, equal and the CDF at the value', async () => {
    expect(await get('/pools/1/rank?value=2')).toEqual({ status: 200, json: { poolId: 1, count: 5, below: 1, equal: 2, fraction: 0.6 } });
    expect(await get('/pools/1/rank?value=-1e300')).toMatchObject({ json: { below: 0, equal: 0, fraction: 0 } });
  });

  it('refuses a missing or non-finite value with 400, and unknown pools with 404', async () => {
    for (const query of ['', 'value=', 'value=abc', 'value=NaN', 'value=Infinity']) {
      expect(await get(`/pools/1/rank?${query}`), query).toMatchObject({ status: 400, json: { error: 'invalid_request', field: 'value' } });
    }
    expect(await get('/pools/3/rank?value=1')).toMatchObject({ status: 404, json: { error: 'pool_not_found' } });
  });
});

describe('the OpenAPI document', () => {
  it('lists the distribution reads, the imports and the dashboard', async () => {
    const { json } = await get('/openapi.json');
    const paths = json.paths as Record<string, Record<string, { operationId: string }>>;
    expect(paths['/pools/{poolId}/histogram'].get.operationId).toBe('getHistogram');
    expect(paths['/pools/{poolId}/rank'].get.operationId).toBe('getRank');
    expect(paths['/imports'].post.operationId).toBe('startImport');
    expect(paths['/imports/{jobId}'].get.operationId).toBe('getImport');
    expect(paths['/'].get.operationId).toBe('dashboard');
  });
});
