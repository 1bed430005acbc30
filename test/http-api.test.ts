// The HTTP contract (docs/api.md) against the real server process: every
// endpoint, the seed example, 50+ malformed requests (each a 4xx with the right
// code and no state change), keep-alive, pipelining and concurrent appends.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startServer, type ServerProcess } from './helpers/server-process.js';

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer(['--max-body', '16MiB']);
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** A reply body as JSON.parse returns it; each test reads the fields it expects. */
type Json = ReturnType<typeof JSON.parse>;

async function get(path: string): Promise<{ status: number; json: Json; headers: Headers; text: string }> {
  const res = await fetch(server.url(path));
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, json, headers: res.headers, text };
}

/** Sends raw bytes on one connection and collects everything until the server closes or `until` matches. */
function rawExchange(payload: string | Buffer, until: (text: string) => boolean, endAfterWrite = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1');
    let text = '';
    const finish = () => {
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (until(text)) finish();
    });
    socket.on('close', finish);
    socket.on('error', reject);
    socket.write(payload, () => {
      if (endAfterWrite) socket.end();
    });
    setTimeout(finish, 5000);
  });
}

describe('seed endpoints', () => {
  it('answers the seed example exactly', async () => {
    expect(await postJson(server.url('/add'), { poolId: 123456, poolValues: [1, 7, 2, 6] })).toEqual({ status: 200, json: 'Inserted' });
    expect(await postJson(server.url('/query'), { poolId: 123456, percentile: 99.5 })).toEqual({
      status: 200,
      json: { quantile: 6.984999999999999, count: 4 },
    });
    expect(await postJson(server.url('/add'), { poolId: 123456, poolValues: [3] })).toEqual({ status: 200, json: 'Appended' });
    const r = await postJson(server.url('/query'), { poolId: 123456, percentiles: [0, 50, 100], method: 'lower' });
    expect(r).toEqual({ status: 200, json: { quantiles: [1, 3, 7], count: 5 } });
  });

  it('replies application/json with the exact bytes', async () => {
    const res = await fetch(server.url('/add'), {
      method: 'POST',
      body: '{"poolId": 9, "poolValues": [1]}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.text()).toBe('"Inserted"');
  });

  it('keeps the sign of a -0 quantile', async () => {
    await postJson(server.url('/add'), '{"poolId": 4242, "poolValues": [-0]}'); // JSON.stringify would drop the sign
    const res = await fetch(server.url('/query'), { method: 'POST', body: '{"poolId":4242,"percentile":50,"method":"lower"}' });
    expect(await res.text()).toBe('{"quantile":-0,"count":1}');
  });

  it('ignores unknown fields and lets the last duplicate key win', async () => {
    expect(await postJson(server.url('/add'), '{"poolId": 1, "poolId": 31337, "poolValues": [5], "extra": {"x": 1}}')).toEqual({
      status: 200,
      json: 'Inserted',
    });
    expect((await get('/pools/31337')).json).toEqual({ poolId: 31337, count: 1, min: 5, max: 5, windowSeconds: null });
  });
});

describe('resource endpoints', () => {
  it('creates, appends, summarises, lists, queries and deletes', async () => {
    let res = await fetch(server.url('/pools/500/values'), { method: 'POST', body: '[3, 1, 2]' });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ status: 'inserted', count: 3 });
    res = await fetch(server.url('/pools/500/values'), { method: 'POST', body: '[10]' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'appended', count: 4 });
    expect((await get('/pools/500')).json).toEqual({ poolId: 500, count: 4, min: 1, max: 10, windowSeconds: null });
    const q = await get('/pools/500/quantiles?p=0,50,100&method=linear');
    expect(q.json).toEqual({
      poolId: 500,
      count: 4,
      method: 'linear',
      quantiles: [
        { percentile: 0, value: 1 },
        { percentile: 50, value: 2.5 },
        { percentile: 100, value: 10 },
      ],
    });
    res = await fetch(server.url('/pools/500'), { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect((await get('/pools/500')).status).toBe(404);
    expect((await fetch(server.url('/pools/500'), { method: 'DELETE' })).status).toBe(404);
  });

  it('pages through pools in ascending id order', async () => {
    for (const id of [9001, 9003, 9002]) await postJson(server.url('/add'), { poolId: id, poolValues: [id] });
    const all: number[] = [];
    let after: number | null = null;
    for (let guard = 0; guard < 100; guard++) {
      const page: Json = (await get(`/pools?limit=2${after === null ? '' : `&after=${after}`}`)).json;
      all.push(...page.pools.map((p: { poolId: number }) => p.poolId));
      after = page.next;
      if (after === null) break;
    }
    expect(all).toEqual([...all].sort((a, b) => a - b));
    expect(all).toEqual(expect.arrayContaining([9001, 9002, 9003]));
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('operations endpoints', () => {
  it('healthz, readyz, metrics, openapi, docs', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).json).toEqual({ status: 'ready' });
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/poolq_http_requests_total\{route="POST \/add",status="200"\} \d+/);
    expect(metrics.text).toMatch(/poolq_values \d+/);
    expect(metrics.text).toMatch(/nodejs_eventloop_lag_seconds/);

    // The latency histogram of /query: cumulative buckets ending at +Inf = _count = requests_total summed over statuses.
    const before = await get('/metrics');
    const queried = (text: string) => {
      const line = (metric: string) =>
        [...text.matchAll(new RegExp(`^${metric}\\{(.*)\\} (\\S+)$`, 'gm'))].filter((m) => m[1].includes('route="POST /query"'));
      const buckets = line('poolq_http_request_duration_seconds_bucket').map((m) => Number(m[2]));
      const count = Number(line('poolq_http_request_duration_seconds_count')[0]?.[2] ?? 0);
      const total = line('poolq_http_requests_total').reduce((n, m) => n + Number(m[2]), 0);
      return { buckets, count, total };
    };
    const a = queried(before.text);
    expect((await postJson(server.url('/query'), { poolId: 424242, percentile: 50 })).status).toBe(404);
    expect((await postJson(server.url('/query'), { poolId: 1, percentile: 'x' })).status).toBe(400);
    const b = queried((await get('/metrics')).text);
    expect(b.count).toBe(a.count + 2);
    expect(b.total).toBe(b.count);
    expect(b.buckets.length).toBe(14);
    expect(b.buckets[13]).toBe(b.count);
    for (let i = 1; i < b.buckets.length; i++) expect(b.buckets[i]).toBeGreaterThanOrEqual(b.buckets[i - 1]);
    const doc = (await get('/openapi.json')).json;
    expect(doc.openapi).toBe('3.1.0');
    for (const p of [
      '/add',
      '/query',
      '/pools',
      '/pools/{poolId}',
      '/pools/{poolId}/quantiles',
      '/pools/{poolId}/values',
      '/healthz',
      '/readyz',
      '/metrics',
      '/openapi.json',
      '/docs',
    ]) {
      expect(doc.paths[p], p).toBeDefined();
    }
    const docs = await get('/docs');
    expect(docs.headers.get('content-type')).toMatch(/text\/html/);
    expect(docs.text).toContain('/docs/swagger-ui-bundle.js');
    const bundle = await fetch(server.url('/docs/swagger-ui-bundle.js'));
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });
});

interface BadCase {
  name: string;
  method?: string;
  path: string;
  body?: string;
  status: number;
  code: string;
  field?: string;
}

const add = (body: unknown) => JSON.stringify(body);
const BAD: BadCase[] = [
  // poolId
  { name: 'poolId missing', path: '/add', body: add({ poolValues: [1] }), status: 400, code: 'invalid_request', field: 'poolId' },
  {
    name: 'poolId string',
    path: '/add',
    body: add({ poolId: '1', poolValues: [1] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId negative',
    path: '/add',
    body: add({ poolId: -1, poolValues: [1] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId fraction',
    path: '/add',
    body: add({ poolId: 1.5, poolValues: [1] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId 1e400',
    path: '/add',
    body: '{"poolId": 1e400, "poolValues": [1]}',
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId 2^53',
    path: '/add',
    body: '{"poolId": 9007199254740992, "poolValues": [1]}',
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId null',
    path: '/add',
    body: add({ poolId: null, poolValues: [1] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId boolean',
    path: '/add',
    body: add({ poolId: true, poolValues: [1] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId array',
    path: '/add',
    body: add({ poolId: [1], poolValues: [1] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  {
    name: 'poolId object',
    path: '/add',
    body: add({ poolId: { id: 1 }, poolValues: [1] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  // poolValues
  { name: 'values missing', path: '/add', body: add({ poolId: 1 }), status: 400, code: 'invalid_request', field: 'poolValues' },
  {
    name: 'values empty',
    path: '/add',
    body: add({ poolId: 1, poolValues: [] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues',
  },
  {
    name: 'values not array',
    path: '/add',
    body: add({ poolId: 1, poolValues: 5 }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues',
  },
  {
    name: 'values string',
    path: '/add',
    body: add({ poolId: 1, poolValues: '1,2' }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues',
  },
  {
    name: 'values object',
    path: '/add',
    body: add({ poolId: 1, poolValues: { 0: 1 } }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues',
  },
  {
    name: 'values string element',
    path: '/add',
    body: add({ poolId: 1, poolValues: [1, 2, 3, '4'] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues[3]',
  },
  {
    name: 'values null element',
    path: '/add',
    body: add({ poolId: 1, poolValues: [null] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues[0]',
  },
  {
    name: 'values nested array',
    path: '/add',
    body: add({ poolId: 1, poolValues: [1, [2]] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues[1]',
  },
  {
    name: 'values 1e400',
    path: '/add',
    body: '{"poolId": 1, "poolValues": [1, 1e400]}',
    status: 400,
    code: 'invalid_request',
    field: 'poolValues[1]',
  },
  {
    name: 'values -1e400',
    path: '/add',
    body: '{"poolId": 1, "poolValues": [-1e400]}',
    status: 400,
    code: 'invalid_request',
    field: 'poolValues[0]',
  },
  {
    name: 'values boolean',
    path: '/add',
    body: add({ poolId: 1, poolValues: [true] }),
    status: 400,
    code: 'invalid_request',
    field: 'poolValues[0]',
  },
  { name: 'values NaN literal', path: '/add', body: '{"poolId": 1, "poolValues": [NaN]}', status: 400, code: 'invalid_json' },
  { name: 'values Infinity literal', path: '/add', body: '{"poolId": 1, "poolValues": [Infinity]}', status: 400, code: 'invalid_json' },
  // body shape
  { name: 'body empty', path: '/add', body: '', status: 400, code: 'invalid_json' },
  { name: 'body invalid json', path: '/add', body: '{poolId: 1}', status: 400, code: 'invalid_json' },
  { name: 'body truncated json', path: '/add', body: '{"poolId": 1, "poolValues": [1, 2', status: 400, code: 'invalid_json' },
  { name: 'body array', path: '/add', body: '[1,2]', status: 400, code: 'invalid_request', field: '$' },
  { name: 'body string', path: '/add', body: '"hello"', status: 400, code: 'invalid_request', field: '$' },
  { name: 'body null', path: '/add', body: 'null', status: 400, code: 'invalid_request', field: '$' },
  { name: 'body number', path: '/query', body: '42', status: 400, code: 'invalid_request', field: '$' },
  { name: 'body trailing garbage', path: '/add', body: '{"poolId": 1, "poolValues": [1]} x', status: 400, code: 'invalid_json' },
  // percentile
  { name: 'percentile missing', path: '/query', body: add({ poolId: 123456 }), status: 400, code: 'invalid_request', field: 'percentile' },
  {
    name: 'percentile -1',
    path: '/query',
    body: add({ poolId: 123456, percentile: -1 }),
    status: 400,
    code: 'invalid_request',
    field: 'percentile',
  },
  {
    name: 'percentile 100.0001',
    path: '/query',
    body: add({ poolId: 123456, percentile: 100.0001 }),
    status: 400,
    code: 'invalid_request',
    field: 'percentile',
  },
  {
    name: 'percentile string',
    path: '/query',
    body: add({ poolId: 123456, percentile: '50' }),
    status: 400,
    code: 'invalid_request',
    field: 'percentile',
  },
  {
    name: 'percentile null',
    path: '/query',
    body: add({ poolId: 123456, percentile: null }),
    status: 400,
    code: 'invalid_request',
    field: 'percentile',
  },
  {
    name: 'percentile 1e400',
    path: '/query',
    body: '{"poolId": 123456, "percentile": 1e400}',
    status: 400,
    code: 'invalid_request',
    field: 'percentile',
  },
  {
    name: 'percentiles empty',
    path: '/query',
    body: add({ poolId: 123456, percentiles: [] }),
    status: 400,
    code: 'invalid_request',
    field: 'percentiles',
  },
  {
    name: 'percentiles bad element',
    path: '/query',
    body: add({ poolId: 123456, percentiles: [50, 101] }),
    status: 400,
    code: 'invalid_request',
    field: 'percentiles[1]',
  },
  {
    name: 'percentiles not array',
    path: '/query',
    body: add({ poolId: 123456, percentiles: 50 }),
    status: 400,
    code: 'invalid_request',
    field: 'percentiles',
  },
  {
    name: 'both percentile forms',
    path: '/query',
    body: add({ poolId: 123456, percentile: 5, percentiles: [5] }),
    status: 400,
    code: 'invalid_request',
    field: 'percentiles',
  },
  {
    name: 'unknown method',
    path: '/query',
    body: add({ poolId: 123456, percentile: 5, method: 'cubic' }),
    status: 400,
    code: 'invalid_request',
    field: 'method',
  },
  {
    name: 'method number',
    path: '/query',
    body: add({ poolId: 123456, percentile: 5, method: 7 }),
    status: 400,
    code: 'invalid_request',
    field: 'method',
  },
  {
    name: 'query poolId string',
    path: '/query',
    body: add({ poolId: 'abc', percentile: 5 }),
    status: 400,
    code: 'invalid_request',
    field: 'poolId',
  },
  { name: 'query unknown pool', path: '/query', body: add({ poolId: 987654321, percentile: 5 }), status: 404, code: 'pool_not_found' },
  // resource endpoints
  { name: 'pool path not a number', method: 'GET', path: '/pools/abc', status: 400, code: 'invalid_request', field: 'poolId' },
  { name: 'pool path negative', method: 'GET', path: '/pools/-5', status: 400, code: 'invalid_request', field: 'poolId' },
  { name: 'pool path too large', method: 'GET', path: '/pools/99999999999999999', status: 400, code: 'invalid_request', field: 'poolId' },
  { name: 'pool path unknown', method: 'GET', path: '/pools/424242', status: 404, code: 'pool_not_found' },
  { name: 'quantiles without p', method: 'GET', path: '/pools/123456/quantiles', status: 400, code: 'invalid_request', field: 'p' },
  { name: 'quantiles bad p', method: 'GET', path: '/pools/123456/quantiles?p=50,abc', status: 400, code: 'invalid_request', field: 'p[1]' },
  {
    name: 'quantiles p out of range',
    method: 'GET',
    path: '/pools/123456/quantiles?p=101',
    status: 400,
    code: 'invalid_request',
    field: 'p[0]',
  },
  {
    name: 'quantiles bad method',
    method: 'GET',
    path: '/pools/123456/quantiles?p=5&method=foo',
    status: 400,
    code: 'invalid_request',
    field: 'method',
  },
  { name: 'values body object', path: '/pools/77/values', body: add({ values: [1] }), status: 400, code: 'invalid_request', field: 'body' },
  { name: 'values body bad element', path: '/pools/77/values', body: '[1, "2"]', status: 400, code: 'invalid_request', field: 'body[1]' },
  { name: 'values path bad id', path: '/pools/x/values', body: '[1]', status: 400, code: 'invalid_request', field: 'poolId' },
  { name: 'list bad limit', method: 'GET', path: '/pools?limit=0', status: 400, code: 'invalid_request', field: 'limit' },
  { name: 'list huge limit', method: 'GET', path: '/pools?limit=100000', status: 400, code: 'invalid_request', field: 'limit' },
  { name: 'list bad after', method: 'GET', path: '/pools?after=-1', status: 400, code: 'invalid_request', field: 'after' },
  { name: 'delete bad id', method: 'DELETE', path: '/pools/1.5', status: 400, code: 'invalid_request', field: 'poolId' },
  // routes and methods
  { name: 'GET /add', method: 'GET', path: '/add', status: 405, code: 'method_not_allowed' },
  { name: 'PUT /query', method: 'PUT', path: '/query', body: '{}', status: 405, code: 'method_not_allowed' },
  { name: 'POST /pools/1', method: 'POST', path: '/pools/1', body: '{}', status: 405, code: 'method_not_allowed' },
  { name: 'POST /healthz', method: 'POST', path: '/healthz', body: '{}', status: 405, code: 'method_not_allowed' },
  { name: 'unknown route', method: 'GET', path: '/nope', status: 404, code: 'not_found' },
  { name: 'unknown nested route', method: 'POST', path: '/add/extra', body: '{}', status: 404, code: 'not_found' },
];

describe('malformed requests', () => {
  it(`answers all ${BAD.length} with the right 4xx and JSON error, changing nothing`, async () => {
    expect(BAD.length).toBeGreaterThanOrEqual(50);
    const before = (await get('/pools?limit=1000')).json;
    const seedBefore = await postJson(server.url('/query'), { poolId: 123456, percentiles: [0, 50, 100] });
    for (const c of BAD) {
      const res = await fetch(server.url(c.path), { method: c.method ?? 'POST', body: c.body });
      const text = await res.text();
      expect(res.status, `${c.name}: ${text}`).toBe(c.status);
      expect(res.headers.get('content-type'), c.name).toBe('application/json; charset=utf-8');
      const json = JSON.parse(text);
      expect(json.error, c.name).toBe(c.code);
      expect(typeof json.message, c.name).toBe('string');
      expect(json.message.length, c.name).toBeGreaterThan(10);
      if (c.field !== undefined) expect(json.field, c.name).toBe(c.field);
      if (c.status === 405) expect(res.headers.get('allow'), c.name).toBeTruthy();
    }
    expect((await get('/pools?limit=1000')).json).toEqual(before);
    expect(await postJson(server.url('/query'), { poolId: 123456, percentiles: [0, 50, 100] })).toEqual(seedBefore);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('refuses a 17 MiB body with 413 from its content-length, without keeping it', async () => {
    const big = Buffer.alloc(17 * 1024 * 1024, 0x31);
    const res = await fetch(server.url('/add'), { method: 'POST', body: big });
    // The body is read and dropped, then refused (lingering): fetch sees the reply.
    expect(res.status).toBe(413);
    expect((await res.json()).error).toBe('payload_too_large');
    const head = `POST /add HTTP/1.1\r\nHost: x\r\nContent-Length: ${17 * 1024 * 1024}\r\n\r\n`;
    const text = await rawExchange(Buffer.concat([Buffer.from(head), big]), (t) => t.includes('}'));
    expect(text).toMatch(/^HTTP\/1\.1 413/);
    expect(text).toContain('"error":"payload_too_large"');
  });

  it('refuses an oversize chunked body with 413 while streaming', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x31);
    const head = 'POST /add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const parts: Buffer[] = [Buffer.from(head)];
    for (let i = 0; i < 18; i++) parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    parts.push(Buffer.from('0\r\n\r\n'));
    const text = await rawExchange(Buffer.concat(parts), (t) => t.includes('}'));
    expect(text).toMatch(/^HTTP\/1\.1 413/);
  });

  it('survives a truncated body (client hangs up mid-body) and keeps serving', async () => {
    const text = await rawExchange('POST /add HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"poolId": 1', () => false, true);
    expect(text).toBe('');
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/pools/1')).status).toBe(404);
  });
});

describe('large bodies (parsed and sorted on a worker from 1 MiB / 65 536 values)', () => {
  const bigValues = Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 200_000);

  it('appends a 200 000-value body through /add and /pools/{id}/values with exact results', async () => {
    expect(await postJson(server.url('/add'), { poolId: 880, poolValues: bigValues })).toEqual({ status: 200, json: 'Inserted' });
    const res = await fetch(server.url('/pools/881/values'), { method: 'POST', body: JSON.stringify(bigValues) });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ status: 'inserted', count: 200_000 });
    for (const id of [880, 881]) {
      const q = await postJson(server.url('/query'), { poolId: id, percentiles: [0, 50, 100], method: 'lower' });
      expect(q.json).toEqual({ quantiles: [0, 99_999, 199_999], count: 200_000 });
    }
  });

  it('names the bad element of a large body, like the inline path', async () => {
    const bad = bigValues.slice();
    (bad as unknown[])[123_456] = 'x';
    const r = await postJson(server.url('/add'), { poolId: 882, poolValues: bad });
    expect(r.status).toBe(400);
    expect(r.json.field).toBe('poolValues[123456]');
    const res = await fetch(server.url('/pools/882/values'), { method: 'POST', body: JSON.stringify(bad) });
    expect(res.status).toBe(400);
    expect((await res.json()).field).toBe('body[123456]');
    expect((await get('/pools/882')).status).toBe(404);
  });
});

describe('connections', () => {
  const pipelined = (body: string, path = '/add') =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const bodiesOf = (text: string) =>
    text
      .split(/HTTP\/1\.1 \d\d\d [A-Za-z ]+\r\n/)
      .slice(1)
      .map((r) => r.split('\r\n\r\n')[1]);

  it('serves pipelined queries in order on one connection', async () => {
    const payload = [0, 50, 100].map((p) => pipelined(`{"poolId": 123456, "percentile": ${p}, "method": "lower"}`, '/query')).join('');
    const text = await rawExchange(payload, (t) => (t.match(/HTTP\/1\.1 /g) ?? []).length >= 3 && t.endsWith('}'));
    expect(bodiesOf(text)).toEqual(['{"quantile":1,"count":5}', '{"quantile":3,"count":5}', '{"quantile":7,"count":5}']);
  });

  it('closes a connection that pipelines behind a pending group-commit reply, and still applies that append', async () => {
    // uWS denies "async pipelining" by design: a request parsed while an earlier
    // reply on the same connection is pending closes the connection. Under
    // --fsync=always an append's reply waits for fdatasync, so this is what a
    // pipelining client sees (README, "Connections"). The first append is
    // still logged and applied: its outcome is unknown to the client, as after
    // any connection loss.
    const payload = pipelined('{"poolId": 778, "poolValues": [1]}') + pipelined('{"poolId": 778, "poolValues": [2]}');
    await rawExchange(payload, () => false);
    await new Promise((r) => setTimeout(r, 100));
    const summary = await get('/pools/778');
    expect(summary.status).toBe(200);
    expect([1, 2]).toContain(summary.json.count);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('loses nothing under concurrent appends to one pool from many connections', async () => {
    const connections = 16;
    const perConnection = 40;
    await Promise.all(
      Array.from({ length: connections }, async (_, c) => {
        for (let i = 0; i < perConnection; i++) {
          const r = await postJson(server.url('/add'), { poolId: 55555, poolValues: [c, i, c * 1000 + i] });
          expect(r.status).toBe(200);
        }
      }),
    );
    const summary = (await get('/pools/55555')).json;
    expect(summary.count).toBe(connections * perConnection * 3);
  });
});

describe('pipelining with --fsync=never (replies in the same tick)', () => {
  it('serves pipelined appends and queries in order', async () => {
    const fast = await startServer(['--fsync', 'never']);
    try {
      const req = (body: string, path = '/add') =>
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const payload =
        req('{"poolId": 777, "poolValues": [1]}') +
        req('{"poolId": 777, "poolValues": [2]}') +
        req('{"poolId": 777, "percentile": 100}', '/query') +
        req('{"poolId": 777, "poolValues": [3]}');
      const text = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(fast.port, '127.0.0.1');
        let out = '';
        socket.on('data', (d) => {
          out += d.toString('latin1');
          if ((out.match(/HTTP\/1\.1 /g) ?? []).length >= 4 && out.endsWith('"Appended"')) {
            socket.destroy();
            resolve(out);
          }
        });
        socket.on('error', reject);
        socket.write(payload);
        setTimeout(() => resolve(out), 5000);
      });
      const bodies = text
        .split(/HTTP\/1\.1 200 OK\r\n/)
        .slice(1)
        .map((r) => r.split('\r\n\r\n')[1]);
      expect(bodies).toEqual(['"Inserted"', '"Appended"', '{"quantile":2,"count":2}', '"Appended"']);
    } finally {
      expect(await fast.stop()).toBe(0);
    }
  });
});
