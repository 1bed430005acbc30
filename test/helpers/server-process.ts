// Starts the real service (built JavaScript, dist/src/main.js) as a child
// process on a free port with its own data directory, and talks to it over
// real HTTP. Used by the API, shutdown and crash tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'dist/src/main.js');

export interface ServerProcess {
  proc: ChildProcess;
  port: number;
  dataDir: string;
  url: (p: string) => string;
  logs: () => object[];
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop: () => Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill: () => Promise<void>;
  exited: Promise<number | null>;
}

export function tempDataDir(prefix = 'poolq-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startServer(args: string[] = [], options: { dataDir?: string; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? tempDataDir();
  const proc = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', dataDir, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: object[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    let listenPort = 0;
    proc.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as { msg?: string; config?: { port?: number } };
          lines.push(entry);
          if (entry.config?.port !== undefined) listenPort = entry.config.port;
          if (entry.msg === 'poolq ready') resolve(listenPort);
        } catch {
          lines.push({ raw: line });
        }
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before ready:\n${stderr}\n${JSON.stringify(lines)}`)));
  });
  return {
    proc,
    port,
    dataDir,
    url: (p: string) => `http://127.0.0.1:${port}${p}`,
    logs: () => lines,
    exited,
    stop: async () => {
      proc.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text) };
}
