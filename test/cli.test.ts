// The poolq command, run as a user runs it (node bin/poolq.js …, output to a
// pipe, so the plain progress lines rather than the terminal bar): import with
// progress, a failing import, query, stats, a short loadtest, and serve
// (the malloc environment, --import/--pool, SIGTERM).

import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, tempDataDir, type ServerProcess } from './helpers/server-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POOLQ = path.join(ROOT, 'bin/poolq.js');
const run = promisify(execFile);

async function poolq(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [POOLQ, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let server: ServerProcess;
let url: string;

beforeAll(async () => {
  server = await startServer();
  url = server.url('');
});

afterAll(async () => {
  await server.stop();
});

describe('poolq import', () => {
  it('imports a CSV, printing plain progress lines with MB/s and values/s when not on a terminal', async () => {
    const file = path.join(tempDataDir(), 'latency.csv');
    writeFileSync(file, 'ts,latency_ms\n' + Array.from({ length: 200_000 }, (_, i) => `${i},${(i % 1000) / 4}`).join('\n') + '\n');
    const { code, stdout } = await poolq(['import', file, '--pool', '50', '--column', 'latency_ms', '--url', url, '--interval-ms', '0']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines.some((l) => /^upload [\d.]+\/[\d.]+ MB \(\d+ %\) [\d.]+ MB\/s$/.test(l))).toBe(true);
    expect(lines.some((l) => /^import (running|queued|done) \d+ % \d+ values \d+ values\/s [\d.]+ MB\/s$/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^done: 200000 values into 1 pool\(s\) in [\d.]+ s \([\d.]+ MB\/s, \d+ values\/s; upload [\d.]+ s\)$/);
    expect(stdout.includes(String.fromCharCode(27))).toBe(false); // no terminal control sequences in a pipe
    const summary = (await (await fetch(server.url('/pools/50'))).json()) as { count: number; max: number };
    expect(summary).toMatchObject({ count: 200_000, max: 249.75 });
  });

  it('fails with exit code 1, naming the bad line, and imports nothing', async () => {
    const file = path.join(tempDataDir(), 'bad.csv');
    writeFileSync(file, '1\n2\nthree\n');
    const { code, stderr } = await poolq(['import', file, '--pool', '51', '--url', url]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^poolq: import failed at line 3: .*"three" is not a finite number.*\(nothing was imported\)/);
    expect((await fetch(server.url('/pools/51'))).status).toBe(404);
  });

  it('says so when the server is not there', async () => {
    const file = path.join(tempDataDir(), 'one.csv');
    writeFileSync(file, '1\n');
    const { code, stderr } = await poolq(['import', file, '--pool', '1', '--url', 'http://127.0.0.1:9']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^poolq: /);
  });
});

describe('poolq query and stats', () => {
  it('prints the asked percentiles', async () => {
    await fetch(server.url('/add'), { method: 'POST', body: '{"poolId": 60, "poolValues": [1, 2, 3, 4]}' });
    const { code, stdout } = await poolq(['query', '60', '-p', '50,99,99.9', '--method', 'lower', '--url', url]);
    expect(code).toBe(0);
    expect(stdout.split('\n').map((l) => l.trim())).toEqual([
      'pool 60: 4 values, method lower',
      'p50       2',
      'p99       3',
      'p99.9     3',
      '',
    ]);
  });

  it('fails on an unknown pool with the server message', async () => {
    const { code, stderr } = await poolq(['query', '61', '--url', url]);
    expect(code).toBe(1);
    expect(stderr).toContain('404 pool_not_found');
  });

  it('prints pools, values and requests by route', async () => {
    const { code, stdout } = await poolq(['stats', '--url', url]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^poolq_values\s+\d+$/m);
    expect(stdout).toMatch(/POST \/add\s+\d+\s+[\d.]+ ms/);
  });
});

describe('poolq loadtest', () => {
  it('runs a short mixed load and prints requests/s and latency percentiles', async () => {
    const { code, stdout } = await poolq([
      'loadtest',
      '--duration',
      '1',
      '--connections',
      '2',
      '--pools',
      '20',
      '--mix',
      '20/80',
      '--url',
      url,
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^requests\/s {2}mean \d+ {2}\(total \d+, non-2xx 0, errors 0\)$/m);
    expect(stdout).toMatch(/^latency ms {2}p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}p99\.9 [\d.]+ {2}max [\d.]+$/m);
    const requests = Number(/total (\d+)/.exec(stdout)![1]);
    expect(requests).toBeGreaterThan(0);
  });

  it('refuses a mix that does not add up to 100', async () => {
    const { code, stderr } = await poolq(['loadtest', '--mix', '50/60', '--url', url]);
    expect(code).toBe(1);
    expect(stderr).toContain('--mix');
  });
});

describe('poolq serve', () => {
  it('runs the server with the malloc environment, loads --import into --pool, and stops on SIGTERM', async () => {
    const dataDir = tempDataDir();
    const file = path.join(dataDir, '..', `seed-${path.basename(dataDir)}.csv`);
    writeFileSync(file, '5\n6\n7\n');
    const child = spawn(process.execPath, [POOLQ, 'serve', '--port', '0', '--data-dir', dataDir, '--import', file, '--pool', '3'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: Object.fromEntries(
        Object.entries(process.env).filter(([name]) => name !== 'MALLOC_MMAP_THRESHOLD_' && name !== 'GLIBC_TUNABLES'),
      ),
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let out = '';
    const ready = await new Promise<{ port: number; pid: number }>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const port = /"port":(\d+)/.exec(out);
        const pid = /"pid":(\d+)[^\n]*"msg":"poolq ready"/.exec(out);
        if (port !== null && pid !== null) resolve({ port: Number(port[1]), pid: Number(pid[1]) });
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const environ = readFileSync(`/proc/${ready.pid}/environ`, 'utf8').split('\0');
    expect(ready.pid).not.toBe(child.pid);
    const summary = (await (await fetch(`http://127.0.0.1:${ready.port}/pools/3`)).json()) as { count: number };
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(summary).toMatchObject({ count: 3 });
    expect(environ).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    expect(environ).toContain('GLIBC_TUNABLES=glibc.malloc.hugetlb=1');
  });
});
