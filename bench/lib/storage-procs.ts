// Child processes for `npm run bench:storage`. Every measurement runs in a
// fresh node process (fresh heap; the page cache is whatever the previous
// step left, i.e. warm, unless dropCaches() ran), started with the same malloc
// tunables as `npm start` (THP for large allocations: on this VM the first
// write to fresh memory costs ~4 ms/MiB without them). Children are tracked and
// SIGKILLed if the bench exits early, so no server or writer is left behind.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** What `npm start` sets (package.json "start"). */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
  MALLOC_MMAP_THRESHOLD_: '131072',
};

export function mallocEnvText(env: Readonly<Record<string, string>> | null = MALLOC_ENV): string {
  if (env === null) return '(no malloc variables)';
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

const live = new Set<ChildProcess>();
let installed = false;

export function installChildCleanup(onExit: () => void): void {
  if (installed) return;
  installed = true;
  const killAll = () => {
    for (const child of live) {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          child.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    }
    live.clear();
  };
  process.on('exit', () => {
    killAll();
    onExit();
  });
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      console.error(`\nbench:storage: ${signal}; killing ${live.size} child process(es) and removing temp dirs`);
      process.exit(code); // 'exit' does the rest
    });
  }
}

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/** The parent's environment with the malloc variables replaced by `mallocEnv` (null: none). */
export function childEnv(mallocEnv: Readonly<Record<string, string>> | null = MALLOC_ENV): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.GLIBC_TUNABLES;
  delete env.MALLOC_MMAP_THRESHOLD_;
  if (mallocEnv !== null) Object.assign(env, mallocEnv);
  return env;
}

export interface ChildRun<T> {
  result: T;
  /** spawn() to exit (or to the result line for children that SIGKILL themselves). */
  wallMs: number;
  exitCode: number | null;
  signal: string | null;
  stderr: string;
}

const RESULT_PREFIX = 'BENCH-RESULT ';
const benchScript = fileURLToPath(new URL('../storage.js', import.meta.url));

/** In a child: hand the result to the parent (a pipe: synchronous on Linux). */
export function emitResult(result: unknown): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

export interface ChildOptions {
  timeoutMs?: number;
  /** Malloc variables for the child (default MALLOC_ENV, as npm start; null: none). */
  mallocEnv?: Readonly<Record<string, string>> | null;
  nodeArgs?: string[];
}

/** Runs `node [nodeArgs] dist/bench/storage.js --child <task> <json>` and returns its BENCH-RESULT. */
export function runChild<T>(task: string, args: unknown, options: ChildOptions = {}): Promise<ChildRun<T>> {
  const { timeoutMs = 120_000, mallocEnv = MALLOC_ENV, nodeArgs = [] } = options;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = track(
      spawn(process.execPath, [...nodeArgs, benchScript, '--child', task, JSON.stringify(args)], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: childEnv(mallocEnv),
      }),
    );
    let stderr = '';
    let result: T | undefined;
    let resultAt = 0;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      stderr += d;
      if (stderr.length > 64 << 10) stderr = stderr.slice(-32 << 10);
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.startsWith(RESULT_PREFIX)) {
        result = JSON.parse(line.slice(RESULT_PREFIX.length)) as T;
        resultAt = performance.now();
      } else if (line.trim().length > 0) {
        process.stderr.write(`  [${task}] ${line}\n`);
      }
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (result === undefined) {
        reject(new Error(`child ${task} exited (code ${code}, signal ${signal}) without a result${stderr ? `:\n${stderr}` : ''}`));
        return;
      }
      const end = signal === 'SIGKILL' && resultAt > 0 ? resultAt : performance.now();
      resolve({ result, wallMs: end - started, exitCode: code, signal, stderr });
    });
  });
}

/** sync + drop the page cache (needs root); false if not permitted. */
export function dropCaches(): { ok: boolean; ms: number; error?: string } {
  const t0 = performance.now();
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return { ok: true, ms: performance.now() - t0 };
  } catch (err) {
    return { ok: false, ms: performance.now() - t0, error: (err as Error).message };
  }
}

export interface ServerStart {
  /** spawn() → the 'poolq listening; recovering data' line. */
  listeningMs: number;
  /** spawn() → the 'poolq ready' line. */
  readyMs: number;
  /** What the server logged: lock + openDurableStore. */
  recoveryMs: number;
  pools: number;
  values: number;
  port: number | null;
  /** SIGTERM → exit (drain, close: no snapshot when nothing changed). */
  stopMs: number;
  stopCode: number | null;
}

/** Spawns the real server over `dataDir`, waits for 'poolq ready', stops it with SIGTERM. */
export function serverStartToReady(mainJs: string, dataDir: string, timeoutMs = 60_000): Promise<ServerStart> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = track(
      spawn(process.execPath, [mainJs, '--port', '0', '--data-dir', dataDir, '--log-level', 'info'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: childEnv(MALLOC_ENV),
      }),
    );
    let listeningMs = Number.NaN;
    let port: number | null = null;
    let stderr = '';
    let done = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        child.kill('SIGKILL');
        reject(new Error(`server did not become ready in ${timeoutMs} ms${stderr ? `:\n${stderr}` : ''}`));
      }
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`server exited (code ${code}, signal ${signal}) before ready:\n${stderr}`));
      }
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg.msg === 'poolq listening; recovering data') {
        listeningMs = performance.now() - started;
        const config = msg.config as { port?: number } | undefined;
        port = typeof config?.port === 'number' ? config.port : null;
      } else if (msg.msg === 'poolq ready' && !done) {
        const readyMs = performance.now() - started;
        done = true;
        clearTimeout(timer);
        const stopStart = performance.now();
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', (code) => {
          clearTimeout(killer);
          resolve({
            listeningMs,
            readyMs,
            recoveryMs: Number(msg.recoveryMs),
            pools: Number(msg.pools),
            values: Number(msg.values),
            port,
            stopMs: performance.now() - stopStart,
            stopCode: code,
          });
        });
        child.kill('SIGTERM');
      }
    });
  });
}

// ---- tables -------------------------------------------------------------------

export type Row = Record<string, string | number>;

export function printTable(title: string, rows: readonly Row[]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) {
    console.log('  (no rows)');
    return;
  }
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined) => (v === undefined ? '' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => `  ${vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ')}`;
  console.log(line(cols));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

export function ms(x: number | undefined | null): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

export function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** 1234567 → "1.23 M", 12345 → "12.3 k". */
export function si(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toPrecision(3)} G`;
  if (a >= 1e6) return `${(x / 1e6).toPrecision(3)} M`;
  if (a >= 1e3) return `${(x / 1e3).toPrecision(3)} k`;
  return x.toPrecision(3);
}

// ---- a quiet machine ------------------------------------------------------------

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0); // idle + iowait
  const total = f.reduce((x, y) => x + y, 0);
  return { busy: total - idle, total };
}

/**
 * Waits until the machine's CPUs are ≥ 85 % idle for `quietSec` seconds in a
 * row (other benchmarks on a shared 2-CPU VM skew every number), at most
 * `maxSec`. Returns how long it waited and whether it got quiet.
 */
export async function waitQuiet(quietSec: number, maxSec: number): Promise<{ waitedSec: number; quiet: boolean }> {
  const started = performance.now();
  let prev = cpuTimes();
  let quietFor = 0;
  while ((performance.now() - started) / 1000 < maxSec) {
    await new Promise((r) => setTimeout(r, 500));
    const now = cpuTimes();
    const busy = (now.busy - prev.busy) / Math.max(1, now.total - prev.total);
    prev = now;
    quietFor = busy < 0.15 ? quietFor + 0.5 : 0;
    if (quietFor >= quietSec) return { waitedSec: (performance.now() - started) / 1000, quiet: true };
  }
  return { waitedSec: (performance.now() - started) / 1000, quiet: false };
}
