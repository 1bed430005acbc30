// `npm run bench:http`: HTTP throughput and latency of poolq against two
// baselines measured in the same run, on 127.0.0.1 and bounded in time.
//
//   servers   hello (bare uWS: GET / and POST /echo, the ceiling), poolq-never (--fsync never),
//             poolq-always (the default), fastify (the peer); bench/lib/http-servers.ts
//   peak      wrk (bench/wrk/poolq.lua; apt-get install -y wrk), 1 thread, 32 connections,
//             warm-up + measured run: query (p99.5 over 1000 prefilled pools), mix (90 % queries),
//             add (10 random values), and on the bare server echo-query and echo-add; appends
//             again with 128 connections (add@128c: under --fsync always an append waits for its
//             group commit, so throughput is connections in flight / commit time)
//   paced     open loop at 50 % of each server's own peak (bench/http-paced.ts): hello echo-add,
//             poolq query and add; latency from the intended send time
//   rounds    all servers stay up and each scenario runs on every server back to back, the whole
//             sequence once per round; a peak row keeps its median round, so every ratio compares
//             runs seconds apart (the machine's speed drifts by ±20 % over minutes)
//   noise     waits (bounded) for a quiet machine, pins servers to CPU 0 and load generators to
//             CPU 1 (taskset), and reports the CPU other processes took during each run
//
// Options: --rounds 3 --duration 5 --warmup 1 --paced 5 --connections 32 --paced-connections 64
//   --pools 1000 --prefill 1000 --values 10 --wait-quiet 30 --servers hello,poolq-never,poolq-always,fastify
//   --no-pin; --quick: 1 round of 1 s runs without warm-up over 100 small pools, a smoke run of about a minute.
// Output: a table and bench/results/http.json; exit code 1 when a server failed or answered errors.

import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { canPin, tempDataDir, type ServerProcess } from '../test/helpers/server-process.js';
import { printHttpReport, rowsForJson } from './lib/http-report.js';
import { findWrk, measurePaced, measurePeak, type Load, type Mode, type Row } from './lib/http-scenarios.js';
import { prefill, smoke, startNamed, SERVERS, type ServerName } from './lib/http-servers.js';
import { waitQuiet } from './lib/proc.js';
import { writeResults } from './lib/report.js';
import { medianIndex } from './lib/stats.js';

const MANY_CONNECTIONS = 128;
const FULL = {
  rounds: 3,
  duration: 5,
  warmup: 1,
  paced: 5,
  connections: 32,
  'paced-connections': 64,
  pools: 1000,
  prefill: 1000,
  values: 10,
  'wait-quiet': 30,
};
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const opts: Record<keyof typeof FULL, number> = quick
  ? { ...FULL, rounds: 1, duration: 1, warmup: 0, paced: 1, pools: 100, prefill: 100, 'wait-quiet': 0 }
  : { ...FULL };
let servers: ServerName[] = [...SERVERS];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--quick' || args[i] === '--no-pin') continue;
  const [name, value = args[++i]] = args[i].slice(2).split('='); // --name value or --name=value
  if (name === 'servers' && value !== undefined) servers = SERVERS.filter((s) => value.split(',').includes(s));
  else if (name in opts && Number(value) >= 0) opts[name as keyof typeof FULL] = Number(value);
  else throw new Error(`unknown option or bad value: --${name} ${value ?? ''} (options: the top of bench/http-load.ts)`);
}
const shape = { pools: opts.pools, values: opts.values, queryPct: 90 };

/** A fixed loop's speed relative to its first timing: the machine can be slowed from outside without a trace in /proc/stat. */
let baseProbeMs = 0;
function cpuSpeed(): number {
  const probe = (): number => {
    const t = performance.now();
    let x = 0.5;
    for (let i = 0; i < 1_500_000; i++) x = (x * 1.000001 + i) % 1e9;
    return performance.now() - t + (x < 0 ? 1 : 0);
  };
  const ms = Math.min(probe(), probe(), probe());
  baseProbeMs ||= ms;
  return baseProbeMs / ms;
}

async function main(): Promise<void> {
  const started = performance.now();
  const wrk = findWrk();
  if (wrk === null) throw new Error('bench:http needs wrk (apt-get install -y wrk)');
  const pin = !args.includes('--no-pin') && canPin();
  const [serverCpu, loadgenCpu] = pin ? [0, 1] : [null, null];
  const durationS = Math.max(1, Math.round(opts.duration)); // wrk takes whole seconds
  const warmupS = Math.round(opts.warmup);
  console.log(
    `bench:http — ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}; wrk, ${warmupS} s warm-up + ${durationS} s per run`,
  );
  console.log(pin ? 'servers on CPU 0, load generators on CPU 1 (taskset)' : 'processes unpinned');
  const quiet = await waitQuiet(opts['wait-quiet'], 1, 10);
  console.log(`machine ${Math.round(quiet.busyPct)} % busy before the run${quiet.quiet ? '' : ': other work will disturb the numbers'}`);
  cpuSpeed(); // the reference: speed 1.00

  const rows: Row[] = [];
  const problems: string[] = [];
  const up = new Map<ServerName, ServerProcess>();
  const dataDirs: string[] = [];
  process.on('exit', () => dataDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  for (const name of servers) {
    try {
      dataDirs.push(tempDataDir('poolq-bench-'));
      const server = await startNamed(name, serverCpu, dataDirs.at(-1)!);
      up.set(name, server);
      if (name !== 'hello') await prefill(server, shape, opts.prefill);
      await smoke(name, server, shape, opts.prefill);
      console.log(`${name}: ready in ${Math.round(server.readyMs)} ms`);
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
      up.delete(name);
    }
  }

  /** One measurement on a server that is up; a failure is reported with the server's last output, and the bench goes on. */
  const measure = async (name: ServerName, what: (server: ServerProcess) => Promise<Row>): Promise<void> => {
    const server = up.get(name);
    if (server === undefined) return;
    await new Promise((r) => setTimeout(r, 200)); // let this process's JIT and GC settle
    const cpuSpeedNow = cpuSpeed();
    try {
      const row = { ...(await what(server)), cpuSpeed: cpuSpeedNow };
      rows.push(row);
      console.log(`  ${name.padEnd(12)} ${row.scenario.padEnd(14)} ${Math.round(row.rps).toString().padStart(7)} req/s`);
      if (row.non2xx + row.socketErrors > 0)
        problems.push(`${name} ${row.scenario}: ${row.non2xx} non-2xx, ${row.socketErrors} socket errors`);
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}\n    ${server.tail().slice(-10).join('\n    ')}`);
    }
  };
  const load = (mode: Mode, connections: number, seconds: number): Load => ({
    mode,
    shape,
    durationS: seconds,
    connections,
    cpu: loadgenCpu,
  });
  const peak = (name: ServerName, mode: Mode, connections = opts.connections): Promise<void> => {
    const scenario = connections === opts.connections ? mode : `${mode}@${connections}c`;
    return measure(name, (s) => measurePeak(s, name, scenario, load(mode, connections, durationS), warmupS, wrk));
  };
  const services = servers.filter((n) => n !== 'hello');
  for (let round = 1; round <= opts.rounds; round++) {
    console.log(`round ${round} of ${opts.rounds} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    await peak('hello', 'echo-query');
    for (const n of services) await peak(n, 'query');
    for (const n of services) await peak(n, 'mix');
    await peak('hello', 'echo-add');
    for (const n of services) await peak(n, 'add');
    await peak('hello', 'echo-add', MANY_CONNECTIONS);
    for (const n of services) if (n !== 'fastify') await peak(n, 'add', MANY_CONNECTIONS);
  }
  // Each peak row keeps its median round, with every round's requests/s noted on it.
  const groups = new Map<string, Row[]>();
  for (const r of rows) groups.set(`${r.server} ${r.scenario}`, [...(groups.get(`${r.server} ${r.scenario}`) ?? []), r]);
  const kept = [...groups.values()].map((g) => ({ ...g[medianIndex(g.map((r) => r.rps))], roundRps: g.map((r) => r.rps) }));
  rows.splice(0, rows.length, ...kept.sort((a, b) => SERVERS.indexOf(a.server as ServerName) - SERVERS.indexOf(b.server as ServerName)));

  console.log(`paced at 50 % of each peak (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  const paced = async (name: ServerName, mode: Mode): Promise<void> => {
    const peakRps = rows.find((r) => r.server === name && r.scenario === mode)?.rps;
    const pacedLoad = load(mode, opts['paced-connections'], opts.paced);
    if (peakRps !== undefined)
      await measure(name, (s) => measurePaced(s, name, pacedLoad, Math.round(peakRps / 2), Math.max(warmupS, 0.5)));
  };
  await paced('hello', 'echo-add');
  for (const n of services) if (n !== 'fastify') await paced(n, 'query');
  for (const n of services) if (n !== 'fastify') await paced(n, 'add');
  await Promise.all([...up.values()].map((s) => s.stop()));

  printHttpReport(rows, opts.rounds);
  if (problems.length > 0) console.log(`\nPROBLEMS:\n  - ${problems.join('\n  - ')}`);
  const totalS = (performance.now() - started) / 1000;
  writeResults('http', {
    options: opts,
    servers,
    pinned: pin,
    machineBusyBeforePct: quiet.busyPct,
    totalS,
    rows: rowsForJson(rows),
    problems,
  });
  console.log(`total ${totalS.toFixed(0)} s`);
  if (problems.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
