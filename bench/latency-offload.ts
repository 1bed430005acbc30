// npm run bench:latency — issue 5's question: does heavy work stall small
// requests? One run, two servers started the same way except --workers:
// offload on (1 piscina worker) and off (0: everything inline). Against each,
// a child process appends 1-million-value batches (≈10 MB bodies) back to back
// to fresh pools, while this process sends small /query requests at a steady
// rate over keep-alive connections and records each one's latency.
// Prints p50 / p99 / max per mode and the off/on ratio; JSON in
// bench/results/latency.json.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const MAIN = path.join(ROOT, 'dist/src/main.js');
const QUICK = process.argv.includes('--quick');
const DURATION_MS = QUICK ? 4000 : 10_000;
const QUERY_INTERVAL_MS = 2; // 500 small queries per second
const BIG_BATCH = 1_000_000;
const SMALL_POOLS = 100;

/** What `npm start` sets (package.json); measure the server as it is run. */
const NPM_START_ENV = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', MALLOC_MMAP_THRESHOLD_: '131072' };

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
process.on('SIGINT', () => process.exit(130));

function startServer(args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'poolq-latency-'));
  const proc = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'info' },
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    let port = 0;
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as { msg?: string; config?: { port?: number } };
          if (entry.config?.port) port = entry.config.port;
          if (entry.msg === 'poolq ready') resolve({ proc, port });
        } catch {
          /* not JSON */
        }
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function post(port: number, urlPath: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The big-batch appender runs in its own process so its JSON building does not perturb our timings. */
const APPENDER = `
const http = require('node:http');
const port = Number(process.argv[1]);
const n = Number(process.argv[2]);
const pauseMs = Number(process.argv[3]);
const values = [];
for (let i = 0; i < n; i++) values.push(Math.floor(Math.random() * 1e9));
const tail = Buffer.from(', "poolValues": [' + values.join(',') + ']}');
let pool = 1e9, done = 0;
const agent = new http.Agent({ keepAlive: true });
function once() {
  const body = Buffer.concat([Buffer.from('{"poolId": ' + (pool++)), tail]);
  const req = http.request({ host: '127.0.0.1', port, path: '/add', method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
    res.resume();
    res.on('end', () => { if (res.statusCode !== 200) console.error('big append status', res.statusCode); done++; process.send({ done }); setTimeout(once, pauseMs); });
  });
  req.on('error', () => {});
  req.end(body);
}
once();
`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

interface ModeResult {
  mode: string;
  queries: number;
  errors: number;
  bigAppends: number;
  p50: number;
  p99: number;
  max: number;
}

async function runMode(mode: string, workerArgs: string[], pauseMs: number): Promise<ModeResult> {
  const { proc, port } = await startServer(workerArgs);
  for (let i = 0; i < SMALL_POOLS; i++) {
    await post(port, '/add', JSON.stringify({ poolId: i, poolValues: Array.from({ length: 1000 }, () => Math.random()) }));
  }
  const appender = pauseMs < 0 ? null : spawn('nice', ['-n', '19', process.execPath, '-e', APPENDER, String(port), String(BIG_BATCH), String(pauseMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let bigAppends = 0;
  if (appender !== null) {
    children.push(appender);
    appender.on('message', (m: { done: number }) => (bigAppends = m.done));
  }
  // Let the first big batch start arriving before measuring.
  await new Promise((r) => setTimeout(r, 500));

  const latencies: number[] = [];
  let errors = 0;
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  for (let k = 0; performance.now() - start < DURATION_MS; k++) {
    const due = start + k * QUERY_INTERVAL_MS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    const body = JSON.stringify({ poolId: k % SMALL_POOLS, percentile: 99.5 });
    inFlight.push(
      post(port, '/query', body).then(
        (r) => {
          if (r.status === 200) latencies.push(performance.now() - sent);
          else errors++;
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(inFlight);
  appender?.kill('SIGKILL');
  proc.kill('SIGKILL');
  latencies.sort((a, b) => a - b);
  return {
    mode,
    queries: latencies.length,
    errors,
    bigAppends,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies[latencies.length - 1],
  };
}

const LOADS = [
  { name: 'none (the floor of this measurement)', pauseMs: -1 },
  { name: 'back-to-back', pauseMs: 0 },
  { name: 'paced, 500 ms apart', pauseMs: 500 },
];

async function main(): Promise<void> {
  console.log(
    `small queries every ${QUERY_INTERVAL_MS} ms for ${DURATION_MS / 1000} s while another process appends ` +
      `${BIG_BATCH.toLocaleString()}-value batches (~10 MB bodies). 2 cores shared by the server, its worker, ` +
      'the kernel writing the log, and both clients (the big-batch client runs at nice 19).',
  );
  const results: Record<string, { on: ModeResult; off: ModeResult; ratio: number }> = {};
  const rows = [];
  for (const load of LOADS) {
    const on = await runMode('on (--workers 1)', ['--workers', '1'], load.pauseMs);
    const off = await runMode('off (--workers 0)', ['--workers', '0'], load.pauseMs);
    const ratio = off.p99 / on.p99;
    results[load.name] = { on, off, ratio };
    for (const r of [on, off]) {
      rows.push({
        'big batches': load.name,
        offload: r.mode,
        'batches done': r.bigAppends,
        queries: r.queries,
        errors: r.errors,
        'p50 ms': r.p50.toFixed(3),
        'p99 ms': r.p99.toFixed(3),
        'max ms': r.max.toFixed(1),
        'p99 off/on': r === on ? '' : ratio.toFixed(1) + 'x',
      });
    }
  }
  console.table(rows);
  for (const [name, { on, ratio }] of Object.entries(results)) {
    if (name.startsWith('none')) continue;
    console.log(`${on.p99 < 2 ? 'PASS' : 'FAIL'} [${name}] p99 with offload < 2 ms (${on.p99.toFixed(3)} ms)`);
    console.log(`${ratio >= 10 ? 'PASS' : 'FAIL'} [${name}] p99 with offload at least 10x better than without (${ratio.toFixed(1)}x)`);
  }
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench/results/latency.json'), JSON.stringify(results, null, 2));
  process.exit(0);
}

void main();
