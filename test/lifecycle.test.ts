// Start-up and shutdown as an operator meets them: graceful SIGTERM, the data
// directory lock, unusable directories, bad configuration, and the refusal to
// serve on uWebSockets.js's pure-JS fallback.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAIN, postJson, startServer, tempDataDir } from './helpers/server-process.js';

function runToExit(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [MAIN, '--port', '0', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('lifecycle', () => {
  it('SIGTERM drains, flushes and exits 0; a restart recovers every value bit for bit', async () => {
    const dataDir = tempDataDir();
    const first = await startServer([], { dataDir });
    await postJson(first.url('/add'), { poolId: 1, poolValues: [0.1, 0.2, 0.30000000000000004, 1e-300, -7] });
    const before = await postJson(first.url('/query'), { poolId: 1, percentiles: [0, 33.3, 50, 99.5, 100] });
    expect(await first.stop()).toBe(0);
    expect(first.logs().some((l) => (l as { msg?: string }).msg === 'poolq stopped cleanly')).toBe(true);
    const second = await startServer([], { dataDir });
    expect(await postJson(second.url('/query'), { poolId: 1, percentiles: [0, 33.3, 50, 99.5, 100] })).toEqual(before);
    expect(await second.stop()).toBe(0);
  });

  it('refuses a second server on the same data directory, naming the holder', async () => {
    const dataDir = tempDataDir();
    const first = await startServer([], { dataDir });
    const second = await runToExit(['--data-dir', dataDir]);
    expect(second.code).toBe(1);
    expect(second.output).toContain(`in use by process ${first.proc.pid}`);
    // The first one is unharmed.
    expect((await postJson(first.url('/add'), { poolId: 2, poolValues: [1] })).status).toBe(200);
    expect(await first.stop()).toBe(0);
  });

  it('takes over the lock a killed server left behind', async () => {
    const dataDir = tempDataDir();
    const first = await startServer([], { dataDir });
    await postJson(first.url('/add'), { poolId: 3, poolValues: [4, 5] });
    await first.kill();
    const second = await startServer([], { dataDir });
    expect((await fetch(second.url('/pools/3'))).status).toBe(200);
    expect(await second.stop()).toBe(0);
  });

  it('exits 1 with a clear message when the data directory cannot be created', async () => {
    const file = path.join(tempDataDir(), 'not-a-dir');
    writeFileSync(file, 'x');
    const result = await runToExit(['--data-dir', path.join(file, 'data')]);
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/ENOTDIR|not a directory/i);
  });

  it('exits 2 on a bad flag or environment value, saying which and what is allowed', async () => {
    const bad = await runToExit(['--engine', 'gpu']);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('--engine / ENGINE must be one of wasm, ts (got "gpu")');
    const env = await runToExit([], { FSYNC: 'sometimes' });
    expect(env.code).toBe(2);
    expect(env.output).toContain('--fsync / FSYNC must be one of always, interval, never');
    const unknown = await runToExit(['--prot', '1']);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toMatch(/Unknown option '--prot'/);
  });

  it("refuses to serve on uWebSockets.js's pure-JS fallback", async () => {
    // The trufflesuite package loads its JS fallback when told to (or on an unsupported Node).
    const result = await runToExit(['--data-dir', tempDataDir()], { UWS_USE_FALLBACK: '1' });
    expect(result.code).toBe(1);
    expect(result.output).toContain('refuses to serve on a JS fallback');
  });
});
