// The one way tests and benchmarks start a server: poolq (the built
// dist/src/main.js, with `npm start`'s environment and its own data directory)
// or a baseline server script that answers GET /readyz, as a child process on a
// free port, ready once /readyz answers 200. Every child started here or with
// spawnTracked is SIGKILLed when this process exits, however it exits, so no
// server outlives a failed test or an interrupted bench. tsc also compiles this
// file into dist/ for the benchmarks, so paths start from the package root.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SERVER_ENV } from '../../src/server-env.js';

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = path.dirname(dir);
  }
  return dir;
}

export const ROOT = packageRoot();
export const MAIN = path.join(ROOT, 'dist/src/main.js');

const live = new Set<ChildProcess>();
let cleanupInstalled = false;

/** On exit (normal, uncaught error, or SIGINT/SIGTERM/SIGHUP turned into an exit) SIGKILL every child still running. */
export function installChildCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(signal, () => process.exit(code));
  }
}

/** spawn(), with the child registered for cleanup; stdout and stderr are pipes unless options say otherwise. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  installChildCleanup();
  const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p)) ?? null;

/** true when processes can be pinned to a CPU: taskset is there and the machine has 2 CPUs or more. */
export function canPin(): boolean {
  return TASKSET !== null && os.cpus().length >= 2;
}

/** [command, args] that run `command args` on CPU `cpu` (all threads), or unpinned when cpu is null. */
export function pinned(cpu: number | null, command: string, args: readonly string[]): [string, string[]] {
  if (cpu === null || TASKSET === null) return [command, [...args]];
  return [TASKSET, ['-c', String(cpu), command, ...args]];
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function tempDataDir(prefix = 'poolq-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ServerProcess {
  proc: ChildProcess;
  port: number;
  /** poolq's data directory ('' for other servers). */
  dataDir: string;
  url: (p: string) => string;
  /** Every stdout line, parsed as JSON ({ raw } when it is not). */
  logs: () => object[];
  /** The last lines of stdout and stderr, for error reports. */
  tail: () => string[];
  /** spawn() until /readyz answered 200, ms. */
  readyMs: number;
  /** SIGTERM, SIGKILL after graceMs; resolves with the exit code (null when killed). */
  stop: (graceMs?: number) => Promise<number | null>;
  /** SIGKILL and wait for the exit. */
  kill: () => Promise<void>;
  exited: Promise<number | null>;
}

export interface ProcessOptions {
  /** Added to the environment after `npm start`'s SERVER_ENV. */
  env?: Record<string, string>;
  /** Pin the server (all its threads) to this CPU. */
  cpu?: number | null;
  /** Node flags before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  timeoutMs?: number;
}

export interface ServerOptions extends ProcessOptions {
  dataDir?: string;
  /** Another build's dist/src/main.js (bench:ab). */
  main?: string;
}

/** poolq on a free port: `node [nodeArgs] MAIN --port P --data-dir D ...args`. */
export function startServer(args: string[] = [], options: ServerOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? tempDataDir();
  return startHttpProcess(options.main ?? MAIN, (port) => ['--port', String(port), '--data-dir', dataDir, ...args], options, dataDir);
}

/**
 * Any HTTP server script that takes its port from `argsFor(port)` and answers
 * GET /readyz with 200 once it serves. A child that exits before it is ready
 * because the port was taken meanwhile is started again on another port.
 */
export async function startHttpProcess(
  script: string,
  argsFor: (port: number) => string[],
  options: ProcessOptions = {},
  dataDir = '',
): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(script, argsFor, options, dataDir, await freePort());
    } catch (err) {
      if (attempt >= 3 || !/cannot listen|EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

async function startOnce(
  script: string,
  argsFor: (port: number) => string[],
  options: ProcessOptions,
  dataDir: string,
  port: number,
): Promise<ServerProcess> {
  const started = performance.now();
  const [command, args] = pinned(options.cpu ?? null, process.execPath, [...(options.nodeArgs ?? []), script, ...argsFor(port)]);
  const proc = spawnTracked(command, args, { cwd: ROOT, env: { ...process.env, ...SERVER_ENV, ...options.env } });
  const logs: object[] = [];
  const recent: string[] = [];
  const remember = (line: string): void => {
    recent.push(line);
    if (recent.length > 40) recent.shift();
  };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    remember(line);
    try {
      logs.push(JSON.parse(line) as object);
    } catch {
      logs.push({ raw: line });
    }
  });
  createInterface({ input: proc.stderr! }).on('line', remember);
  // 'close', not 'exit': by then every line the server wrote has been read into logs()
  const exited = new Promise<number | null>((resolve) => proc.once('close', resolve));
  const describe = (what: string): Error => new Error(`${path.basename(script)} ${what}:\n  ${recent.join('\n  ')}`);

  const deadline = started + (options.timeoutMs ?? 60_000);
  while (!(await readyzOk(port))) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      await exited;
      throw describe(`exited with ${proc.exitCode ?? proc.signalCode} before it was ready`);
    }
    if (performance.now() > deadline) {
      proc.kill('SIGKILL');
      throw describe(`not ready after ${options.timeoutMs ?? 60_000} ms`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const readyMs = performance.now() - started;
  const stop = async (graceMs = 30_000): Promise<number | null> => {
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const kill = async (): Promise<void> => {
    proc.kill('SIGKILL');
    await exited;
  };
  const url = (p: string): string => `http://127.0.0.1:${port}${p}`;
  return { proc, port, dataDir, url, logs: () => logs, tail: () => [...recent], readyMs, stop, kill, exited };
}

/** GET /readyz on a fresh connection; false on anything but a 200. */
function readyzOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/readyz', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

// `any`: tests compare whole answers of every shape and read their fields.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function postJson(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text) };
}
