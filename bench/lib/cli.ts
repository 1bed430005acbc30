// Command line and process plumbing shared by the engine benchmarks. Every
// bench file runs on its own (`node --expose-gc dist/bench/engine-sort.js`,
// prints its tables) or as a child of run-engine.ts (`--out FILE`: writes its
// BenchReport as JSON there), so each gets a fresh heap and no bench's pools
// or garbage skew another's timings.

import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { progress } from './measure.js';
import { printReport, type BenchReport } from './report.js';

export interface BenchArgs {
  /** Fewer sizes and shorter time budgets (a smoke run, not numbers to quote). */
  quick: boolean;
  /** Where to write the JSON report (set by run-engine); null: print tables. */
  out: string | null;
  /** Positional words: run-engine runs only benches whose name contains one of them. */
  filters: string[];
  /** Named options (`--name value` or `--name=value`) for bench-specific use. */
  named: Map<string, string>;
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const args: BenchArgs = { quick: false, out: null, filters: [], named: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') {
      args.quick = true;
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      let value: string;
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
      else throw new Error(`option --${name} needs a value`);
      if (name === 'out') args.out = value;
      else args.named.set(name, value);
    } else {
      args.filters.push(arg);
    }
  }
  return args;
}

/** true when `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === moduleUrl;
}

/**
 * The entry point of a bench file: runs it, then prints its report or writes
 * it to `--out`. A failure exits non-zero so run-engine can say which bench broke.
 */
export function runIfMain(moduleUrl: string, run: (args: BenchArgs) => Promise<BenchReport>): void {
  if (!isMain(moduleUrl)) return;
  const args = parseArgs();
  run(args).then(
    async (report) => {
      if (args.out === null) {
        printReport(report);
      } else {
        await mkdir(dirname(args.out), { recursive: true });
        await writeFile(args.out, JSON.stringify(report, null, 2));
      }
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exitCode = 1;
    },
  );
}

/** Runs a built bench file in a fresh `node --expose-gc` and returns its report. */
export async function runBenchChild(script: string, args: readonly string[], out: string): Promise<BenchReport> {
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, ...args, '--out', out], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (status, signal) => {
      if (signal !== null) progress(`${script} was killed by ${signal}`);
      resolve(status);
    });
  });
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  return JSON.parse(await readFile(out, 'utf8')) as BenchReport;
}

/** The bench file's directory (dist/bench when built). */
export function benchDir(moduleUrl: string): string {
  return dirname(fileURLToPath(moduleUrl));
}

/** `global.gc` exists only under --expose-gc; benches that need it say so. */
export function requireGc(): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') throw new Error('run node with --expose-gc (run-engine does)');
  return gc;
}

/** Collects until the heap stops shrinking, yielding so freed array buffers are released. */
export async function collectGarbage(): Promise<void> {
  const gc = requireGc();
  let last = Infinity;
  for (let round = 0; round < 10; round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage();
    const live = used.heapUsed + used.arrayBuffers;
    if (live >= last) break;
    last = live;
  }
}
