// `npm run bench:storage`: what durability costs on this machine. Every
// measurement runs in a fresh child process (fresh heap; warm page cache unless
// it was dropped) with `npm start`'s environment.
//
//   1. snapshot write: the state (1e7 and 1e8 values) is written as a snapshot
//      file directly (the store's writer and bytes; 1e8 values through the log
//      would take far longer), then a child recovers it and times store.snapshotNow()
//   2. load: openDurableStore of that snapshot into a fresh WASM engine, with a
//      warm page cache and after dropping it (cold; needs root), and the real
//      server's spawn → /readyz 200 over the same directory
//   3. log replay: a log written with fsync 'never' and no snapshots, its writer
//      SIGKILLed, then recovery timed right after the kill, once synced, and cold
//   4. group commit: 256 submitters of 10-value appends under fsync 'always'
//      against 'never' as the baseline, interleaved, 2 runs each; 1 and 1024 in flight
//
// Options: --quick (small sizes: a smoke run), --no-cold, --no-server, --wait-quiet S
// (90: before each section wait for a quiet machine, at most S s in all; 0: don't).
// Output: tables and bench/results/storage.json.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SERVER_ENV, serverEnvText } from '../src/server-env.js';
import { startServer } from '../test/helpers/server-process.js';
import { runChild, waitQuiet } from './lib/proc.js';
import { fmtMs, fmtRatio, printTable, si, writeResults } from './lib/report.js';
import {
  runChildTask,
  type BuildResult,
  type CommitArgs,
  type CommitResult,
  type LoadResult,
  type ReplayResult,
  type WalWriteResult,
} from './lib/storage-tasks.js';

const SCRIPT = fileURLToPath(import.meta.url);
const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** Runs one task of lib/storage-tasks.ts in a fresh process with npm start's environment. */
function task<T>(name: string, args: object): Promise<{ result: T; wallMs: number }> {
  return runChild<T>(SCRIPT, ['--child', name, JSON.stringify(args)], { env: { ...process.env, ...SERVER_ENV } });
}

/** sync, then drop the page cache (root only); false when not permitted. */
function dropCaches(): boolean {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const { values: argv } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      'no-cold': { type: 'boolean' },
      'no-server': { type: 'boolean' },
      'wait-quiet': { type: 'string' },
    },
  });
  const quick = argv.quick === true;
  const cold = argv['no-cold'] !== true;
  const server = argv['no-server'] !== true;
  let quietBudgetS = Number(argv['wait-quiet'] ?? (quick ? 0 : 90));
  const quietWaits: Record<string, { waitedS: number; quiet: boolean }> = {};
  const section = async (name: string): Promise<void> => {
    console.log(`\n— ${name}`);
    if (quietBudgetS <= 0) return;
    const w = await waitQuiet(quietBudgetS, 3);
    quietBudgetS -= w.waitedS;
    quietWaits[name] = w;
    if (!w.quiet) console.log(`  (the machine did not get quiet: other work skews these numbers)`);
  };
  const started = performance.now();
  const root = mkdtempSync(join(tmpdir(), 'poolq-bench-storage-'));
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  console.log(
    `bench:storage — child processes run with ${serverEnvText()} (as npm start), engine wasm${quick ? '; --quick: a smoke run' : ''}`,
  );

  // ---- 1 + 2: snapshots and loads
  const states = quick
    ? [
        { name: '1e5 (100×1e3)', pools: 100, perPool: 1e3 },
        { name: '1e6 (10×1e5)', pools: 10, perPool: 1e5 },
      ]
    : [
        { name: '1e7 (1000×1e4)', pools: 1000, perPool: 1e4 },
        { name: '1e8 (1000×1e5)', pools: 1000, perPool: 1e5 },
        { name: '1e8 (10×1e7)', pools: 10, perPool: 1e7 },
      ];
  const snapshots: { state: string; build: BuildResult; snapshot: NonNullable<LoadResult['snapshot']> }[] = [];
  const loads: { state: string; run: string; load: LoadResult }[] = [];
  const starts: { state: string; cache: string; readyMs: number; recoveryMs: number }[] = [];
  await section('snapshots and loads');
  for (const s of states) {
    const dataDir = join(root, `snap-${s.pools}x${s.perPool}`);
    mkdirSync(dataDir);
    const { result: build } = await task<BuildResult>('build', { dataDir, pools: s.pools, perPool: s.perPool });
    const { result: first } = await task<LoadResult>('load', { dataDir, snapshot: true });
    snapshots.push({ state: s.name, build, snapshot: first.snapshot! });
    console.log(`  ${s.name}: ${mb(build.bytes)} MB written in ${fmtMs(build.totalMs)}; store.snapshotNow ${fmtMs(first.snapshot!.ms)}`);
    const withServer = server && (quick || s.pools * s.perPool >= 1e8);
    const runs = ['warm #1', 'warm #2', ...(cold ? ['cold'] : [])];
    for (const run of runs) {
      if (run === 'cold' && !dropCaches()) {
        console.log('  cannot drop the page cache (not root): no cold numbers');
        break;
      }
      const { result: load } = await task<LoadResult>('load', { dataDir, snapshot: false });
      loads.push({ state: s.name, run, load });
      if (!withServer || run === 'warm #1') continue;
      if (run === 'cold') dropCaches();
      const poolq = await startServer([], { dataDir });
      await poolq.stop(); // then logs() holds every line, 'poolq ready' included
      const ready = poolq.logs().find((l) => (l as { msg?: string }).msg === 'poolq ready') as { recoveryMs?: number } | undefined;
      starts.push({ state: s.name, cache: run === 'cold' ? 'cold' : 'warm', readyMs: poolq.readyMs, recoveryMs: ready?.recoveryMs ?? NaN });
    }
    rmSync(dataDir, { recursive: true, force: true });
  }

  // ---- 3: log replay
  await section('log replay');
  const logs = quick
    ? [
        { appends: 20_000, values: 10, pools: 100 },
        { appends: 200, values: 1000, pools: 10 },
      ]
    : [
        { appends: 200_000, values: 10, pools: 1000 },
        { appends: 20_000, values: 1000, pools: 100 },
      ];
  const replays: { log: string; run: string; walBytes: number; values: number; replay: ReplayResult }[] = [];
  for (const l of logs) {
    const dataDir = join(root, `wal-${l.appends}x${l.values}`);
    mkdirSync(dataDir);
    const name = `${si(l.appends)} × ${l.values} values`;
    const { result: written } = await task<WalWriteResult>('wal-write', { dataDir, ...l });
    for (const run of ['right after the SIGKILL (syncs the dirty tail)', 'log synced', ...(cold ? ['cold'] : [])]) {
      if (run === 'cold' && !dropCaches()) break;
      const { result: replay } = await task<ReplayResult>('replay', { dataDir });
      replays.push({ log: name, run, walBytes: written.walBytes, values: l.appends * l.values, replay });
      console.log(`  ${name}, ${run}: ${fmtMs(replay.openMs)}`);
    }
    rmSync(dataDir, { recursive: true, force: true });
  }

  // ---- 4: group commit, 'never' as the baseline of 'always' in the same run
  await section('group commit');
  const windowMs = quick ? 1000 : 5000;
  const commitRuns: Omit<CommitArgs, 'dataDir'>[] = [
    { fsync: 'always', inflight: 1, durationMs: windowMs / 2 },
    ...[1, 2].flatMap(() => [
      { fsync: 'always' as const, inflight: 256, durationMs: windowMs },
      { fsync: 'never' as const, inflight: 256, durationMs: windowMs },
    ]),
    { fsync: 'always', inflight: 1024, durationMs: windowMs / 2 },
  ];
  const commits: { run: string; r: CommitResult }[] = [];
  for (const [i, c] of commitRuns.entries()) {
    const dataDir = join(root, `commit-${i}`);
    mkdirSync(dataDir);
    const { result: r } = await task<CommitResult>('commit', { ...c, dataDir });
    commits.push({ run: `${c.fsync}, ${c.inflight} in flight`, r });
    console.log(`  ${c.fsync}, ${c.inflight} in flight: ${si(r.appendsPerSec)} appends/s`);
    rmSync(dataDir, { recursive: true, force: true });
  }

  printTable(
    "1. Snapshot write (direct: the store's writer, writev + fdatasync + rename + directory fsync; snapshotNow: the store's own path)",
    snapshots.map(({ state, build: b, snapshot: s }) => ({
      state,
      'file MB': mb(b.bytes),
      'write ms': fmtMs(b.writeMs),
      'fdatasync ms': fmtMs(b.fdatasyncMs),
      'direct total': fmtMs(b.totalMs),
      'direct MB/s': Math.round(b.bytes / 1e3 / b.totalMs),
      'store.snapshotNow': fmtMs(s.ms),
      'snapshotNow MB/s': Math.round(s.bytes / 1e3 / s.ms),
    })),
  );
  printTable(
    '2. Load: openDurableStore of the snapshot into a fresh wasm engine, each in a fresh process',
    loads.map(({ state, run, load: l }) => ({
      state,
      run,
      openDurableStore: fmtMs(l.openMs),
      'GB/s': ((l.recovery.snapshotValues * 8) / 1e6 / l.openMs).toFixed(2),
      'process start → open': fmtMs(l.processToOpenMs),
      'rss MiB': Math.round(l.rssMiB),
    })),
  );
  if (starts.length > 0) {
    printTable(
      '2b. The real server over the same directory: spawn → /readyz 200',
      starts.map((s) => ({ state: s.state, cache: s.cache, 'spawn → ready': fmtMs(s.readyMs), 'logged recoveryMs': s.recoveryMs })),
    );
  }
  printTable(
    '3. Log replay (recovery of a log with no snapshot, fresh process)',
    replays.map(({ log, run, walBytes, values, replay: r }) => ({
      log,
      run,
      'log MB': mb(walBytes),
      recovery: fmtMs(r.openMs),
      'records/s': si((r.recovery.recordsReplayed * 1000) / r.openMs),
      'values/s': si((values * 1000) / r.openMs),
      'MB/s': Math.round(walBytes / 1e3 / r.openMs),
    })),
  );
  const mean = (run: string): number => {
    const rates = commits.filter((c) => c.run === run).map((c) => c.r.appendsPerSec);
    return rates.reduce((a, b) => a + b, 0) / rates.length;
  };
  const neverMean = mean('never, 256 in flight');
  printTable(
    `4. Group commit in one process (10-value appends to 1000 pools); always ÷ never, 256 in flight, means of the runs: ${fmtRatio(mean('always, 256 in flight'), neverMean)}`,
    commits.map(({ run, r }) => ({
      run,
      'appends/s': si(r.appendsPerSec),
      '÷ never at 256': run.startsWith('always') && !run.includes(' 1 in') ? fmtRatio(r.appendsPerSec, neverMean) : '',
      'fdatasyncs/s': si(r.fdatasyncsPerSec),
      'appends/fdatasync': r.appendsPerFdatasync?.toFixed(1) ?? '–',
      'records/write': r.recordsPerWrite.toFixed(1),
      'fdatasync p50 / p99': r.fdatasyncMs.n === 0 ? '–' : `${fmtMs(r.fdatasyncMs.p50)} / ${fmtMs(r.fdatasyncMs.p99)}`,
      'log busy': `${Math.round(r.logBusyPct)}%`,
      'p50 / p99': `${fmtMs(r.latencyMs.p50)} / ${fmtMs(r.latencyMs.p99)}`,
      refused: r.refused,
      'CPU s': r.cpuS.toFixed(1),
    })),
  );
  console.log(
    '\nWarm: the page cache holds the files. Cold: after sync and drop_caches; a VM host may still cache the disk image, so cold can beat the disk.',
  );
  writeResults('storage', {
    quick,
    childEnv: serverEnvText(),
    quietWaits,
    elapsedS: (performance.now() - started) / 1000,
    snapshots,
    loads,
    starts,
    replays,
    commits,
  });
}

if (process.argv[2] === '--child') {
  runChildTask(process.argv[3], process.argv[4]).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error('bench:storage failed:', err);
    process.exit(1);
  });
}
