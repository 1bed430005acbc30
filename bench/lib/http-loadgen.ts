// Closed-loop peak load for `npm run bench:http`: wrk (preferred) driven by
// bench/wrk/poolq.lua, or autocannon when wrk is not installed. Both take the
// same scenario names and return the same LoadResult, plus the JS versions of
// the request bodies (for autocannon, the paced client and the prefill).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pinned, processCpuSeconds, spawnTracked } from './http-procs.js';

export type Mode = 'add' | 'query' | 'mix' | 'echo-add' | 'echo-query' | 'get';

export interface BodyShape {
  pools: number;
  values: number;
  /** Percent of queries in 'mix'. */
  queryPct: number;
}

export interface LoadResult {
  tool: 'wrk' | 'autocannon';
  requests: number;
  durationS: number;
  rps: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  non2xx: number;
  socketErrors: number;
  errors: Record<string, number>;
  /** CPU seconds the load generator itself used (NaN if unknown). */
  loadgenCpuS: number;
  generatedAdds?: number;
  generatedQueries?: number;
}

export interface LoadOptions {
  port: number;
  mode: Mode;
  shape: BodyShape;
  durationS: number;
  connections: number;
  threads: number;
  /** CPU to pin the load generator to (wrk only), or null. */
  cpu?: number | null;
}

// ---- request bodies (same distributions as bench/wrk/poolq.lua) -------------

// as in poolq.lua: values drawn from a table of random floats made once
const VALUE_STRINGS = Array.from({ length: 65536 }, () => (Math.random() * 1e6).toFixed(3));

export function addBody(shape: BodyShape): string {
  let values = '';
  for (let i = 0; i < shape.values; i++) {
    values += (i === 0 ? '' : ',') + VALUE_STRINGS[(Math.random() * 65536) | 0];
  }
  return `{"poolId":${Math.floor(Math.random() * shape.pools)},"poolValues":[${values}]}`;
}

export function queryBody(shape: BodyShape): string {
  return `{"poolId":${Math.floor(Math.random() * shape.pools)},"percentile":99.5}`;
}

/** Method, path and body of the next request of a scenario. */
export function nextRequestParts(mode: Mode, shape: BodyShape): { method: string; path: string; body: string | null } {
  switch (mode) {
    case 'add':
      return { method: 'POST', path: '/add', body: addBody(shape) };
    case 'query':
      return { method: 'POST', path: '/query', body: queryBody(shape) };
    case 'mix':
      return Math.random() * 100 < shape.queryPct
        ? { method: 'POST', path: '/query', body: queryBody(shape) }
        : { method: 'POST', path: '/add', body: addBody(shape) };
    case 'echo-add':
      return { method: 'POST', path: '/echo', body: addBody(shape) };
    case 'echo-query':
      return { method: 'POST', path: '/echo', body: queryBody(shape) };
    case 'get':
      return { method: 'GET', path: '/', body: null };
  }
}

/** A raw HTTP/1.1 keep-alive request for the paced client. */
export function rawRequest(mode: Mode, shape: BodyShape, port: number): string {
  const { method, path: p, body } = nextRequestParts(mode, shape);
  if (body === null) return `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
  return (
    `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

// ---- wrk ---------------------------------------------------------------------

/** Path of a usable wrk binary ($WRK, /usr/bin/wrk, or on PATH), or null. */
export function findWrk(): string | null {
  const candidates = [process.env.WRK, '/usr/bin/wrk', '/usr/local/bin/wrk'].filter((c): c is string => !!c);
  for (const c of candidates) if (existsSync(c)) return c;
  const which = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  return which.status === 0 && found !== '' ? found : null;
}

export function wrkVersion(wrk: string): string {
  const out = spawnSync(wrk, ['-v'], { encoding: 'utf8' });
  return `${out.stdout}${out.stderr}`.split('\n')[0].trim();
}

export async function runWrk(wrk: string, script: string, opts: LoadOptions): Promise<LoadResult> {
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--timeout',
    '2s',
    '-s',
    script,
    `http://127.0.0.1:${opts.port}`,
    '--',
    opts.mode,
    String(opts.shape.pools),
    String(opts.shape.values),
    String(opts.shape.queryPct),
  ];
  const child = spawnTracked(...pinned(opts.cpu ?? null, wrk, args));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let cpu = 0;
  const sampler = setInterval(() => {
    const c = processCpuSeconds(child.pid!);
    if (Number.isFinite(c)) cpu = c;
  }, 100);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  clearInterval(sampler);
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (code !== 0 || line === undefined) {
    throw new Error(`wrk ${args.join(' ')} failed (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const parsed = JSON.parse(line.slice('WRK_JSON '.length)) as Omit<LoadResult, 'tool' | 'loadgenCpuS'>;
  return { tool: 'wrk', ...parsed, loadgenCpuS: cpu };
}

// ---- autocannon (fallback) ---------------------------------------------------

interface AutocannonResult {
  requests: { total: number };
  duration: number;
  latency: { mean: number; p50: number; p90: number; p99: number; p99_9?: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  '2xx': number;
}

/**
 * Same scenario with autocannon (in this process). Note: autocannon records
 * latency in whole milliseconds, so p50/p99 are coarse; it also costs more CPU
 * per request than wrk, which on 2 cores lowers the measured peak.
 */
export async function runAutocannon(opts: LoadOptions): Promise<LoadResult> {
  const require = createRequire(import.meta.url);
  const autocannon = require('autocannon') as (o: Record<string, unknown>) => Promise<AutocannonResult>;
  const first = nextRequestParts(opts.mode, opts.shape);
  const cpuBefore = process.cpuUsage();
  const result = await autocannon({
    url: `http://127.0.0.1:${opts.port}`,
    connections: opts.connections,
    duration: opts.durationS,
    timeout: 2,
    requests: [
      {
        method: first.method,
        path: first.path,
        headers: { 'content-type': 'application/json' },
        setupRequest: (req: Record<string, unknown>) => {
          const next = nextRequestParts(opts.mode, opts.shape);
          return { ...req, method: next.method, path: next.path, body: next.body ?? undefined };
        },
      },
    ],
  });
  const cpu = process.cpuUsage(cpuBefore);
  const ms = (x: number | undefined): number => (x === undefined ? Number.NaN : x * 1000);
  return {
    tool: 'autocannon',
    requests: result.requests.total,
    durationS: result.duration,
    rps: result.requests.total / result.duration,
    meanUs: ms(result.latency.mean),
    p50Us: ms(result.latency.p50),
    p90Us: ms(result.latency.p90),
    p99Us: ms(result.latency.p99),
    p999Us: ms(result.latency.p99_9),
    maxUs: ms(result.latency.max),
    non2xx: result.non2xx,
    socketErrors: result.errors + result.timeouts,
    errors: { errors: result.errors, timeouts: result.timeouts },
    loadgenCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

export function wrkScriptPath(projectRoot: string): string {
  return path.join(projectRoot, 'bench', 'wrk', 'poolq.lua');
}
