// `poolq serve [flags]`: the server (dist/src/main.js) in a child process
// whose environment carries the glibc malloc settings; they only take effect
// when set before the process starts (docs/performance.md: freed merge buffers
// go back to the OS, large buffers go on huge pages). Flags pass through
// unchanged, except `--pool`, which is `--import-pool` to the server. Signals
// are forwarded and the server's exit code is ours.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../main.js');

export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
};

/** The server's flags for `poolq serve` flags: `--pool X` / `--pool=X` → `--import-pool`. */
export function serverArgs(args: readonly string[]): string[] {
  return args.map((arg) => (arg === '--pool' ? '--import-pool' : arg.startsWith('--pool=') ? `--import-pool=${arg.slice(7)}` : arg));
}

export function serve(args: readonly string[]): void {
  const child = spawn(process.execPath, [SERVER, ...serverArgs(args)], {
    stdio: 'inherit',
    env: { ...MALLOC_ENV, ...process.env },
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
}
