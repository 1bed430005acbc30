// Child processes for `npm run bench:http`: the servers under test and the
// load generators. Every child is registered so that it is killed when the
// bench exits — normally, on an error, or on Ctrl-C / SIGTERM — and no server
// is left listening after a run.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const live = new Set<ChildProcess>();
let handlersInstalled = false;

function killAllNow(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  }
  live.clear();
}

/**
 * Installs the exit hooks once: 'exit' SIGKILLs what is left (synchronous, so
 * it also covers process.exit and uncaught errors); SIGINT/SIGTERM kill the
 * children and exit 130/143.
 */
export function installChildCleanup(onSignal?: () => void): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => killAllNow('SIGKILL'));
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(signal, () => {
      console.error(`\nhttp-load: ${signal}; killing ${live.size} child process(es)`);
      killAllNow('SIGKILL');
      onSignal?.();
      process.exit(code);
    });
  }
  process.on('uncaughtException', (err) => {
    console.error('http-load: uncaught', err);
    killAllNow('SIGKILL');
    process.exit(1);
  });
}

/** spawn() and register the child for cleanup. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

export function liveChildren(): number {
  return live.size;
}

/** A free TCP port on 127.0.0.1 (for servers that need to be told a port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface ServerProcess {
  name: string;
  child: ChildProcess;
  port: number;
  pid: number;
  /** Last lines the server printed (stdout and stderr), for error reports. */
  tail: string[];
  /** SIGTERM, wait up to graceMs, then SIGKILL. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

function remember(tail: string[], line: string): void {
  tail.push(line);
  if (tail.length > 40) tail.shift();
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function makeStop(child: ChildProcess): (graceMs?: number) => Promise<void> {
  return async (graceMs = 5000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = waitExit(child);
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const outcome = await Promise.race([gone.then(() => 'exited' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      child.kill('SIGKILL');
      await gone;
    }
  };
}

export interface StartOptions {
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Called for each stdout/stderr line; returns the port once the server is
   * ready, or undefined to keep waiting. (Servers that print nothing useful
   * get `probePort` instead.)
   */
  readyFromLine?: (line: string, state: Record<string, unknown>) => number | undefined;
  /** Ready when a TCP connect to this port succeeds. */
  probePort?: number;
  timeoutMs?: number;
}

/** Starts a server child and resolves once it reports (or probes) ready. */
export async function startServer(opts: StartOptions): Promise<ServerProcess> {
  const child = spawnTracked(opts.command, opts.args, { cwd: opts.cwd, env: opts.env ?? process.env });
  const tail: string[] = [];
  const state: Record<string, unknown> = {};
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const port = await new Promise<number>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, p?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (probe !== undefined) clearInterval(probe);
      if (err) reject(err);
      else resolve(p as number);
    };
    const timer = setTimeout(
      () => finish(new Error(`${opts.name}: not ready after ${timeoutMs} ms\n  ${tail.join('\n  ')}`)),
      timeoutMs,
    );
    const onLine = (line: string): void => {
      remember(tail, line);
      if (settled || opts.readyFromLine === undefined) return;
      const p = opts.readyFromLine(line, state);
      if (p !== undefined) finish(null, p);
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('error', (err) => finish(new Error(`${opts.name}: cannot start: ${err.message}`)));
    child.once('exit', (code, signal) =>
      finish(new Error(`${opts.name}: exited before ready (code ${code}, signal ${signal})\n  ${tail.join('\n  ')}`)),
    );
    let probe: NodeJS.Timeout | undefined;
    if (opts.probePort !== undefined) {
      const target = opts.probePort;
      probe = setInterval(() => {
        void canConnect(target).then((ok) => {
          if (ok) finish(null, target);
        });
      }, 100);
    }
  });
  return { name: opts.name, child, port, pid: child.pid!, tail, stop: makeStop(child) };
}

async function canConnect(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Parses one JSON log line, or null. */
export function jsonLine(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

// ---- CPU accounting from /proc (Linux) --------------------------------------

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64/arm64

/** User+system CPU seconds used so far by a process (all its threads), or NaN. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the ")" of the command name: state is field 3; utime 14, stime 15
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Machine-wide busy and total jiffies (from /proc/stat), for "how busy were both cores". */
export function machineJiffies(): { busy: number; total: number } {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const nums = first.trim().split(/\s+/).slice(1).map(Number);
    const total = nums.reduce((a, b) => a + b, 0);
    const idle = (nums[3] ?? 0) + (nums[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

// ---- CPU pinning ---------------------------------------------------------------

let tasksetPath: string | null | undefined;

function findTaskset(): string | null {
  if (tasksetPath !== undefined) return tasksetPath;
  tasksetPath = null;
  for (const c of ['/usr/bin/taskset', '/bin/taskset']) {
    if (existsSync(c)) {
      tasksetPath = c;
      break;
    }
  }
  return tasksetPath;
}

/** true when processes can be pinned (taskset present, at least 2 CPUs). */
export function canPin(cpuCount: number): boolean {
  return cpuCount >= 2 && findTaskset() !== null;
}

/** [command, args] that run `command args` on CPU `cpu` (or unpinned when cpu is null). */
export function pinned(cpu: number | null, command: string, args: readonly string[]): [string, string[]] {
  const taskset = findTaskset();
  if (cpu === null || taskset === null) return [command, [...args]];
  return [taskset, ['-c', String(cpu), command, ...args]];
}

/** Pins an existing process (all its threads) to one CPU; false if that failed. */
export function pinProcess(pid: number, cpu: number): boolean {
  const taskset = findTaskset();
  if (taskset === null) return false;
  return spawnSync(taskset, ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0;
}
