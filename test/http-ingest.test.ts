// The bulk ingest paths against the real server: application/octet-stream
// bodies (small, and large ones sorted in place on a worker), NDJSON /batch
// with every error it names, and Idempotency-Key on every append path.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PoolqClient, PoolqSocket } from '../src/client/index.js';
import { startServer, tempDataDir, type ServerProcess } from './helpers/server-process.js';

let server: ServerProcess;
let client: PoolqClient;

beforeAll(async () => {
  server = await startServer(['--max-body', '16MiB']);
  client = new PoolqClient({ baseUrl: server.url('') });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const f64 = (values: number[]) => Buffer.from(new Float64Array(values).buffer);
const post = async (path: string, body: Buffer | string, headers: Record<string, string> = {}) => {
  const res = await fetch(server.url(path), { method: 'POST', body, headers });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text) };
};
const binary = (path: string, body: Buffer, headers: Record<string, string> = {}) =>
  post(path, body, { 'content-type': 'application/octet-stream', ...headers });
const pools = async () => (await (await fetch(server.url('/pools?limit=1000'))).json()) as { pools: { poolId: number; count: number }[] };

describe('application/octet-stream appends', () => {
  it('appends little-endian float64s exactly (-0, subnormals, extremes)', async () => {
    expect(await binary('/pools/100/values', f64([3, -0, 5e-324, -1.7976931348623157e308]))).toEqual({
      status: 201,
      json: { status: 'inserted', count: 4 },
    });
    expect(await binary('/pools/100/values', f64([1]))).toEqual({ status: 200, json: { status: 'appended', count: 5 } });
    const q = await post('/query', JSON.stringify({ poolId: 100, percentiles: [0, 25, 50, 75, 100], method: 'lower' }));
    expect(q.json).toEqual({ quantiles: [-1.7976931348623157e308, -0, 5e-324, 1, 3], count: 5 });
  });

  it('appends a 10^6-value body (8 MB, sorted in place on a worker) and answers like numpy', async () => {
    const n = 1_000_000;
    const values = Float64Array.from({ length: n }, (_, i) => ((i * 7919) % n) - n / 2);
    const r = await client.appendBinary(101, values);
    expect(r).toEqual({ created: true, count: n });
    expect((await client.query(101, [0, 50, 100], 'lower')).quantiles).toEqual([-n / 2, -1, n / 2 - 1]);
  });

  it('refuses bad bodies naming the field, and changes nothing', async () => {
    const before = await pools();
    const cases: [string, Buffer, string][] = [
      ['length not a multiple of 8', Buffer.alloc(12), 'body'],
      ['empty', Buffer.alloc(0), 'body'],
      ['NaN', f64([1, 2, NaN]), 'body[2]'],
      ['Infinity', f64([Infinity]), 'body[0]'],
      ['-Infinity in a large body (worker)', f64([...new Array(100_000).fill(1), -Infinity]), 'body[100000]'],
    ];
    for (const [name, body, field] of cases) {
      const r = await binary('/pools/102/values', body);
      expect(r.status, name).toBe(400);
      expect(r.json.error, name).toBe('invalid_request');
      expect(r.json.field, name).toBe(field);
    }
    expect((await binary('/pools/abc/values', f64([1]))).json.field).toBe('poolId');
    const big = await binary('/pools/102/values', Buffer.alloc(17 * 1024 * 1024));
    expect(big.status).toBe(413);
    expect(await pools()).toEqual(before);
  });
});

describe('POST /batch (NDJSON)', () => {
  const line = (poolId: number, values: number[]) => JSON.stringify({ poolId, poolValues: values });

  it('appends many pools in one request and reports pools and values', async () => {
    const body = Array.from({ length: 1000 }, (_, i) => line(200_000 + i, [i, i + 1, i + 2])).join('\n') + '\n';
    expect(await post('/batch', body, { 'content-type': 'application/x-ndjson' })).toEqual({
      status: 200,
      json: { pools: 1000, values: 3000 },
    });
    expect((await client.summary(200_999)).count).toBe(3);
    // lines for one pool become one append
    expect(
      await client.batch([
        { poolId: 201_000, values: [1] },
        { poolId: 201_000, values: [2, 3] },
      ]),
    ).toEqual({ pools: 1, values: 3 });
    expect((await client.summary(201_000)).count).toBe(3);
  });

  it('refuses the whole batch at the first bad line, naming it, and applies nothing', async () => {
    const ok = line(202_000, [1]);
    const before = await pools();
    const cases: [string, string, string, string][] = [
      ['bad JSON', `${ok}\n${ok}\n{nope\n`, 'invalid_json', 'line[3]'],
      ['bad value', `${ok}\n{"poolId":202001,"poolValues":[1,"x"]}\n`, 'invalid_request', 'line[2].poolValues[1]'],
      ['bad pool id', `{"poolId":-1,"poolValues":[1]}\n${ok}`, 'invalid_request', 'line[1].poolId'],
      ['not an object', `${ok}\n\n[1,2]\n`, 'invalid_request', 'line[3]'],
      ['empty values', `${ok}\n{"poolId":1,"poolValues":[]}`, 'invalid_request', 'line[2].poolValues'],
      ['no lines', '\n\n', 'invalid_request', 'line[1]'],
      ['a line over 1 MiB', `${ok}\n{"poolId":1,"poolValues":[${'1,'.repeat(600_000)}1]}\n`, 'invalid_request', 'line[2]'],
      [
        'more than 4 Mi values',
        Array.from({ length: 9 }, () => `{"poolId":3,"poolValues":[${'1,'.repeat(499_999)}1]}`).join('\n'),
        'invalid_request',
        'line[9]',
      ],
      ['more than 100 000 lines', `${ok}\n`.repeat(100_001), 'invalid_request', 'line[100001]'],
    ];
    for (const [name, body, code, field] of cases) {
      const r = await post('/batch', body);
      expect(r.status, name).toBe(400);
      expect(r.json.error, name).toBe(code);
      expect(r.json.field, name).toBe(field);
      expect(r.json.message, name).toMatch(/^Line \d+/);
    }
    expect((await post('/batch', Buffer.alloc(17 * 1024 * 1024, 0x20))).status).toBe(413);
    expect(await pools()).toEqual(before);
  });
});

describe('Idempotency-Key', () => {
  it('answers a retried HTTP append with the first outcome and appends once', async () => {
    const headers = { 'idempotency-key': 'add-300-a' };
    expect(await post('/add', line(300, [1, 2]), headers)).toEqual({ status: 200, json: 'Inserted' });
    expect(await post('/add', line(300, [1, 2]), headers)).toEqual({ status: 200, json: 'Inserted' });
    expect(await post('/add', line(300, [1, 2]), { 'idempotency-key': 'add-300-b' })).toEqual({ status: 200, json: 'Appended' });
    expect((await client.summary(300)).count).toBe(4);

    expect(await client.appendBinary(301, [1], { key: 'bin-301' })).toEqual({ created: true, count: 1 });
    expect(await client.appendBinary(301, [1], { key: 'bin-301' })).toEqual({ created: true, count: 1 });
    expect(await client.batch([{ poolId: 302, values: [1] }], { key: 'batch-302' })).toEqual({ pools: 1, values: 1 });
    expect(await client.batch([{ poolId: 302, values: [1] }], { key: 'batch-302' })).toEqual({ pools: 1, values: 1 });
    expect((await client.summary(301)).count).toBe(1);
    expect((await client.summary(302)).count).toBe(1);

    for (const key of ['has space', 'x'.repeat(65), 'tab\there']) {
      const r = await post('/add', line(303, [1]), { 'idempotency-key': key });
      expect(r.status, key).toBe(400);
      expect(r.json.field).toBe('Idempotency-Key');
    }
    expect((await fetch(server.url('/pools/303'))).status).toBe(404);
  });

  it('answers a retried WebSocket add (JSON and binary) with the first outcome', async () => {
    for (const binaryFrames of [true, false]) {
      const socket = await PoolqSocket.connect({ url: `ws://127.0.0.1:${server.port}/ws`, binary: binaryFrames, reconnect: false });
      const poolId = binaryFrames ? 310 : 311;
      const first = await socket.add(poolId, [5, 6], { key: `ws-${poolId}` });
      expect(await socket.add(poolId, [5, 6], { key: `ws-${poolId}` })).toEqual(first);
      expect((await client.summary(poolId)).count).toBe(2);
      await socket.close();
    }
  });

  it('re-sends keyed adds after a reconnect without applying them twice', async () => {
    const socket = await PoolqSocket.connect({ url: `ws://127.0.0.1:${server.port}/ws`, reconnect: { minDelayMs: 20 } });
    const adds = Array.from({ length: 50 }, (_, i) => socket.add(320 + (i % 5), [i], { key: `re-${i}` }));
    // Drop the TCP connection under the client while adds are in flight.
    const internal = socket as unknown as { ws: WebSocket | null };
    internal.ws!.terminate();
    const acks = await Promise.all(adds);
    expect(acks.every((a) => a.count >= 1)).toBe(true);
    for (let p = 0; p < 5; p++) expect((await client.summary(320 + p)).count).toBe(10);
    await socket.close();
  });
});

function line(poolId: number, values: number[]): string {
  return JSON.stringify({ poolId, poolValues: values });
}

describe('Idempotency-Key across a restart', () => {
  it('answers retries after a restart (SIGKILL) with the first outcome, over HTTP and /ws, without appending again', async () => {
    const dataDir = tempDataDir('poolq-keys-');
    // The same four keyed changes, sent first and then retried after the SIGKILL: each answer is the first one.
    const sendKeyed = async (target: ServerProcess): Promise<PoolqClient> => {
      const client = new PoolqClient({ baseUrl: target.url('') });
      expect(await client.add(700, [1, 2], { key: 'restart-add' })).toBe('Inserted');
      expect(await client.appendBinary(701, [1, 2, 3], { key: 'restart-bin' })).toEqual({ created: true, count: 3 });
      expect(
        await client.batch(
          [
            { poolId: 702, values: [1] },
            { poolId: 703, values: [2] },
          ],
          { key: 'restart-batch' },
        ),
      ).toEqual({ pools: 2, values: 2 });
      const socket = await PoolqSocket.connect({ url: `ws://127.0.0.1:${target.port}/ws`, reconnect: false });
      expect(await socket.add(704, [9], { key: 'restart-ws' })).toEqual({ created: true, count: 1 });
      await socket.close();
      return client;
    };
    const first = await startServer([], { dataDir });
    await sendKeyed(first);
    await first.kill();

    const s = await startServer([], { dataDir });
    const c = await sendKeyed(s);
    for (const [poolId, count] of [
      [700, 2],
      [701, 3],
      [702, 1],
      [703, 1],
      [704, 1],
    ])
      expect((await c.summary(poolId)).count, String(poolId)).toBe(count);
    // the same key for a different change is refused
    const conflict = await post2(s.url('/add'), JSON.stringify({ poolId: 700, poolValues: [5, 6, 7] }), {
      'idempotency-key': 'restart-add',
    });
    expect(conflict.status).toBe(400);
    expect(await s.stop()).toBe(0);
  });
});

async function post2(url: string, body: string, headers: Record<string, string>) {
  const res = await fetch(url, { method: 'POST', body, headers });
  return { status: res.status, json: (await res.json()) as unknown };
}
