// npm run bench:import — a 10^7-value CSV (two columns, ~150 MB) two ways:
//  1. the parsers alone, in this process: the import scanner
//     (src/protocol/import-scanners.ts) against csv-parse, each reading the
//     file in 1 MiB chunks and keeping the value column as numbers;
//  2. the server, as `npm start` runs it: small /query probes at a steady
//     500/s with no import, then the same probes while the file is imported
//     through POST /imports (upload, parse on the import worker, commit).
// Prints values/s, MB/s and the server's peak RSS (VmHWM) for the import, and
// the probes' p50/p99 with and without it; JSON in bench/results/import.json.
// --quick: 10^6 values.

import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse';
import { createScanner, PoolValues } from '../src/protocol/import-scanners.js';
import { freePort, installChildCleanup, jsonLine, startServer } from './lib/http-procs.js';
import { ProbeClient } from './lib/probe-client.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const QUICK = process.argv.includes('--quick');
const VALUES = QUICK ? 1_000_000 : 10_000_000;
const PROBE_INTERVAL_MS = 2;
const BASELINE_MS = QUICK ? 3000 : 8000;
const SMALL_POOLS = 100;
const NPM_START_ENV = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', MALLOC_MMAP_THRESHOLD_: '131072' };

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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Probes /query every PROBE_INTERVAL_MS until `until` resolves; returns the latencies in ms, sorted. */
async function probe(client: ProbeClient, until: Promise<unknown>): Promise<number[]> {
  const requests = Array.from({ length: SMALL_POOLS }, (_, i) => client.postBytes('/query', `{"poolId":${i},"percentile":99}`));
  const samples: number[] = [];
  let done = false;
  void until.finally(() => (done = true));
  for (let i = 0; !done; i++) {
    const started = performance.now();
    const reply = await client.send(requests[i % SMALL_POOLS]);
    if (reply.status !== 200) throw new Error(`probe: ${reply.status} ${reply.body}`);
    samples.push(performance.now() - started);
    const wait = PROBE_INTERVAL_MS - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return samples.sort((a, b) => a - b);
}

function postFile(port: number, file: string, query: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: `/imports?${query}`, method: 'POST', headers: { 'content-length': String(statSync(file).size) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => (res.statusCode === 202 ? resolve((JSON.parse(text) as { jobId: string }).jobId) : reject(new Error(text))));
      },
    );
    req.on('error', reject);
    createReadStream(file).pipe(req);
  });
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
  installChildCleanup();
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
  ].map((r) => ({ ...r, mbPerS: mb / (r.ms / 1000), valuesPerS: r.values / (r.ms / 1000) }));
  console.table(
    parsers.map((r) => ({
      parser: r.parser,
      s: (r.ms / 1000).toFixed(2),
      'MB/s': r.mbPerS.toFixed(1),
      'values/s': Math.round(r.valuesPerS),
    })),
  );
  console.log(`import scanner / csv-parse: ${(theirs.ms / ours.ms).toFixed(2)}x faster`);

  const port = await freePort();
  const server = await startServer({
    name: 'poolq',
    command: process.execPath,
    args: [path.join(ROOT, 'dist/src/main.js'), '--port', String(port), '--data-dir', path.join(dir, 'data')],
    env: { ...process.env, ...NPM_START_ENV },
    readyFromLine: (line) => (jsonLine(line)?.msg === 'poolq ready' ? port : undefined),
  });
  for (let poolId = 0; poolId < SMALL_POOLS; poolId++) {
    const poolValues = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000);
    await fetch(`http://127.0.0.1:${port}/add`, { method: 'POST', body: JSON.stringify({ poolId, poolValues }) });
  }
  const client = new ProbeClient('127.0.0.1', port);
  const idle = await probe(client, new Promise((r) => setTimeout(r, BASELINE_MS)));
  const before = memoryOf(server.pid);
  const started = performance.now();
  const imported = postFile(port, file, 'poolId=100000&column=latency_ms').then((jobId) => waitForJob(port, jobId));
  const busy = await probe(client, imported);
  const job = await imported;
  const seconds = (performance.now() - started) / 1000;
  const after = memoryOf(server.pid);
  client.close();
  await server.stop();
  if (job.state !== 'done' || job.values !== VALUES) throw new Error(`import ended ${JSON.stringify(job)}`);

  const importRow = { seconds, valuesPerS: VALUES / seconds, mbPerS: mb / seconds, rssBeforeMiB: before.rssMiB, peakRssMiB: after.peakMiB };
  console.log(
    `server import: ${seconds.toFixed(2)} s, ${Math.round(importRow.valuesPerS)} values/s, ${importRow.mbPerS.toFixed(1)} MB/s; ` +
      `RSS ${before.rssMiB.toFixed(0)} MiB before, peak ${after.peakMiB.toFixed(0)} MiB`,
  );
  const probes = [
    { phase: 'no import', samples: idle },
    { phase: 'during import', samples: busy },
  ].map(({ phase, samples }) => ({
    phase,
    n: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples[samples.length - 1],
  }));
  console.table(
    probes.map((p) => ({
      phase: p.phase,
      probes: p.n,
      'p50 ms': p.p50.toFixed(3),
      'p99 ms': p.p99.toFixed(3),
      'max ms': p.max.toFixed(1),
    })),
  );
  console.log(`small-query p99 during / without import: ${(probes[1].p99 / probes[0].p99).toFixed(2)}x`);
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'bench/results/import.json'),
    JSON.stringify({ values: VALUES, mb, parsers, import: importRow, probes }, null, 2),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
