// The scenarios of the HTTP benches and how one is measured: request bodies
// (the same distributions as bench/wrk/poolq.lua), closed-loop peak load with
// wrk, and open-loop paced load in a child
// process (bench/http-paced.ts), each turned into one row with the CPU that
// the server, the load generator and everything else used meanwhile.

import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import path from 'node:path';
import { pinned, ROOT, spawnTracked, type ServerProcess } from '../../test/helpers/server-process.js';
import type { PacedResult } from './paced-client.js';
import { busyPct, machineJiffies, processCpuSeconds, runChild } from './proc.js';

export type Mode = 'add' | 'query' | 'mix' | 'echo-add' | 'echo-query';

export interface BodyShape {
  pools: number;
  values: number;
  /** Percent of queries in 'mix'. */
  queryPct: number;
}

// as in poolq.lua: values drawn from a table of random floats made once
const VALUE_STRINGS = Array.from({ length: 65536 }, () => (Math.random() * 1e6).toFixed(3));
const randomPool = (shape: BodyShape): number => Math.floor(Math.random() * shape.pools);

export function addBody(shape: BodyShape, poolId = randomPool(shape)): string {
  const values = Array.from({ length: shape.values }, () => VALUE_STRINGS[(Math.random() * 65536) | 0]);
  return `{"poolId":${poolId},"poolValues":[${values.join(',')}]}`;
}

/** A raw HTTP/1.1 keep-alive POST: the scenario's next request. */
export function rawRequest(mode: Mode, shape: BodyShape, port: number): Buffer {
  if (mode === 'mix') mode = Math.random() * 100 < shape.queryPct ? 'query' : 'add';
  const body = mode.endsWith('add') ? addBody(shape) : `{"poolId":${randomPool(shape)},"percentile":99.5}`;
  const head = `POST ${mode.startsWith('echo') ? '/echo' : `/${mode}`} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json`;
  return Buffer.from(`${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/** What wrk reports for one closed-loop run (bench/wrk/poolq.lua's WRK_JSON line). */
export interface LoadResult {
  requests: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  non2xx: number;
  socketErrors: number;
  /** CPU seconds the load generator used. */
  loadgenCpuS: number;
}

export interface Load {
  mode: Mode;
  shape: BodyShape;
  durationS: number;
  connections: number;
  /** The load generator's CPU, or null (unpinned). */
  cpu: number | null;
}

/** Path of wrk ($WRK or on PATH), or null. */
export function findWrk(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v "${WRK:-wrk}"'], { encoding: 'utf8' }).stdout.trim();
  return found === '' ? null : found;
}

export async function runWrk(wrk: string, port: number, load: Load): Promise<LoadResult> {
  const { shape } = load;
  const script = path.join(ROOT, 'bench/wrk/poolq.lua');
  const args = ['-t1', `-c${load.connections}`, `-d${load.durationS}s`, '--timeout', '2s', '-s', script, `http://127.0.0.1:${port}`];
  const child = spawnTracked(
    ...pinned(load.cpu, wrk, [...args, '--', load.mode, String(shape.pools), String(shape.values), String(shape.queryPct)]),
  );
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stdout += d.toString()));
  let cpu = 0;
  const sampler = setInterval(() => (cpu = processCpuSeconds(child.pid!) || cpu), 100); // /proc is gone once it exits
  const code = await new Promise<number | null>((resolve, reject) => child.once('error', reject).once('exit', resolve));
  clearInterval(sampler);
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (code !== 0 || line === undefined) throw new Error(`wrk ${args.join(' ')} failed (exit ${code}):\n${stdout}`);
  return { ...(JSON.parse(line.slice('WRK_JSON '.length)) as Omit<LoadResult, 'loadgenCpuS'>), loadgenCpuS: cpu };
}

export interface Row {
  server: string;
  scenario: string;
  kind: 'peak' | 'paced';
  rps: number;
  p50Us: number;
  p99Us: number;
  non2xx: number;
  socketErrors: number;
  /** % of one core over the measured run: the server (all threads), the load generator, everything else on the machine. */
  serverCpuPct: number;
  loadgenCpuPct: number;
  otherCpuPct: number;
  /** Speed of a fixed loop just before the run, relative to the start of the bench. */
  cpuSpeed?: number;
  /** Peak rows: requests/s of every round (the row is the median round). */
  roundRps?: number[];
  detail: LoadResult | PacedResult;
}

type CpuShares = Pick<Row, 'serverCpuPct' | 'loadgenCpuPct' | 'otherCpuPct'>;

/** CPU of the server and of the whole machine from start() to end(). */
function cpuWindow(server: ServerProcess): { start: () => void; end: (loadgenCpuS: number) => CpuShares } {
  let [cpu0, m0, t0] = [0, machineJiffies(), performance.now()];
  const start = (): void => void ([cpu0, m0, t0] = [processCpuSeconds(server.proc.pid!), machineJiffies(), performance.now()]);
  const end = (loadgenCpuS: number): CpuShares => {
    const wallS = (performance.now() - t0) / 1000;
    const serverCpuPct = (100 * (processCpuSeconds(server.proc.pid!) - cpu0)) / wallS;
    const loadgenCpuPct = (100 * loadgenCpuS) / wallS;
    const machinePct = busyPct(m0, machineJiffies()) * cpus().length;
    return { serverCpuPct, loadgenCpuPct, otherCpuPct: Math.max(0, machinePct - serverCpuPct - loadgenCpuPct) };
  };
  return { start, end };
}

/** Closed-loop peak: a warm-up run, then the measured one. */
export async function measurePeak(
  server: ServerProcess,
  name: string,
  scenario: string,
  load: Load,
  warmupS: number,
  wrk: string,
): Promise<Row> {
  const run = (durationS: number): Promise<LoadResult> => runWrk(wrk, server.port, { ...load, durationS });
  if (warmupS > 0) await run(warmupS);
  const window = cpuWindow(server);
  window.start();
  const r = await run(load.durationS);
  const { rps, p50Us, p99Us, non2xx, socketErrors } = r;
  return {
    server: name,
    scenario,
    kind: 'peak',
    rps,
    p50Us,
    p99Us,
    non2xx,
    socketErrors,
    ...window.end(r.loadgenCpuS),
    detail: r,
  };
}

/** What bench/http-paced.ts takes, as one JSON argument. */
export interface PacedJob {
  port: number;
  rate: number;
  mode: Mode;
  shape: BodyShape;
  durationS: number;
  warmupS: number;
  connections: number;
}

/** Open loop at `rate` requests/s from bench/http-paced.ts, pinned like the load generators. */
export async function measurePaced(server: ServerProcess, name: string, load: Load, rate: number, warmupS: number): Promise<Row> {
  const job: PacedJob = {
    port: server.port,
    rate,
    mode: load.mode,
    shape: load.shape,
    durationS: load.durationS,
    warmupS,
    connections: load.connections,
  };
  // A 64 MiB young generation: the spinning sender's garbage then costs a scavenge a second, not ~15 inside p99.
  const [command, nodeArgs] = pinned(load.cpu, process.execPath, ['--min-semi-space-size=64', '--max-semi-space-size=64']);
  const window = cpuWindow(server);
  const onLine = (line: string): void => void (line === 'measuring' && window.start());
  const script = path.join(ROOT, 'dist/bench/http-paced.js');
  const { result: r } = await runChild<PacedResult & { clientCpuS: number }>(script, [JSON.stringify(job)], { command, nodeArgs, onLine });
  const [p50Us, p99Us, socketErrors] = [r.latencyUs.p50, r.latencyUs.p99, r.socketErrors + r.lost];
  return {
    server: name,
    scenario: `${load.mode}@50%`,
    kind: 'paced',
    rps: r.achievedRate,
    p50Us,
    p99Us,
    non2xx: r.non2xx,
    socketErrors,
    ...window.end(r.clientCpuS),
    detail: r,
  };
}
