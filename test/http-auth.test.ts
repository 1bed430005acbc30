// Optional bearer-token auth (--auth-token / AUTH_TOKEN): data endpoints need
// it, operations endpoints (health, readiness, metrics, docs) do not, and the
// token never appears in the logs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from './helpers/server-process.js';

const TOKEN = 's3cret-token-for-tests';
let server: ServerProcess;

beforeAll(async () => {
  server = await startServer([], { env: { AUTH_TOKEN: TOKEN } });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

describe('--auth-token', () => {
  it('refuses data endpoints without the right bearer token, changing nothing', async () => {
    for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      const res = await fetch(server.url('/add'), { method: 'POST', body: '{"poolId": 1, "poolValues": [1]}', headers });
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect((await res.json()).error).toBe('unauthorized');
    }
    for (const [method, path] of [
      ['GET', '/pools'],
      ['GET', '/pools/1'],
      ['DELETE', '/pools/1'],
      ['GET', '/pools/1/quantiles?p=5'],
      ['POST', '/query'],
    ]) {
      expect((await fetch(server.url(path), { method, body: method === 'POST' ? '{}' : undefined })).status, path).toBe(401);
    }
    const ok = { authorization: `Bearer ${TOKEN}` };
    expect((await fetch(server.url('/pools/1'), { headers: ok })).status).toBe(404);
  });

  it('accepts the right token', async () => {
    const headers = { authorization: `Bearer ${TOKEN}` };
    const res = await fetch(server.url('/add'), { method: 'POST', body: '{"poolId": 1, "poolValues": [1]}', headers });
    expect(await res.json()).toBe('Inserted');
  });

  it('leaves operations endpoints open and keeps the token out of the logs', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']) {
      expect((await fetch(server.url(path))).status, path).toBe(200);
    }
    expect(JSON.stringify(server.logs())).not.toContain(TOKEN);
  });
});
