// Child processes and CPU accounting for the benches. A measurement that must
// start from a fresh heap runs as `node script --child ...` and hands its result
// back as one RESULT line; /proc tells how much CPU each process and the whole
// machine used, so a run disturbed by other work on the machine shows it.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { spawnTracked } from '../../test/helpers/server-process.js';

const RESULT_PREFIX = 'BENCH-RESULT ';

/** In a child: hand `result` to the parent (stdout is a pipe, so the write is synchronous). */
export function emitResult(result: unknown): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

export interface ChildRun<T> {
  result: T;
  /** spawn() to the result line. */
  wallMs: number;
}

export interface ChildOptions {
  /** The whole environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  nodeArgs?: string[];
  /** Instead of node (e.g. taskset, with node and its flags in nodeArgs). */
  command?: string;
  /** Gets the child's other stdout lines (default: echoed to stderr). */
  onLine?: (line: string) => void;
  timeoutMs?: number;
}

/** Runs `node [nodeArgs] script ...args`, echoes its other output to stderr, resolves with its RESULT line. */
export function runChild<T>(script: string, args: readonly string[], options: ChildOptions = {}): Promise<ChildRun<T>> {
  const started = performance.now();
  const child = spawnTracked(options.command ?? process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
    env: options.env ?? process.env,
  });
  return new Promise((resolve, reject) => {
    let result: ChildRun<T> | undefined;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith(RESULT_PREFIX))
        result = { result: JSON.parse(line.slice(RESULT_PREFIX.length)) as T, wallMs: performance.now() - started };
      else if (options.onLine !== undefined) options.onLine(line);
      else if (line.trim() !== '') process.stderr.write(`  | ${line}\n`);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.once('error', reject);
    // A child may SIGKILL itself after its result (the storage WAL tasks): the result counts, not the exit.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (result !== undefined) resolve(result);
      else reject(new Error(`${script} ${args[0] ?? ''} exited (code ${code}, signal ${signal}) without a result\n${stderr}`));
    });
  });
}

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64 and arm64

/** User + system CPU seconds a process (all its threads) has used so far, or NaN. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after the command name; utime and stime are 14 and 15
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total jiffies of the whole machine since boot (/proc/stat). */
export function machineJiffies(): { busy: number; total: number } {
  const nums = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = nums.reduce((a, b) => a + b, 0);
  return { busy: total - nums[3] - (nums[4] ?? 0), total }; // idle and iowait are not busy
}

/** % of the whole machine busy between two machineJiffies() readings. */
export function busyPct(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  return (100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total);
}

/**
 * Waits until the machine has been less than `belowPct` % busy for `quietS`
 * seconds in a row, at most `maxS` seconds: other work on a small shared
 * machine skews every number. Says how long it waited and whether it got quiet.
 */
export async function waitQuiet(maxS: number, quietS = 2, belowPct = 15): Promise<{ waitedS: number; quiet: boolean; busyPct: number }> {
  const started = performance.now();
  const waitedS = (): number => (performance.now() - started) / 1000;
  for (let quietFor = 0; ;) {
    const a = machineJiffies();
    await new Promise((r) => setTimeout(r, 500));
    const busy = busyPct(a, machineJiffies());
    quietFor = busy < belowPct ? quietFor + 0.5 : 0;
    if (quietFor >= quietS || waitedS() >= maxS) return { waitedS: waitedS(), quiet: quietFor >= quietS, busyPct: busy };
  }
}
