// Imports at the sizes they are for: a 1 GiB body streamed through the server
// while its resident memory stays flat (the body goes to a spool file, then
// through the parser in 1 MiB chunks), and SIGKILL in the middle of an import,
// during the upload and during the parse: after a restart there is no partial
// pool, the job is gone (404) and so is its spool file.

import { readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getJob, rssOf, streamImport, waitForJob } from './helpers/imports.js';
import { startServer, tempDataDir } from './helpers/server-process.js';

const GiB = 2 ** 30;

describe('a 1 GiB import', () => {
  it('streams through the server with flat memory and imports every value (chunked: 10^9 bytes and up need it)', async () => {
    const server = await startServer();
    try {
      // 1 048 576 lines of exactly 1024 bytes: a value and a padding column.
      const lines = 1 << 20;
      const lineBytes = 1024;
      const padding = 'x'.repeat(lineBytes - 1 - 8 - 1);
      const line = (i: number): string => `${String(i % 1_000_000).padStart(8, '0')},${padding}\n`;
      const baseline = await rssOf(server.proc.pid!);
      let peak = baseline;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, await rssOf(server.proc.pid!));
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const { status, json } = await streamImport(server, 'poolId=7&column=0', lines, null, line);
      expect(status).toBe(202);
      const job = await waitForJob(server, json.jobId);
      sampling = false;
      await sampler;
      expect(job).toMatchObject({ state: 'done', values: lines, bytes: GiB, bytesTotal: GiB });
      const summary = (await (await fetch(server.url('/pools/7'))).json()) as { count: number; min: number; max: number };
      expect(summary).toEqual({ poolId: 7, count: lines, min: 0, max: 999_999, windowSeconds: null });
      // The values themselves take 8 MiB (twice while parsed and sorted); the
      // body is 1024 MiB. Flat: the server grew by far less than the body.
      const grownMiB = (peak - baseline) / 2 ** 20;
      expect(grownMiB, `RSS grew ${grownMiB.toFixed(0)} MiB`).toBeLessThan(160);
    } finally {
      await server.stop();
    }
  }, 300_000);
});

describe('SIGKILL during an import', () => {
  const lines = 4_000_000;
  const line = (i: number): string => `${String(i % 100_000).padStart(6, '0')}\n`;

  it('during the parse: no partial pool after the restart, the job and its spool file gone', async () => {
    const dataDir = tempDataDir();
    let server = await startServer([], { dataDir });
    const { status, json } = await streamImport(server, 'poolId=5', lines, 7, line);
    expect(status).toBe(202);
    let seen = null;
    for (;;) {
      const { job } = await getJob(server, json.jobId);
      if (job.state === 'running' && job.bytes > 0) {
        seen = job;
        break;
      }
      if (job.state === 'done' || job.state === 'failed') break;
    }
    await server.kill();
    expect(seen, 'the kill came while the file was being parsed').not.toBeNull();
    expect(seen!.bytes).toBeLessThan(seen!.bytesTotal);
    server = await startServer([], { dataDir });
    try {
      expect((await fetch(server.url('/pools/5'))).status).toBe(404);
      expect((await getJob(server, json.jobId)).status).toBe(404);
      expect(readdirSync(path.join(dataDir, 'imports'))).toEqual([]);
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('during the upload: no pool after the restart, and the next import of the same file lands whole', async () => {
    const dataDir = tempDataDir();
    let server = await startServer([], { dataDir });
    // Half of the body is sent, the rest held back: the kill lands mid-upload, whatever the machine's speed.
    const req = http.request(server.url('/imports?poolId=6'), { method: 'POST', headers: { 'content-length': String(lines * 7) } });
    const failed = new Promise<Error>((resolve) => req.on('error', resolve));
    let half = '';
    for (let i = 0; i < lines / 2; i++) half += line(i);
    req.write(half);
    const spool = path.join(dataDir, 'imports');
    for (;;) {
      const spooled = readdirSync(spool);
      if (spooled.length > 0 && statSync(path.join(spool, spooled[0])).size > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await server.kill();
    expect(await failed).toBeInstanceOf(Error);
    server = await startServer([], { dataDir });
    try {
      expect((await fetch(server.url('/pools/6'))).status).toBe(404);
      expect(readdirSync(path.join(dataDir, 'imports'))).toEqual([]);
      const { json } = await streamImport(server, 'poolId=6', lines, 7, line);
      expect(await waitForJob(server, json.jobId)).toMatchObject({ state: 'done', values: lines });
      await server.kill();
      server = await startServer([], { dataDir });
      expect(((await (await fetch(server.url('/pools/6'))).json()) as { count: number }).count).toBe(lines);
    } finally {
      await server.stop();
    }
  }, 120_000);
});
