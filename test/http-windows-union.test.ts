// Retention windows and percentiles across pools over HTTP, against the real
// server process: PUT/DELETE /pools/{poolId}/retention, ?windowSeconds= on the
// request that creates a pool, the window in GET /pools/{poolId}, values
// leaving a 1-second window, POST /query with poolIds and GET /quantiles held
// to the sort-based oracle, every malformed request a 4xx that changes
// nothing, the window surviving a SIGKILL, and the memory gauges on /metrics.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUANTILE_METHODS } from '../src/core/methods.js';
import { bitsHex, quantileOfSorted, seededRandom, sortedCopy } from './helpers/oracle.js';
import { postJson, startServer, type ServerProcess } from './helpers/server-process.js';

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

type Json = ReturnType<typeof JSON.parse>;

async function call(method: string, path: string, body?: unknown, on: ServerProcess = server): Promise<{ status: number; json: Json }> {
  const res = await fetch(on.url(path), {
    method,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Json;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('retention windows', () => {
  it('PUT sets a window (creating the pool), GET shows it, DELETE removes it; values leave a 1 s window', async () => {
    expect(await call('PUT', '/pools/7001/retention', { windowSeconds: 1 })).toEqual({
      status: 201,
      json: { poolId: 7001, windowSeconds: 1 },
    });
    expect(await call('PUT', '/pools/7001/retention', { windowSeconds: 1 })).toEqual({
      status: 200,
      json: { poolId: 7001, windowSeconds: 1 },
    });
    expect((await call('GET', '/pools/7001')).json).toEqual({ poolId: 7001, count: 0, min: null, max: null, windowSeconds: 1 });
    expect(await postJson(server.url('/query'), { poolId: 7001, percentile: 50 })).toEqual({
      status: 200,
      json: { quantile: null, count: 0 },
    });
    expect((await call('POST', '/pools/7001/values', [3, 1, 2])).json).toEqual({ status: 'appended', count: 3 });
    expect(await postJson(server.url('/query'), { poolId: 7001, percentiles: [0, 50, 100] })).toEqual({
      status: 200,
      json: { quantiles: [1, 2, 3], count: 3 },
    });
    await sleep(2100); // a 1 s window keeps values at most 2 s (bucket of 1 s + window)
    expect(await postJson(server.url('/query'), { poolId: 7001, percentile: 50 })).toEqual({
      status: 200,
      json: { quantile: null, count: 0 },
    });
    expect((await call('GET', '/pools/7001/quantiles?p=50')).json).toMatchObject({
      count: 0,
      quantiles: [{ percentile: 50, value: null }],
    });
    expect(await call('DELETE', '/pools/7001/retention')).toEqual({ status: 204, json: null });
    expect((await call('POST', '/pools/7001/values', [9])).status).toBe(200);
    await sleep(2100);
    expect((await call('GET', '/pools/7001')).json).toEqual({ poolId: 7001, count: 1, min: 9, max: 9, windowSeconds: null });
  });

  it('?windowSeconds= on the request that creates a pool sets its window; on an existing pool it changes nothing', async () => {
    expect(await call('POST', '/pools/7002/values?windowSeconds=300', [1, 2])).toEqual({
      status: 201,
      json: { status: 'inserted', count: 2 },
    });
    expect((await call('GET', '/pools/7002')).json).toMatchObject({ count: 2, windowSeconds: 300 });
    expect(await call('POST', '/pools/7002/values?windowSeconds=60', [3])).toEqual({ status: 200, json: { status: 'appended', count: 3 } });
    expect((await call('GET', '/pools/7002')).json).toMatchObject({ windowSeconds: 300 });
  });

  it.each<[string, string, string, unknown, string]>([
    ['window 0', 'PUT', '/pools/7003/retention', { windowSeconds: 0 }, 'windowSeconds'],
    ['fractional window', 'PUT', '/pools/7003/retention', { windowSeconds: 1.5 }, 'windowSeconds'],
    ['window over ten years', 'PUT', '/pools/7003/retention', { windowSeconds: 315_360_001 }, 'windowSeconds'],
    ['window as a string', 'PUT', '/pools/7003/retention', { windowSeconds: '60' }, 'windowSeconds'],
    ['no window', 'PUT', '/pools/7003/retention', {}, 'windowSeconds'],
    ['null window (DELETE removes it)', 'PUT', '/pools/7003/retention', { windowSeconds: null }, 'windowSeconds'],
    ['a body that is not an object', 'PUT', '/pools/7003/retention', [60], '$'],
    ['bad pool id', 'PUT', '/pools/abc/retention', { windowSeconds: 60 }, 'poolId'],
    ['bad window on creation', 'POST', '/pools/7003/values?windowSeconds=0', [1], 'windowSeconds'],
    ['window on creation not a number', 'POST', '/pools/7003/values?windowSeconds=1e3', [1], 'windowSeconds'],
  ])('%s → 400 naming the field, nothing created', async (_name, method, path, body, field) => {
    const reply = await call(method, path, body);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ error: 'invalid_request', field });
    expect((await call('GET', '/pools/7003')).status).toBe(404);
  });

  it('DELETE of the window of an unknown pool is 404; invalid JSON is 400', async () => {
    expect(await call('DELETE', '/pools/7004/retention')).toMatchObject({ status: 404, json: { error: 'pool_not_found' } });
    expect(await call('PUT', '/pools/7004/retention', '{"windowSeconds": 6')).toMatchObject({
      status: 400,
      json: { error: 'invalid_json' },
    });
    expect(await call('GET', '/pools/7004/retention')).toMatchObject({ status: 405 });
  });
});

describe('percentiles across pools', () => {
  const pools = new Map<number, number[]>();

  beforeAll(async () => {
    const random = seededRandom(77);
    for (let id = 8000; id < 8012; id++) {
      const values = Array.from({ length: 50 + (id % 7) * 40 }, () => (id % 2 === 0 ? Math.floor(random() * 20) : (random() - 0.5) * 1e6));
      if (id === 8003) values.push(-0, 0, -0);
      pools.set(id, values);
      // Two appends each, so the pools are made of several runs.
      expect((await postJson(server.url('/add'), { poolId: id, poolValues: values.slice(0, 30) })).status).toBe(200);
      expect((await postJson(server.url('/add'), { poolId: id, poolValues: values.slice(30) })).status).toBe(200);
    }
  });

  function oracle(ids: readonly number[], ps: readonly number[], method: (typeof QUANTILE_METHODS)[number]): string[] {
    const union = sortedCopy([...new Set(ids)].flatMap((id) => pools.get(id)!));
    return ps.map((p) => bitsHex(quantileOfSorted(union, p, method)));
  }

  it('POST /query with poolIds answers numpy.percentile of the concatenation, every method, each pool once', async () => {
    const ids = [8000, 8001, 8003, 8003, 8006, 8011];
    const ps = [0, 1e-9, 12.5, 50, 99.5, 100];
    const count = [...new Set(ids)].reduce((n, id) => n + pools.get(id)!.length, 0);
    for (const method of QUANTILE_METHODS) {
      const reply = await postJson(server.url('/query'), { poolIds: ids, percentiles: ps, method });
      expect(reply.status).toBe(200);
      expect(reply.json.count).toBe(count);
      expect((reply.json.quantiles as number[]).map(bitsHex), method).toEqual(oracle(ids, ps, method));
    }
    const one = await postJson(server.url('/query'), { poolIds: [8002, 8005], percentile: 99 });
    expect(Object.keys(one.json)).toEqual(['quantile', 'count']);
    expect(one.json.count).toBe(pools.get(8002)!.length + pools.get(8005)!.length);
    expect(bitsHex(one.json.quantile)).toBe(oracle([8002, 8005], [99], 'linear')[0]);
  });

  it('GET /quantiles?pools=…&p=… gives the same answers', async () => {
    const reply = await call('GET', '/quantiles?pools=8000,8004,8009&p=50,90,99.5&method=hazen');
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ pools: [8000, 8004, 8009], method: 'hazen' });
    expect(reply.json.quantiles.map((q: { percentile: number }) => q.percentile)).toEqual([50, 90, 99.5]);
    expect(reply.json.quantiles.map((q: { value: number }) => bitsHex(q.value))).toEqual(
      oracle([8000, 8004, 8009], [50, 90, 99.5], 'hazen'),
    );
  });

  it('a missing pool is 404 naming it', async () => {
    const reply = await postJson(server.url('/query'), { poolIds: [8000, 424242], percentile: 50 });
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({ error: 'pool_not_found' });
    expect(reply.json.message).toContain('424242');
    const get = await call('GET', '/quantiles?pools=424243&p=50');
    expect(get.status).toBe(404);
    expect(get.json.message).toContain('424243');
  });

  it.each<[string, unknown, string]>([
    ['both poolId and poolIds', { poolId: 8000, poolIds: [8001], percentile: 50 }, 'poolIds'],
    ['empty poolIds', { poolIds: [], percentile: 50 }, 'poolIds'],
    ['1001 pools', { poolIds: Array.from({ length: 1001 }, (_, i) => 8000 + (i % 12)), percentile: 50 }, 'poolIds'],
    ['a bad id in poolIds', { poolIds: [8000, -1], percentile: 50 }, 'poolIds[1]'],
    ['poolIds not an array', { poolIds: 8000, percentile: 50 }, 'poolIds'],
    ['bad percentile', { poolIds: [8000], percentile: 101 }, 'percentile'],
  ])('POST /query with %s → 400 naming %s', async (_name, body, field) => {
    const reply = await postJson(server.url('/query'), body);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ error: 'invalid_request', field });
  });

  it.each<[string, string]>([
    ['/quantiles?p=50', 'pools'],
    ['/quantiles?pools=&p=50', 'pools'],
    ['/quantiles?pools=8000,x&p=50', 'pools[1]'],
    ['/quantiles?pools=8000', 'p'],
    ['/quantiles?pools=8000&p=50&method=bogus', 'method'],
  ])('GET %s → 400 naming %s', async (path, field) => {
    const reply = await call('GET', path);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ error: 'invalid_request', field });
  });
});

describe('durability and figures', () => {
  it('a window survives a SIGKILL; /metrics shows stored bytes, run bytes and RSS', async () => {
    const own = await startServer();
    try {
      expect((await call('PUT', '/pools/9001/retention', { windowSeconds: 3600 }, own)).status).toBe(201);
      const repeats = Array.from({ length: 5000 }, (_, i) => i % 10);
      expect((await call('POST', '/pools/9001/values', repeats, own)).status).toBe(200);
      const metrics = await (await fetch(own.url('/metrics'))).text();
      const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
      expect(gauge('poolq_stored_value_bytes')).toBe(5000 * 8);
      expect(gauge('poolq_run_buffer_bytes')).toBeLessThan(5000 * 8); // ten distinct values: a counted run
      expect(gauge('poolq_counted_runs')).toBe(1);
      expect(gauge('poolq_windowed_pools')).toBe(1);
      expect(gauge('process_resident_memory_bytes')).toBeGreaterThan(0);
      await own.kill();
      const again = await startServer([], { dataDir: own.dataDir });
      try {
        expect((await call('GET', '/pools/9001', undefined, again)).json).toEqual({
          poolId: 9001,
          count: 5000,
          min: 0,
          max: 9,
          windowSeconds: 3600,
        });
      } finally {
        await again.stop();
      }
    } finally {
      await own.stop();
    }
  });
});
