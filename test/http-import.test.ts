// Bulk imports against the real server: POST /imports streams the body to the
// data directory, GET /imports/{jobId} follows the job, and the values land
// all at once or not at all. Formats, column choice, the first bad line of a
// million-line file, limits and refusals, and the start-up import (--import).

import { readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJob, importAndWait, postImport, waitForJob, type ImportJob } from './helpers/imports.js';
import { startServer, tempDataDir, type ServerProcess } from './helpers/server-process.js';

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer(['--max-import', '64MiB']);
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function poolValues(s: ServerProcess, poolId: number): Promise<{ count: number; min: number; max: number } | null> {
  const res = await fetch(s.url(`/pools/${poolId}`));
  if (res.status === 404) return null;
  return (await res.json()) as { count: number; min: number; max: number };
}

async function quantiles(s: ServerProcess, poolId: number, p: number[]): Promise<number[]> {
  const res = await fetch(s.url(`/pools/${poolId}/quantiles?p=${p.join(',')}`));
  const body = (await res.json()) as { quantiles: { value: number }[] };
  return body.quantiles.map((q) => q.value);
}

describe('POST /imports: CSV', () => {
  it('imports a CSV with a header, the column named, and answers 202 with a job that ends done', async () => {
    const { status, json } = await postImport(server, 'poolId=100&format=csv&column=latency', 'host,latency\na,3\nb,1\nc,2\n');
    expect(status).toBe(202);
    expect(json).toEqual({ jobId: expect.stringMatching(/^[0-9a-f]{16}$/), state: expect.stringMatching(/queued|running/) });
    const job = await waitForJob(server, json.jobId);
    expect(job).toMatchObject({ state: 'done', values: 3, pools: 1, error: null, bytes: 25, bytesTotal: 25, poolId: 100, format: 'csv' });
    expect(await poolValues(server, 100)).toMatchObject({ count: 3, min: 1, max: 3 });
  });

  it('imports a CSV without a header, the column by index', async () => {
    expect(await importAndWait(server, 'poolId=101&column=1', '9,10\n9,20\n9,30\n')).toMatchObject({ state: 'done', values: 3 });
    expect(await quantiles(server, 101, [0, 50, 100])).toEqual([10, 20, 30]);
  });

  it('reads quoted fields and CRLF line endings', async () => {
    const body = 'name,value\r\n"a, ""b""",1.5\r\n"multi\r\nline","2.5"\r\n';
    expect(await importAndWait(server, 'poolId=102&column=value', body)).toMatchObject({ state: 'done', values: 2 });
    expect(await quantiles(server, 102, [0, 100])).toEqual([1.5, 2.5]);
  });

  it('fills many pools from a poolId column', async () => {
    const job = await importAndWait(server, 'format=csv', 'poolId,value\n110,1\n111,2\n110,3\n');
    expect(job).toMatchObject({ state: 'done', values: 3, pools: 2, poolId: null });
    expect(await poolValues(server, 110)).toMatchObject({ count: 2, min: 1, max: 3 });
    expect(await poolValues(server, 111)).toMatchObject({ count: 1 });
  });

  it('appends to a pool that exists', async () => {
    await fetch(server.url('/add'), { method: 'POST', body: '{"poolId": 103, "poolValues": [100]}' });
    await importAndWait(server, 'poolId=103', '1\n2\n');
    expect(await poolValues(server, 103)).toMatchObject({ count: 3, min: 1, max: 100 });
  });

  it('fails a job at the first bad line, line 1 000 001, and leaves the pool as it was', async () => {
    await fetch(server.url('/add'), { method: 'POST', body: '{"poolId": 104, "poolValues": [-1]}' });
    const lines: string[] = [];
    for (let i = 0; i < 1_000_000; i++) lines.push(String(i % 997));
    lines.push('12x', '5');
    const job = await importAndWait(server, 'poolId=104', lines.join('\n'));
    expect(job.state).toBe('failed');
    expect(job.error).toEqual({ line: 1_000_001, message: expect.stringContaining('"12x" is not a finite number') });
    expect(await poolValues(server, 104)).toMatchObject({ count: 1, min: -1, max: -1 });
  });

  it('creates no pool when the file fails', async () => {
    const job = await importAndWait(server, 'poolId=105&column=nope', 'a,b\n1,2\n');
    expect(job).toMatchObject({ state: 'failed', error: { line: 1 } });
    expect(await poolValues(server, 105)).toBeNull();
  });
});

describe('POST /imports: NDJSON and float64', () => {
  it('imports NDJSON numbers, arrays and objects', async () => {
    const job = await importAndWait(server, 'poolId=120&format=ndjson', '1\n[2,3]\n{"poolId":121,"poolValues":[4]}\n');
    expect(job).toMatchObject({ state: 'done', values: 4, pools: 2 });
    expect(await poolValues(server, 120)).toMatchObject({ count: 3 });
  });

  it('imports raw little-endian float64 values, -0 kept', async () => {
    const values = Float64Array.from([2.5, -0, -7]);
    await importAndWait(server, 'poolId=122&format=f64', new Uint8Array(values.buffer));
    const res = await fetch(server.url('/pools/122/quantiles?p=0,50,100&method=lower'));
    expect(await res.text()).toContain('{"percentile":50,"value":-0}');
  });
});

describe('POST /imports: refusals', () => {
  it('refuses bad parameters with 400 before reading the body, and changes nothing', async () => {
    for (const [query, field] of [
      ['poolId=1&format=xml', 'format'],
      ['poolId=-1', 'poolId'],
      ['poolId=abc', 'poolId'],
      ['format=f64', 'poolId'],
      ['poolId=1&format=ndjson&column=x', 'column'],
    ]) {
      const { status, json } = await postImport(server, query, '1\n');
      expect(status, query).toBe(400);
      expect(json).toMatchObject({ error: 'invalid_request', field });
    }
    expect(await poolValues(server, 1)).toBeNull();
  });

  it('refuses a body over --max-import with 413 from its content-length, before reading it', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        server.url('/imports?poolId=130'),
        { method: 'POST', headers: { 'content-length': String(65 * 2 ** 20) } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        },
      );
      req.on('error', reject);
      req.write('1\n'); // the rest never comes
    });
    expect(status).toBe(413);
    expect(JSON.parse(body).error).toBe('payload_too_large');
    expect(await poolValues(server, 130)).toBeNull();
  });

  it('answers 404 for an unknown job and 405 for other methods', async () => {
    expect((await getJob(server, 'ffffffffffffffff')).status).toBe(404);
    const res = await fetch(server.url('/imports'), { method: 'GET' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('keeps no spool file once jobs end', async () => {
    await importAndWait(server, 'poolId=131', '1\n');
    expect(readdirSync(path.join(server.dataDir, 'imports'))).toEqual([]);
  });
});

describe('--auth-token', () => {
  it('needs the token to start or read an import', async () => {
    const s = await startServer(['--auth-token', 'tok']);
    try {
      expect((await postImport(s, 'poolId=1', '1\n')).status).toBe(401);
      const auth = { authorization: 'Bearer tok' };
      const { status, json } = await postImport(s, 'poolId=1', '1\n', auth);
      expect(status).toBe(202);
      expect((await getJob(s, json.jobId)).status).toBe(401);
      expect(await waitForJob(s, json.jobId, auth)).toMatchObject({ state: 'done' });
    } finally {
      await s.stop();
    }
  });
});

describe('--import FILE --import-pool ID at start-up', () => {
  it('loads the file into a new pool before ready, once: restarts, even after SIGKILL, do not load it again', async () => {
    const dataDir = tempDataDir();
    const file = path.join(dataDir, '..', `seed-${path.basename(dataDir)}.csv`);
    writeFileSync(file, 'value\n' + Array.from({ length: 1000 }, (_, i) => i).join('\n') + '\n');
    const args = ['--import', file, '--import-pool', '42'];
    let s = await startServer(args, { dataDir });
    expect(await poolValues(s, 42)).toMatchObject({ count: 1000, min: 0, max: 999 });
    await s.kill();
    s = await startServer(args, { dataDir });
    expect(await poolValues(s, 42)).toMatchObject({ count: 1000 });
    expect(await s.stop()).toBe(0);
    s = await startServer(args, { dataDir });
    expect(await poolValues(s, 42)).toMatchObject({ count: 1000 });
    expect(await s.stop()).toBe(0);
  });

  it('refuses to start when the file does not parse', async () => {
    const dataDir = tempDataDir();
    const file = path.join(dataDir, '..', `bad-${path.basename(dataDir)}.csv`);
    writeFileSync(file, '1\nx\n');
    await expect(startServer(['--import', file, '--import-pool', '1'], { dataDir })).rejects.toThrow(/exited with 1/);
  });
});

describe('import progress over /ws', () => {
  it('pushes the job to an `import` topic subscriber until it is done', async () => {
    const { WebSocket } = await import('ws');
    const lines = Array.from({ length: 300_000 }, (_, i) => String(i % 1000)).join('\n');
    const { status, json } = await postImport(server, 'poolId=140', lines);
    expect(status).toBe(202);
    const ws = new WebSocket(server.url('/ws').replace('http', 'ws'));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const pushes: ImportJob[] = [];
    const done = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as ImportJob & { topic?: string; id?: number };
        if (message.topic === `import:${json.jobId}` && message.id === undefined) {
          pushes.push(message);
          if (message.state === 'done' || message.state === 'failed') resolve();
        }
      }),
    );
    ws.send(JSON.stringify({ op: 'subscribe', id: 1, topic: 'import', jobId: json.jobId }));
    await done;
    ws.close();
    expect(pushes.at(-1)).toMatchObject({ jobId: json.jobId, state: 'done', values: 300_000, pools: 1 });
    expect(pushes.every((p, i) => i === 0 || p.values >= pushes[i - 1].values)).toBe(true);
  });

  it('refuses a subscription to a job that does not exist', async () => {
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(server.url('/ws').replace('http', 'ws'));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const reply = new Promise<Record<string, unknown>>((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)))));
    ws.send(JSON.stringify({ op: 'subscribe', id: 7, topic: 'import', jobId: 'nope' }));
    expect(await reply).toMatchObject({ id: 7, error: 'invalid_request', field: 'jobId' });
    ws.close();
  });
});
