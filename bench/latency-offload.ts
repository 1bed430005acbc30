// `npm run bench:latency`: do big appends stall small requests? Three servers,
// one run: poolq with offload (--workers 1: big bodies parsed, sorted and
// merged on a worker), poolq without (--workers 0: everything on the event
// loop), and the bare uWS server of bench:http (bench/http-hello.ts) as the
// floor. Against each, a child process sends 1 000 000-value batches (~10 MB
// bodies: /add on poolq, /echo on the bare server) back to back or paced, while
// this process sends small requests (/query, or a query-shaped /echo) 500
// times a second over keep-alive connections (bench/lib/paced-client.ts,
// opening another connection rather than queueing) and records each one's
// latency from its actual send. Also reported: what the server itself saw (its
// /query latency histogram and event-loop delay) and how long its main thread
// ran and waited runnable for a CPU (Linux schedstat).
//
// Processes are not pinned: offloading is about the worker running on the other core.
// Options: --duration S (10; --quick: 2). Output: a table and bench/results/latency.json.

import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, spawnTracked, startHttpProcess, startServer, tempDataDir, type ServerProcess } from '../test/helpers/server-process.js';
import { rawRequest } from './lib/http-scenarios.js';
import { runPaced, type PacedResult } from './lib/paced-client.js';
import { fmtRatio, fmtUs, printTable, writeResults, type Row } from './lib/report.js';

const { values: argv } = parseArgs({ options: { quick: { type: 'boolean' }, duration: { type: 'string' } } });
const DURATION_MS = Number(argv.duration ?? (argv.quick ? 2 : 10)) * 1000;
const SMALL_POOLS = 100;

/** The big-batch client, in its own process so building 10 MB bodies does not perturb the probe; prints a line per batch. */
const APPENDER = `
const http = require('node:http');
const [port, n, pauseMs, target, minPeriodMs] = process.argv.slice(1).map((x, i) => (i === 3 ? x : Number(x)));
const values = Array.from({ length: n }, () => Math.floor(Math.random() * 1e9));
const tail = Buffer.from(', "poolValues": [' + values.join(',') + ']}');
const agent = new http.Agent({ keepAlive: true });
let pool = 1e9;
function once() {
  const started = Date.now();
  const body = Buffer.concat([Buffer.from('{"poolId": ' + pool++), tail]);
  const req = http.request({ host: '127.0.0.1', port, path: target, method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
    res.resume();
    res.on('end', () => {
      console.log(res.statusCode);
      setTimeout(once, Math.max(pauseMs, started + minPeriodMs - Date.now()));
    });
  });
  req.on('error', () => {});
  req.end(body);
}
once();
`;

/** What the server saw between two scrapes of /metrics (prom-client resets the event-loop delay histogram per scrape). */
async function scrape(server: ServerProcess): Promise<{ loopP99Ms: number; loopMaxMs: number; queryBuckets: Map<string, number> }> {
  const text = await (await fetch(server.url('/metrics'))).text();
  const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  const queryBuckets = new Map<string, number>();
  for (const m of text.matchAll(/^poolq_http_request_duration_seconds_bucket\{le="([^"]+)",route="POST \/query"\} (\d+)$/gm))
    queryBuckets.set(m[1], Number(m[2]));
  return { loopP99Ms: gauge('nodejs_eventloop_lag_p99_seconds'), loopMaxMs: gauge('nodejs_eventloop_lag_max_seconds'), queryBuckets };
}

/** The bucket bound (ms) within which the server answered 99 % of the /query requests between two scrapes. */
function serverP99Ms(before: Map<string, number>, after: Map<string, number>): number {
  const total = (after.get('+Inf') ?? 0) - (before.get('+Inf') ?? 0);
  for (const [le, n] of after) if (n - (before.get(le) ?? 0) >= 0.99 * total) return le === '+Inf' ? Infinity : Number(le) * 1000;
  return NaN;
}

/** The main thread's ns on a CPU and ns runnable but waiting (/proc/<pid>/task/<pid>/schedstat), or null. */
function schedstat(pid: number): { runNs: number; waitNs: number } | null {
  try {
    const [runNs, waitNs] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { runNs, waitNs };
  } catch {
    return null;
  }
}

interface ModeResult {
  server: string;
  batches: number;
  probe: PacedResult;
  serverP99Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  mainRunMs: number;
  mainWaitMs: number;
}

/** One server (poolq with `args`, or the bare one for null) under one big-batch load; `pauseMs` < 0: no big batches. */
async function runMode(label: string, args: string[] | null, pauseMs: number, minPeriodMs = 0): Promise<ModeResult> {
  const bare = args === null;
  const server = bare
    ? await startHttpProcess(path.join(ROOT, 'dist/bench/http-hello.js'), (port) => [String(port)])
    : await startServer(args, { dataDir: tempDataDir('poolq-latency-') });
  let appender: ChildProcess | undefined;
  try {
    for (let i = 0; i < SMALL_POOLS && !bare; i++) {
      await fetch(server.url('/add'), {
        method: 'POST',
        body: JSON.stringify({ poolId: i, poolValues: Array.from({ length: 1000 }, Math.random) }),
      });
    }
    let batches = 0;
    if (pauseMs >= 0) {
      const appenderArgs = [String(server.port), '1000000', String(pauseMs), bare ? '/echo' : '/add', String(minPeriodMs)];
      appender = spawnTracked('nice', ['-n', '19', process.execPath, '-e', APPENDER, ...appenderArgs], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      appender.stdout!.on('data', (d: Buffer) => (batches += d.toString().split('\n').length - 1));
      await new Promise((r) => setTimeout(r, 500)); // the first big batch is arriving
    }
    const before = bare ? null : await scrape(server);
    const sched0 = schedstat(server.proc.pid!);
    const shape = { pools: SMALL_POOLS, values: 10, queryPct: 100 };
    const requests = Array.from({ length: 1000 }, () => rawRequest(bare ? 'echo-query' : 'query', shape, server.port));
    let k = 0;
    const probe = await runPaced({
      port: server.port,
      rate: 500,
      durationMs: DURATION_MS,
      connections: 8,
      maxConnections: 512,
      nextRequest: () => requests[k++ % requests.length],
    });
    const sched1 = schedstat(server.proc.pid!);
    const after = bare ? null : await scrape(server);
    return {
      server: label,
      batches,
      probe,
      serverP99Ms: before && after ? serverP99Ms(before.queryBuckets, after.queryBuckets) : NaN,
      // prom-client samples the event-loop delay every 10 ms; that tick is taken off
      loopP99Ms: (after?.loopP99Ms ?? NaN) - 10,
      loopMaxMs: (after?.loopMaxMs ?? NaN) - 10,
      mainRunMs: sched0 && sched1 ? (sched1.runNs - sched0.runNs) / 1e6 : NaN,
      mainWaitMs: sched0 && sched1 ? (sched1.waitNs - sched0.waitNs) / 1e6 : NaN,
    };
  } finally {
    appender?.kill('SIGKILL');
    await server.kill();
    if (server.dataDir !== '') rmSync(server.dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(
    `small requests every 2 ms for ${DURATION_MS / 1000} s while another process (at nice 19) sends 1 000 000-value batches (~10 MB bodies); ` +
      'the bare uWS server gets the same bodies and query-shaped small requests on /echo, at poolq-with-offload’s batch rate',
  );
  const loads = [
    { load: 'none', pauseMs: -1 },
    { load: 'back to back', pauseMs: 0 },
    { load: 'one every 500 ms', pauseMs: 500 },
  ];
  const results: (ModeResult & { load: string })[] = [];
  const rows: Row[] = [];
  for (const { load, pauseMs } of loads) {
    const on = await runMode('poolq, offload on (--workers 1)', ['--workers', '1'], pauseMs);
    const off = await runMode('poolq, offload off (--workers 0)', ['--workers', '0'], pauseMs);
    // The bare server takes a body in ~15 ms, not ~250: it gets poolq's batch rate, not 17× the bodies.
    const bare = await runMode('bare uWS /echo', null, pauseMs, on.batches > 0 ? DURATION_MS / on.batches : 0);
    for (const r of [on, off, bare]) {
      results.push({ load, ...r });
      const s = r.probe.serviceUs;
      rows.push({
        'big batches': load,
        server: r.server,
        'batches done': r.batches,
        requests: s.n,
        errors: r.probe.non2xx + r.probe.socketErrors + r.probe.lost,
        p50: fmtUs(s.p50),
        p99: fmtUs(s.p99),
        max: fmtUs(s.max),
        'server p99 ≤': Number.isNaN(r.serverP99Ms) ? '' : `${r.serverP99Ms} ms`,
        'loop delay p99 / max ms': Number.isNaN(r.loopP99Ms) ? '' : `${r.loopP99Ms.toFixed(1)} / ${r.loopMaxMs.toFixed(1)}`,
        'main thread ran / waited ms': Number.isNaN(r.mainRunMs) ? '' : `${Math.round(r.mainRunMs)} / ${Math.round(r.mainWaitMs)}`,
        'p99 ÷ offload on': r === on ? '' : fmtRatio(s.p99, on.probe.serviceUs.p99),
      });
    }
  }
  printTable('Small requests under big batches (latency from the actual send)', rows);
  writeResults('latency', { durationMs: DURATION_MS, results });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
