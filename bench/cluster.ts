// `npm run bench:cluster` (needs haproxy and wrk): what the proxy costs and how
// long a shard is away after a crash, on this machine.
//
// 1. Throughput: a one-shard cluster (HAProxy 2.6 + poolq, src/cli/cluster),
//    the same instance loaded by wrk straight and through the proxy, the two
//    alternating within each round (--rounds, --seconds per run). poolq runs on
//    CPU 0; HAProxy and wrk share CPU 1 (2 cores: the proxy's CPU is taken from
//    the load generator's, as it would be from a co-located client).
// 2. Recovery: the shard's data directory holds a snapshot of --values values
//    (1000 pools); it is SIGKILLed and restarted: spawn → ready (poolq's own
//    recovery) → the proxy answering for its pools again (health checks).
// 3. Moves: one bucket (10 pools × 10⁵ values) moved between two shards with
//    the scripted procedure: how long its appends were refused, and the whole move.
//
// Options: --rounds N (3), --seconds S (5), --values N (1e8; 0 skips the
// restart); --quick: 1 round of 1 s, 10⁶ values. Output: tables and
// bench/results/cluster.json.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LocalCluster } from '../src/cli/cluster/local-cluster.js';
import { haproxyWorkers } from '../src/cli/cluster/haproxy-process.js';
import { spawnSync } from 'node:child_process';
import { snapshotFileName, writeSnapshotFileSync, type SnapshotPool } from '../src/storage/snapshot-format.js';
import { plainRun } from '../src/core/stored-run.js';
import { fastSortedRun, rng32 } from './lib/data.js';
import { findWrk, runWrk, type LoadResult, type Mode } from './lib/http-scenarios.js';
import { processCpuSeconds } from './lib/proc.js';
import { printTable, writeResults, type Row as TableRow } from './lib/report.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    values: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds ?? (args.quick ? 1 : 3));
const SECONDS = Number(args.seconds ?? (args.quick ? 1 : 5));
const VALUES = Number(args.values ?? (args.quick ? 1e6 : 1e8));
const POOLS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pins a running process, every thread of it, to one CPU. */
function pinProcess(pid: number, cpu: number): void {
  spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** `pools` pools (ids 0 … pools − 1) of one sorted run of `perPool` values, written as snapshot seq 1. */
function writeSnapshot(dataDir: string, pools: number, perPool: number): number {
  const next = rng32(14);
  const now = Date.now();
  const state: SnapshotPool[] = Array.from({ length: pools }, (_, p) => {
    const values = fastSortedRun(perPool, p * 1000, next);
    return { poolId: p, windowSeconds: null, buckets: [{ startMs: now, endMs: now + 1, runs: [plainRun(values, values.length)] }] };
  });
  return writeSnapshotFileSync(path.join(dataDir, snapshotFileName(1)), 1, state).bytes;
}

interface Row {
  scenario: Mode;
  target: 'direct' | 'proxy';
  round: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  non2xx: number;
  /** CPU ms per 1000 requests: the shard, and HAProxy (proxy runs). */
  shardCpuMs: number;
  proxyCpuMs: number;
}

async function throughput(wrk: string): Promise<Row[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poolq-bench-cluster-'));
  const cluster = await LocalCluster.start({ dir, shards: 1, port: 0, poolqArgs: ['--workers', '0'] });
  try {
    const shard = cluster.instances.get('shard-0')!;
    const proxyPid = (await haproxyWorkers(cluster.layout.masterSocket)).current[0];
    pinProcess(shard.pid, 0);
    pinProcess(proxyPid, 1);
    const direct = Number(cluster.shardMap.shards.get('shard-0')!.address.split(':')[1]);
    const proxy = Number(new URL(cluster.layout.proxyUrl).port);
    const values = JSON.stringify(Array.from({ length: 1000 }, (_, i) => i * 0.5));
    for (let id = 0; id < POOLS; id++) await fetch(`${cluster.layout.proxyUrl}/pools/${id}/values`, { method: 'POST', body: values });
    const rows: Row[] = [];
    // round 0 warms both paths up (JIT, buffers, HAProxy's server connections) and is not kept
    for (let round = 0; round <= ROUNDS; round++) {
      for (const scenario of ['query', 'add'] as const) {
        const order = round % 2 === 1 ? (['direct', 'proxy'] as const) : (['proxy', 'direct'] as const);
        for (const target of order) {
          const cpu0 = [processCpuSeconds(shard.pid), processCpuSeconds(proxyPid)];
          const result: LoadResult = await runWrk(wrk, target === 'direct' ? direct : proxy, {
            mode: scenario,
            shape: { pools: POOLS, values: 10, queryPct: 90 },
            durationS: round === 0 ? 2 : SECONDS,
            connections: 32,
            cpu: 1,
          });
          const perK = (before: number, pid: number) => ((processCpuSeconds(pid) - before) * 1e6) / result.requests;
          rows.push({
            scenario,
            target,
            round,
            rps: Math.round(result.rps),
            p50Us: Math.round(result.p50Us),
            p99Us: Math.round(result.p99Us),
            non2xx: result.non2xx + result.socketErrors,
            shardCpuMs: Number(perK(cpu0[0], shard.pid).toFixed(1)),
            proxyCpuMs: target === 'proxy' ? Number(perK(cpu0[1], proxyPid).toFixed(1)) : 0,
          });
          if (round === 0) rows.pop();
          else console.error(JSON.stringify(rows[rows.length - 1]));
          await sleep(500);
        }
      }
    }
    return rows;
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Recovery {
  values: number;
  snapshotBytes: number;
  /** Spawn → "poolq ready" (process start, WASM, snapshot load). */
  readyMs: number;
  /** poolq's own recoveryMs (lock → ready). */
  recoveryMs: number;
  /** Spawn → the proxy answers 200 for one of the shard's pools. */
  servedMs: number;
}

async function recovery(): Promise<Recovery[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poolq-bench-recovery-'));
  const perPool = Math.round(VALUES / POOLS);
  mkdirSync(path.join(dir, 'shard-0'), { recursive: true });
  const snapshotBytes = writeSnapshot(path.join(dir, 'shard-0'), POOLS, perPool);
  const cluster = await LocalCluster.start({ dir, shards: 1, port: 0, poolqArgs: ['--snapshot-interval-ms', '0'] });
  const out: Recovery[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      await cluster.killShard('shard-0');
      const spawned = performance.now();
      const instance = await cluster.startShard('shard-0');
      while ((await fetch(`${cluster.layout.proxyUrl}/pools/7`).catch(() => null))?.status !== 200) await sleep(10);
      const servedMs = performance.now() - spawned;
      const log = readFileSync(path.join(dir, 'shard-0.log'), 'utf8').trim().split('\n');
      const ready = JSON.parse(log.filter((l) => l.includes('"poolq ready"')).pop()!) as { recoveryMs: number; values: number };
      out.push({
        values: ready.values,
        snapshotBytes,
        readyMs: Math.round(instance.readyMs),
        recoveryMs: ready.recoveryMs,
        servedMs: Math.round(servedMs),
      });
      console.error(JSON.stringify(out[out.length - 1]));
    }
    return out;
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Move {
  values: number;
  /** Mark → the proxy routing to the new owner: appends to the bucket got 503 meanwhile. */
  writesRefusedMs: number;
  totalMs: number;
}

/** A bucket of 10 pools × 10⁵ values moved back and forth between two shards. */
async function moves(): Promise<Move[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poolq-bench-move-'));
  const cluster = await LocalCluster.start({ dir, shards: 2, port: 0 });
  const out: Move[] = [];
  try {
    const values = JSON.stringify(Array.from({ length: 100_000 }, (_, i) => i * 0.25));
    for (let k = 0; k < 10; k++) {
      const res = await fetch(`${cluster.layout.proxyUrl}/pools/${5 + 4096 * k}/values`, { method: 'POST', body: values });
      if (!res.ok) throw new Error(`prefill: ${res.status} ${await res.text()}`);
    }
    for (let i = 0; i < ROUNDS; i++) {
      const report = await cluster.moveBuckets([5], i % 2 === 0 ? 'shard-1' : 'shard-0');
      out.push({
        values: report.moved[0].values,
        writesRefusedMs: Math.round(report.writesRefusedMs),
        totalMs: Math.round(report.totalMs),
      });
      console.error(JSON.stringify(out[out.length - 1]));
    }
    return out;
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const wrk = findWrk();
  if (wrk === null) throw new Error('wrk is needed: apt-get install -y wrk');
  const rows = await throughput(wrk);
  const restarts = VALUES > 0 ? await recovery() : [];
  const moved = await moves();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const table: TableRow[] = [];
  for (const scenario of ['query', 'add'] as const) {
    for (const target of ['direct', 'proxy'] as const) {
      const mine = rows.filter((r) => r.scenario === scenario && r.target === target);
      const direct = (round: number) => rows.find((d) => d.scenario === scenario && d.target === 'direct' && d.round === round)!.rps;
      const ratios = mine.map((r) => r.rps / direct(r.round));
      table.push({
        scenario,
        target,
        'req/s': median(mine.map((r) => r.rps)),
        'p50 µs': median(mine.map((r) => r.p50Us)),
        'p99 µs': median(mine.map((r) => r.p99Us)),
        'poolq CPU ms/1k': median(mine.map((r) => r.shardCpuMs)),
        'HAProxy CPU ms/1k': median(mine.map((r) => r.proxyCpuMs)),
        'proxy ÷ direct (range)':
          target === 'proxy' ? `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '',
      });
    }
  }
  printTable(`throughput, median of ${ROUNDS} rounds (proxy ÷ direct within each round)`, table);
  if (restarts.length > 0) {
    printTable(
      `restart after SIGKILL, ${restarts[0].values} values (${(restarts[0].snapshotBytes / 2 ** 20).toFixed(0)} MiB snapshot)`,
      restarts.map((r, i) => ({
        restart: i + 1,
        'recovery ms': r.recoveryMs,
        'spawn → ready ms': r.readyMs,
        'spawn → served ms': r.servedMs,
      })),
    );
  }
  printTable(
    `bucket moves, ${moved[0].values} values in 10 pools`,
    moved.map((m, i) => ({ move: i + 1, 'appends refused ms': m.writesRefusedMs, 'whole move ms': m.totalMs })),
  );
  writeResults('cluster', { rounds: ROUNDS, seconds: SECONDS, rows, restarts, moved });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
