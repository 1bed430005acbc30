// npm run bench:import — a 10^7-value CSV (two columns, ~150 MB) two ways:
//  1. the parsers alone, in this process: the import scanner
//     (src/protocol/import-scanners.ts) against csv-parse, each reading the
//     file in 1 MiB chunks and keeping the value column as numbers;
//  2. the server, as `npm start` runs it: small /query probes at a steady
//     500/s with no import, then the same probes while the file is imported
//     through POST /imports (upload from a child process, parse on the
//     import worker, commit).
// Prints values/s, MB/s and the server's peak RSS (VmHWM) for the import, and
// the probes' p50/p99 with and without it; JSON in bench/results/import.json.
// --quick: 10^6 values.

import { createReadStream, createWriteStream, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse';
import { createScanner, PoolValues } from '../src/protocol/import-scanners.js';
import { spawnTracked, startServer } from '../test/helpers/server-process.js';
import { rawRequest } from './lib/http-scenarios.js';
import { runPaced, type PacedResult } from './lib/paced-client.js';
import { fmtRatio, fmtUs, printTable, writeResults } from './lib/report.js';

const QUICK = process.argv.includes('--quick');
const VALUES = QUICK ? 1_000_000 : 10_000_000;
/** Each probe window; the import must outlast the second one (it is reported). */
const PROBE_MS = QUICK ? 500 : 4000;
const SMALL_POOLS = 100;

async function writeCsv(file: string): Promise<void> {
  const out = createWriteStream(file);
  out.write('ts,latency_ms\n');
  let seed = 1;
  for (let i = 0; i < VALUES; i += 10_000) {
    let text = '';
    for (let j = i; j < i + 10_000; j++) {
      seed = (seed * 48271) % 2147483647;
      text += `${1_700_000_000 + j},${(Math.exp((seed / 2147483647) * 4) * 10).toFixed(3)}\n`;
    }
    if (!out.write(text)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
}

async function scanWithOurs(file: string): Promise<number> {
  const sink = new PoolValues();
  const scanner = createScanner({ format: 'csv', poolId: 1, column: 'latency_ms' }, sink);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) scanner.push(chunk as Buffer);
  scanner.end();
  return sink.count;
}

async function scanWithCsvParse(file: string): Promise<number> {
  const sink = new PoolValues();
  const parser = createReadStream(file, { highWaterMark: 1 << 20 }).pipe(parse({ from_line: 2 }));
  for await (const record of parser as AsyncIterable<string[]>) {
    const value = Number(record[1]);
    if (!Number.isFinite(value)) throw new Error(`bad value ${record[1]}`);
    sink.add(1, value);
  }
  return sink.count;
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await work();
  return { ms: performance.now() - started, result };
}

/** Small /query requests at 500/s over keep-alive connections for PROBE_MS. */
function probe(port: number): Promise<PacedResult> {
  const shape = { pools: SMALL_POOLS, values: 10, queryPct: 100 };
  const requests = Array.from({ length: 1000 }, () => rawRequest('query', shape, port));
  let k = 0;
  return runPaced({
    port,
    rate: 500,
    durationMs: PROBE_MS,
    connections: 8,
    maxConnections: 512,
    nextRequest: () => requests[k++ % requests.length],
  });
}

/** The uploader, in its own process at nice 19 so that streaming the file does not perturb the probes; prints the job id. */
const UPLOADER = `
const http = require('node:http');
const fs = require('node:fs');
const [port, file, query] = process.argv.slice(1);
const req = http.request({ host: '127.0.0.1', port: Number(port), path: '/imports?' + query, method: 'POST', headers: { 'content-length': fs.statSync(file).size } }, (res) => {
  let text = '';
  res.on('data', (d) => (text += d));
  res.on('end', () => { if (res.statusCode !== 202) { console.error(text); process.exit(1); } console.log(JSON.parse(text).jobId); });
});
fs.createReadStream(file).pipe(req);
`;

function postFile(port: number, file: string, query: string): Promise<string> {
  const child = spawnTracked('nice', ['-n', '19', process.execPath, '-e', UPLOADER, String(port), file, query], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`uploader exited ${code}`)))),
  );
}

async function waitForJob(port: number, jobId: string): Promise<{ state: string; values: number; error: unknown }> {
  for (;;) {
    const job = (await (await fetch(`http://127.0.0.1:${port}/imports/${jobId}`)).json()) as {
      state: string;
      values: number;
      error: unknown;
    };
    if (job.state === 'done' || job.state === 'failed') return job;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)![1]);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poolq-bench-import-'));
  const file = path.join(dir, 'values.csv');
  await writeCsv(file);
  const mb = statSync(file).size / 1e6;
  console.log(`${VALUES} values, ${mb.toFixed(1)} MB of CSV`);

  const ours = await timed(() => scanWithOurs(file));
  const theirs = await timed(() => scanWithCsvParse(file));
  const parsers = [
    { parser: 'import scanner', ms: ours.ms, values: ours.result },
    { parser: 'csv-parse 6.2.1', ms: theirs.ms, values: theirs.result },
  ];
  printTable(
    'parsers, one thread, 1 MiB chunks',
    parsers.map((r) => ({
      parser: r.parser,
      s: (r.ms / 1000).toFixed(2),
      'MB/s': (mb / (r.ms / 1000)).toFixed(1),
      'values/s': Math.round(r.values / (r.ms / 1000)),
    })),
  );
  console.log(`import scanner vs csv-parse: ${fmtRatio(theirs.ms, ours.ms)} faster`);

  // startServer runs the server with npm start's environment.
  const server = await startServer([], { dataDir: path.join(dir, 'data') });
  const port = server.port;
  for (let poolId = 0; poolId < SMALL_POOLS; poolId++) {
    const poolValues = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000);
    await fetch(`http://127.0.0.1:${port}/add`, { method: 'POST', body: JSON.stringify({ poolId, poolValues }) });
  }
  const idle = await probe(port);
  const before = memoryOf(server.proc.pid!);
  const started = performance.now();
  let importMs = 0;
  const imported = postFile(port, file, 'poolId=100000&column=latency_ms')
    .then((jobId) => waitForJob(port, jobId))
    .then((job) => ((importMs = performance.now() - started), job));
  const busy = await probe(port);
  const probeEndMs = performance.now() - started;
  const job = await imported;
  const after = memoryOf(server.proc.pid!);
  await server.stop();
  if (job.state !== 'done' || job.values !== VALUES) throw new Error(`import ended ${JSON.stringify(job)}`);

  const seconds = importMs / 1000;
  const importRow = { seconds, valuesPerS: VALUES / seconds, mbPerS: mb / seconds, rssBeforeMiB: before.rssMiB, peakRssMiB: after.peakMiB };
  printTable('the import through the server', [
    {
      values: VALUES,
      s: seconds.toFixed(2),
      'values/s': Math.round(importRow.valuesPerS),
      'MB/s': importRow.mbPerS.toFixed(1),
      'RSS before MiB': before.rssMiB.toFixed(0),
      'peak RSS MiB': after.peakMiB.toFixed(0),
    },
  ]);
  const rows = [
    { phase: 'no import', r: idle },
    { phase: 'during import', r: busy },
  ];
  printTable(
    `small /query probes, 500/s for ${PROBE_MS / 1000} s (service time)`,
    rows.map(({ phase, r }) => ({
      phase,
      probes: r.serviceUs.n,
      p50: fmtUs(r.serviceUs.p50),
      p99: fmtUs(r.serviceUs.p99),
      max: fmtUs(r.serviceUs.max),
    })),
  );
  const covered = Math.min(1, importMs / probeEndMs);
  console.log(
    `small-query p99 during / without import: ${fmtRatio(busy.serviceUs.p99, idle.serviceUs.p99)}; the import ran for ${Math.round(100 * covered)} % of the probe window`,
  );
  writeResults('import', {
    values: VALUES,
    mb,
    parsers,
    import: importRow,
    probes: { idle: idle.serviceUs, busy: busy.serviceUs, importCoveredFraction: covered },
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
