// HTTP behaviour found with real clients (Node fetch and http.request, curl,
// raw sockets): refusals that reach a client still sending its body
// (lingering), HEAD on every GET route, request-smuggling framing, the /query
// body limit, cut echoes, repeated query parameters, Expect: 100-continue.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, tempDataDir, type ServerProcess } from './helpers/server-process.js';

let server: ServerProcess;

beforeAll(async () => {
  // uWS refuses a request line + headers over 4 KiB unless told otherwise; the
  // 100 000-digit path below needs a larger limit to reach poolq at all.
  server = await startServer(['--max-body', '16MiB'], { env: { UWS_HTTP_MAX_HEADERS_SIZE: String(256 * 1024) } });
  await fetch(server.url('/add'), { method: 'POST', body: '{"poolId": 1, "poolValues": [1, 2, 3]}' });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const BIG = 17 * 1024 * 1024;

function raw(payload: string | Buffer, waitMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1');
    let out = '';
    const done = () => {
      s.destroy();
      resolve(out);
    };
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', done);
    s.on('error', () => {});
    s.write(payload);
    setTimeout(done, waitMs);
  });
}

/** http.request that writes the whole body before reading anything. */
function requestWholeBody(pathname: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: server.port, path: pathname, method: 'POST', headers: { 'content-length': body.length }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('refusals reach a client that is still sending (lingering close)', () => {
  it('answers a 17 MiB body 413 to Node fetch, 20 of 20', async () => {
    const body = Buffer.alloc(BIG, 0x31);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(server.url('/add'), { method: 'POST', body });
      expect(res.status, `try ${i}`).toBe(413);
      expect((await res.json()).error).toBe('payload_too_large');
    }
  });

  it('answers a 17 MiB body 413 to http.request writing the whole body first, 20 of 20', async () => {
    const body = Buffer.alloc(BIG, 0x31);
    for (let i = 0; i < 20; i++) expect(await requestWholeBody(i % 2 === 0 ? '/add' : '/batch', body), `try ${i}`).toBe(413);
    expect((await fetch(server.url('/healthz'))).status).toBe(200);
  });

  it('answers 413 to curl, which sends Expect: 100-continue (uWS sends the 100 itself, then the 413 follows)', () => {
    const file = path.join(tempDataDir('poolq-curl-'), 'big');
    writeFileSync(file, Buffer.alloc(BIG, 0x31));
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--data-binary', `@${file}`, server.url('/add')], {
      encoding: 'utf8',
    });
    expect(r.stdout).toBe('413');
  });

  it('keeps the connection usable after a lingering 413 (uWS read and discarded the body)', async () => {
    const head = `POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n`;
    const text = await new Promise<string>((resolve) => {
      const s = net.connect(server.port, '127.0.0.1');
      let out = '';
      s.on('data', (d) => {
        out += d.toString('latin1');
        if (out.includes('{"status":"ok"}')) {
          s.destroy();
          resolve(out);
        }
      });
      s.write(Buffer.concat([Buffer.from(head), Buffer.alloc(70_000, 0x31), Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')]));
      setTimeout(() => resolve(out), 3000);
    });
    expect(text).toMatch(/^HTTP\/1\.1 413/); // /query takes 64 KiB at most
    expect(text).toContain('{"status":"ok"}');
  });

  it('answers 401 to a client sending a body with Connection: close, after reading it', async () => {
    const secured = await startServer([], { env: { AUTH_TOKEN: 'k' } });
    try {
      const body = Buffer.alloc(8 << 20, 0x31);
      for (let i = 0; i < 5; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.request(
            {
              host: '127.0.0.1',
              port: secured.port,
              path: '/add',
              method: 'POST',
              headers: { 'content-length': body.length },
              agent: false,
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode!));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
        expect(status).toBe(401);
      }
    } finally {
      expect(await secured.stop()).toBe(0);
    }
  });
});

describe('HEAD', () => {
  const GETS = [
    '/healthz',
    '/readyz',
    '/metrics',
    '/openapi.json',
    '/docs',
    '/pools',
    '/pools/1',
    '/pools/1/quantiles?p=50',
    '/pools/999',
    '/pools/1/quantiles',
  ];

  it('answers HEAD on every GET route with the GET status and length and no body, keeping the connection in step', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const call = (method: string, p: string) =>
      new Promise<{ status: number; length: string | undefined; body: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server.port, path: p, method, agent }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, length: res.headers['content-length'], body }));
        });
        req.on('error', reject);
        req.end();
      });
    for (const p of GETS) {
      const head = await call('HEAD', p);
      const get = await call('GET', p); // on the same connection: a body after HEAD would corrupt this
      expect(head.status, p).toBe(get.status);
      expect(head.body, p).toBe('');
      if (!p.startsWith('/metrics')) expect(Number(head.length), p).toBe(Buffer.byteLength(get.body));
    }
    agent.destroy();
  });
});

describe('framing', () => {
  it('refuses two different Content-Length headers (400) and an unknown transfer coding (501)', async () => {
    const dup = await raw('POST /add HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\n{"poolId":1}');
    expect(dup).toMatch(/^HTTP\/1\.1 400/);
    expect(dup).toContain('"field":"content-length"');
    const te = await raw('POST /query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expect(te).toMatch(/^HTTP\/1\.1 501/);
    expect(te).toContain('"error":"not_implemented"');
    const same = await raw(
      'POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 31\r\nContent-Length: 31\r\n\r\n{"poolId": 1, "percentile": 50}',
    );
    expect(same).toMatch(/^HTTP\/1\.1 200/);
  });
});

describe('limits and echoes', () => {
  it('refuses a /query body over 64 KiB at once, so a 14 MB nested body cannot hold the event loop', async () => {
    const nested = '['.repeat(7_000_000) + ']'.repeat(7_000_000);
    const started = performance.now();
    const [query, health] = await Promise.all([
      fetch(server.url('/query'), { method: 'POST', body: nested }),
      (async () => {
        await new Promise((r) => setTimeout(r, 5));
        const t = performance.now();
        await fetch(server.url('/healthz'));
        return performance.now() - t;
      })(),
    ]);
    expect(query.status).toBe(413);
    expect(health).toBeLessThan(500);
    expect(performance.now() - started).toBeLessThan(3000);
    expect((await (await fetch(server.url('/query'), { method: 'POST', body: '{"poolId":1,"percentile":50}' })).json()).quantile).toBe(2);
  });

  it('does not echo a 100 000-digit pool id whole', async () => {
    // A connection of its own: fetch's pool may hand out one that uWS's 10 s idle timeout is closing.
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: server.port, path: `/pools/${'9'.repeat(100_000)}`, agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, text: body }));
        })
        .on('error', reject);
    });
    expect(status).toBe(400);
    expect(text.length).toBeLessThan(300);
    expect(JSON.parse(text).field).toBe('poolId');
  });

  it('refuses repeated query parameters instead of reading the first', async () => {
    for (const q of ['/pools/1/quantiles?p=50&p=90', '/pools/1/quantiles?p=50&method=lower&method=higher', '/pools?limit=1&limit=2']) {
      const res = await fetch(server.url(q));
      expect(res.status, q).toBe(400);
      expect((await res.json()).field, q).toMatch(/^(p|method|limit)$/);
    }
    expect((await (await fetch(server.url('/pools/1/quantiles?p=50,90'))).json()).quantiles.length).toBe(2);
  });
});
