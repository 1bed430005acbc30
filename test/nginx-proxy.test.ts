// HTTP/1.0 through deploy/nginx.conf: uWS answers nothing to an HTTP/1.0
// request (shown below with a raw socket), so the documented deployment puts
// nginx in front with proxy_http_version 1.1. This runs that very file (ports
// replaced) with curl --http1.0 and /ws through it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PoolqSocket } from '../src/client/index.js';
import { startServer, tempDataDir, type ServerProcess } from './helpers/server-process.js';

const hasNginx = spawnSync('nginx', ['-v']).status === 0;
let server: ServerProcess;
let nginx: ChildProcess | null = null;
let proxyPort = 0;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function curl(args: string[]): { status: string; body: string } {
  const r = spawnSync('curl', ['-s', '-m', '5', '-w', '\n%{http_code}', ...args], { encoding: 'utf8' });
  const lines = r.stdout.split('\n');
  return { status: lines.pop()!, body: lines.join('\n') };
}

beforeAll(async () => {
  server = await startServer();
  if (!hasNginx) return;
  proxyPort = await freePort();
  const dir = tempDataDir('poolq-nginx-');
  mkdirSync(path.join(dir, 'logs'));
  const conf = readFileSync(path.resolve(import.meta.dirname, '../deploy/nginx.conf'), 'utf8')
    .replace('127.0.0.1:8000', `127.0.0.1:${server.port}`)
    .replace('127.0.0.1:8080', `127.0.0.1:${proxyPort}`);
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  nginx = spawn(
    'nginx',
    ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;`],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    if (
      await new Promise<boolean>((r) =>
        net
          .connect(proxyPort, '127.0.0.1')
          .on('connect', function (this: net.Socket) {
            this.destroy();
            r(true);
          })
          .on('error', () => r(false)),
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  nginx?.kill('SIGTERM');
  expect(await server.stop()).toBe(0);
});

describe('HTTP/1.0', () => {
  it('gets no answer from poolq directly (a limit of the uWS binding)', async () => {
    const text = await new Promise<string>((resolve) => {
      const s = net.connect(server.port, '127.0.0.1');
      let out = '';
      s.on('data', (d) => (out += d.toString()));
      s.write('GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n');
      setTimeout(() => {
        s.destroy();
        resolve(out);
      }, 1000);
    });
    expect(text).toBe('');
  });

  it.runIf(hasNginx)('is answered through deploy/nginx.conf (curl --http1.0), appends and /ws included', async () => {
    const base = `http://127.0.0.1:${proxyPort}`;
    expect(curl(['--http1.0', `${base}/healthz`])).toEqual({ status: '200', body: '{"status":"ok"}' });
    expect(curl(['--http1.0', '-d', '{"poolId":5,"poolValues":[1,2]}', `${base}/add`]).body).toBe('"Inserted"');
    expect(curl(['--http1.0', `${base}/pools/5`]).body).toBe('{"poolId":5,"count":2,"min":1,"max":2,"windowSeconds":null}');
    const socket = await PoolqSocket.connect({ url: `ws://127.0.0.1:${proxyPort}/ws`, reconnect: false });
    expect(await socket.add(5, [3])).toEqual({ created: false, count: 3 });
    await socket.close();
    // a 413 reaches the client through the proxy as well
    const big = curl(['-H', 'content-type: application/octet-stream', '--data-binary', `@${writeBig()}`, `${base}/pools/6/values`]);
    expect(big.status).toBe('413');
  });
});

function writeBig(): string {
  const file = path.join(tempDataDir('poolq-big-'), 'big.bin');
  writeFileSync(file, Buffer.alloc(17 * 1024 * 1024));
  return file;
}
