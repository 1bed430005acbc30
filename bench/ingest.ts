// npm run bench:ingest — the ingest paths side by side under --fsync never
// and always (one server per mode, pinned to CPU 0; every load generator is a
// child pinned to CPU 1): JSON /add (wrk, 32 connections, 10 values), /ws
// JSON and binary 10-value adds (32 sockets, 32 in flight each), 10^6-value
// octet-stream bodies into one pool, NDJSON batches of 1000 pools x 100
// values, push latency with 1000 subscribers under 10k appends/s, and server
// memory under a stalled subscriber, each on a server whose merges from the
// scenario before have settled; first, the ceilings of bulk ingest on the
// server's core (sort, engine, disk: lib/ingest-ceilings.ts). Prints a table
// and the target ratios; writes bench/results/ingest.json. Usage: npm run bench:ingest [-- --duration 5 | --quick]

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  installChildCleanup,
  pinned,
  ROOT,
  spawnTracked,
  startServer,
  tempDataDir,
  type ServerProcess,
} from '../test/helpers/server-process.js';
import { findWrk, runWrk } from './lib/http-scenarios.js';

const SERVER_CPU = 0;
const LOAD_CPU = 1;
/** Seconds per scenario: --duration S, 1 with --quick (a smoke run), else 5. */
const durationS = process.argv.includes('--quick') ? 1 : Number(process.argv[process.argv.indexOf('--duration') + 1]) || 5;

type Fsync = 'never' | 'always';
type Row = Record<string, number | string>;

function startPoolq(fsync: Fsync): Promise<ServerProcess> {
  return startServer(['--fsync', fsync], { cpu: SERVER_CPU, dataDir: tempDataDir(`poolq-bench-ingest-${fsync}-`), timeoutMs: 60_000 });
}

async function load(scenario: string, server: ServerProcess, extra: object = {}): Promise<Row> {
  const spec = JSON.stringify({ scenario, port: server.port, durationS, serverPid: server.proc.pid, ...extra });
  const [command, args] = pinned(LOAD_CPU, process.execPath, [path.join(ROOT, 'dist/bench/lib/ingest-load.js'), spec]);
  const child = spawnTracked(command, args, { cwd: ROOT });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${scenario}: load generator exited ${code}\n${err}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as Row;
}

interface Ceilings {
  sortValuesPerS: number;
  engineValuesPerS: number;
  diskValuesPerS: number;
}

/** The sort, engine and disk ceilings of bulk ingest (bench/lib/ingest-ceilings.ts), on the server's core, in the file system of its data. */
async function ceilings(): Promise<Ceilings> {
  const dataDir = tempDataDir('poolq-bench-ceiling-');
  const spec = JSON.stringify({ dataDir, durationS });
  const [command, args] = pinned(SERVER_CPU, process.execPath, [path.join(ROOT, 'dist/bench/lib/ingest-ceilings.js'), spec]);
  const child = spawnTracked(command, args, { cwd: ROOT });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  rmSync(dataDir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`ingest ceilings exited ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as Ceilings;
}

async function httpAdd(server: ServerProcess): Promise<Row> {
  const wrk = findWrk();
  if (wrk === null) throw new Error('bench:ingest needs wrk for the JSON /add row (apt-get install wrk)');
  const options = { mode: 'add' as const, shape: { pools: 1000, values: 10, queryPct: 0 }, durationS, connections: 32, cpu: LOAD_CPU };
  // A fresh server's first second runs cold code; it is the first scenario of each mode, so warm it up unmeasured.
  await runWrk(wrk, server.port, { ...options, durationS: 1 });
  const r = await runWrk(wrk, server.port, options);
  return {
    requests: r.requests,
    errors: r.non2xx + r.socketErrors,
    rps: r.rps,
    valuesPerS: r.rps * 10,
    p50Ms: r.p50Us / 1000,
    p99Ms: r.p99Us / 1000,
  };
}

async function gauge(server: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

/**
 * Waits until no merge has run for 200 ms, so the next scenario does not pay
 * for this one's compaction; returns how long that took and the runs left.
 */
async function settle(server: ServerProcess): Promise<{ settleMs: number; runs: number }> {
  const started = performance.now();
  let quietSince = performance.now();
  while (performance.now() - quietSince < 200) {
    if ((await gauge(server, 'poolq_merges_in_flight')) > 0) quietSince = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { settleMs: performance.now() - started - 200, runs: await gauge(server, 'poolq_sorted_runs') };
}

/** The bulk row, plus its sustained rate: its values over its time and the time its merges took to finish after the last ack. */
async function bulk(server: ServerProcess): Promise<Row> {
  const row = await load('bulk', server, { connections: 2 });
  const { settleMs, runs } = await settle(server);
  const values = Number(row.valuesPerS) * Number(row.seconds);
  return { ...row, settleMs, runsAfter: runs, sustainedValuesPerS: values / (Number(row.seconds) + settleMs / 1000) };
}

const fmt = (n: unknown, digits = 0): string =>
  typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : '—';

async function main(): Promise<void> {
  installChildCleanup();
  const results: Record<Fsync, Record<string, Row>> = { never: {}, always: {} };
  console.error('bench:ingest: sort, engine and disk ceilings');
  const ceiling = await ceilings();
  for (const fsync of ['never', 'always'] as const) {
    const server = await startPoolq(fsync);
    try {
      const r = results[fsync];
      console.error(`bench:ingest: --fsync ${fsync}`);
      r['http-add'] = await httpAdd(server);
      r['ws-json'] = await load('ws-json', server, { connections: 32, depth: 32 });
      r['ws-binary'] = await load('ws-binary', server, { connections: 32, depth: 32 });
      r['bulk'] = await bulk(server);
      r['ndjson'] = await load('ndjson', server, { connections: 2 });
      await settle(server);
      r['push'] = await load('push', server, { rate: 10_000 });
      r['stall'] = await load('stall', server);
    } finally {
      await server.stop();
    }
  }

  const rows = ['http-add', 'ws-json', 'ws-binary', 'bulk', 'ndjson'];
  const label: Record<string, string> = {
    'http-add': 'JSON POST /add, 10 values, 32 connections (wrk)',
    'ws-json': '/ws JSON add, 10 values, 32 sockets x 32 in flight',
    'ws-binary': '/ws binary add, 10 values, 32 sockets x 32 in flight',
    bulk: 'octet-stream 10^6 values into one pool, 2 connections',
    ndjson: 'NDJSON /batch 1000 pools x 100 values, 2 connections',
  };
  console.log('\n| scenario | requests/s never | values/s never | requests/s always | values/s always | errors |');
  console.log('|---|--:|--:|--:|--:|--:|');
  for (const k of rows) {
    const n = results.never[k];
    const a = results.always[k];
    console.log(
      `| ${label[k]} | ${fmt(n.rps)} | ${fmt(n.valuesPerS)} | ${fmt(a.rps)} | ${fmt(a.valuesPerS)} | ${fmt(Number(n.errors) + Number(a.errors))} |`,
    );
  }
  for (const fsync of ['never', 'always'] as const) {
    const p = results[fsync].push;
    const s = results[fsync].stall;
    console.log(
      `\n--fsync ${fsync}: push latency with ${p.subscribers} subscribers (intervalMs ${p.intervalMs}) at ${fmt(p.appendsPerS)} appends/s: ` +
        `p50 ${fmt(p.p50Ms, 1)} ms, p99 ${fmt(p.p99Ms, 1)} ms, max ${fmt(p.maxMs, 1)} ms over ${fmt(p.pushes)} pushes ` +
        `(the load generator's own event-loop delay p99: ${fmt(p.clientLoopDelayP99Ms, 1)} ms); ` +
        `stalled subscriber: server RSS ${fmt(Number(s.rssBefore) / 2 ** 20, 1)} → ${fmt(Number(s.rssAfter) / 2 ** 20, 1)} MiB over ${fmt(s.appends)} appends, ${fmt(s.bufferedBytes)} bytes unsent`,
    );
  }
  const a = results.always;
  const ratios = {
    wsBinaryOverHttpAddAlways: Number(a['ws-binary'].rps) / Number(a['http-add'].rps),
    wsJsonOverHttpAddAlways: Number(a['ws-json'].rps) / Number(a['http-add'].rps),
    bulkValuesPerSAlwaysOver25M: Number(a.bulk.valuesPerS) / 25e6,
    bulkAlwaysOverSortCeiling: Number(a.bulk.valuesPerS) / ceiling.sortValuesPerS,
    bulkSustainedAlwaysOver25M: Number(a.bulk.sustainedValuesPerS) / 25e6,
    bulkSustainedAlwaysOverEngineCeiling: Number(a.bulk.sustainedValuesPerS) / ceiling.engineValuesPerS,
    bulkAlwaysOverDiskCeiling: Number(a.bulk.valuesPerS) / ceiling.diskValuesPerS,
    pushP99MinusIntervalMsAlways: Number(a.push.p99Ms) - Number(a.push.intervalMs),
    stalledRssGrowthMiBAlways: (Number(a.stall.rssAfter) - Number(a.stall.rssBefore)) / 2 ** 20,
  };
  const r = (n: number, digits = 2) => fmt(n, digits);
  console.log(
    [
      `\nTargets (ratios): durable /ws binary adds ÷ durable /add requests/s = ${r(ratios.wsBinaryOverHttpAddAlways)}`,
      `(target ≥ 3; /ws JSON ${r(ratios.wsJsonOverHttpAddAlways)});`,
      `durable bulk values/s ÷ 25 M = ${r(ratios.bulkValuesPerSAlwaysOver25M)} (target ≥ 1;`,
      `÷ the sort ceiling ${r(ratios.bulkAlwaysOverSortCeiling)}; sustained, with its merges: ÷ 25 M ${r(ratios.bulkSustainedAlwaysOver25M)},`,
      `÷ the engine ceiling ${r(ratios.bulkSustainedAlwaysOverEngineCeiling)},`,
      `÷ the disk ceiling ${r(ratios.bulkAlwaysOverDiskCeiling)});`,
      `push p99 − interval = ${r(ratios.pushP99MinusIntervalMsAlways, 1)} ms (target < 5);`,
      `stalled-subscriber RSS growth ${r(ratios.stalledRssGrowthMiBAlways, 1)} MiB`,
    ].join(' '),
  );
  console.log(
    `Ceilings on the server's core, same run: the WASM sort of fresh 10^6-value batches ${fmt(ceiling.sortValuesPerS)} values/s; ` +
      `sorting and appending them to one pool of the engine, merges inline ${fmt(ceiling.engineValuesPerS)} values/s; ` +
      `8 MB writes + fdatasync in the data's file system ${fmt(ceiling.diskValuesPerS)} values/s.`,
  );
  for (const fsync of ['never', 'always'] as const) {
    const b = results[fsync].bulk;
    console.log(
      `--fsync ${fsync} bulk: ${fmt(b.valuesPerS)} values/s acknowledged; the merges ran ${fmt(b.settleMs)} ms past the last ack ` +
        `(then ${fmt(b.runsAfter)} runs across all pools), so ${fmt(b.sustainedValuesPerS)} values/s sustained`,
    );
  }
  const outDir = path.join(ROOT, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    path.join(outDir, 'ingest.json'),
    JSON.stringify({ durationS, ceiling, results, ratios, at: new Date().toISOString() }, null, 2),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
