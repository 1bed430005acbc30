// One poolq instance of a local cluster: the built server (dist/src/main.js)
// as a child process with its own data directory, its output appended to a
// log file, ready when it logs "poolq ready".

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest directory above this file holding package.json (works from src/ and dist/src/). */
function repositoryRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the poolq repository root');
    dir = parent;
  }
  return dir;
}

export const POOLQ_MAIN = path.join(repositoryRoot(), 'dist/src/main.js');

/** What `npm start` sets; see the README's Configuration section. */
const MEMORY_ENV = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', MALLOC_MMAP_THRESHOLD_: '131072' };

export interface InstanceSpec {
  name: string;
  host: string;
  port: number;
  dataDir: string;
  mapPath: string;
  logPath: string;
  /** More flags for poolq (e.g. --fsync never). */
  args: readonly string[];
  env?: Record<string, string>;
}

export interface InstanceProcess {
  spec: InstanceSpec;
  proc: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  /** Milliseconds from spawn to "poolq ready". */
  readyMs: number;
}

export async function startInstance(spec: InstanceSpec): Promise<InstanceProcess> {
  if (!existsSync(POOLQ_MAIN)) throw new Error(`${POOLQ_MAIN} is missing: run npm run build first`);
  const started = performance.now();
  const proc = spawn(
    process.execPath,
    [
      POOLQ_MAIN,
      '--host',
      spec.host,
      '--port',
      String(spec.port),
      '--data-dir',
      spec.dataDir,
      '--shard-map',
      spec.mapPath,
      '--shard-name',
      spec.name,
      ...spec.args,
    ],
    { env: { ...process.env, ...MEMORY_ENV, ...spec.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = createWriteStream(spec.logPath, { flags: 'a' });
  proc.stderr!.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1))));
  void exited.then(() => log.end());
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    let ready = false;
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      log.write(chunk);
      if (ready) return;
      buffered += chunk;
      if (buffered.includes('"msg":"poolq ready"')) {
        ready = true;
        buffered = '';
        resolve();
      }
    });
    void exited.then((code) => {
      if (!ready) reject(new Error(`poolq ${spec.name} exited with ${code} before it was ready; see ${spec.logPath}`));
    });
  });
  return { spec, proc, pid: proc.pid!, exited, readyMs: performance.now() - started };
}

/** SIGTERM (drain, snapshot) and wait; SIGKILL after `graceMs`. */
export async function stopInstance(instance: InstanceProcess, graceMs = 15_000): Promise<void> {
  if (instance.proc.exitCode !== null || instance.proc.signalCode !== null) return;
  instance.proc.kill('SIGTERM');
  const timer = setTimeout(() => instance.proc.kill('SIGKILL'), graceMs);
  await instance.exited;
  clearTimeout(timer);
}
