// /ws against the real server process with real WebSocket clients (`ws` and
// poolq/client): ordered durable acks with 1000 adds in flight, queries that
// see earlier adds, subscriptions (push latency, coalescing, latest wins after
// a stall, bounded memory for a stalled subscriber), malformed messages,
// protocol violations and their close codes, auth at upgrade.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AppendBatcher, PoolqClient, PoolqConnectionError, PoolqRequestError, PoolqSocket, type PushMessage } from '../src/client/index.js';
import { encodeBinaryAdd } from '../src/protocol/ws-binary-frame.js';
import { startServer, type ServerProcess } from './helpers/server-process.js';

let server: ServerProcess;
let http: PoolqClient;
const wsUrl = () => `ws://127.0.0.1:${server.port}/ws`;

beforeAll(async () => {
  server = await startServer(['--max-body', '1MiB', '--ws-max-backlog', '256KiB']);
  http = new PoolqClient({ baseUrl: server.url('') });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A reply or push as the test reads it. */
type Msg = { id?: unknown; ok?: boolean; topic?: string; count?: number; [key: string]: unknown };

/** A raw `ws` socket that records every message and the close. */
async function rawSocket(url = wsUrl(), headers?: Record<string, string>) {
  const ws = new WebSocket(url, { headers });
  const messages: Msg[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as Msg));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (n: number) => {
    for (let i = 0; i < 500 && messages.length < n; i++) await sleep(10);
    return messages.slice(0, n);
  };
  return { ws, messages, closed, next };
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

describe('adds', () => {
  it('acknowledges 1000 adds in flight on one socket, in request order, each durable', async () => {
    const socket = await PoolqSocket.connect({ url: wsUrl(), reconnect: false });
    const order: number[] = [];
    const adds = Array.from({ length: 1000 }, (_, i) =>
      socket.add(1000 + (i % 10), [i, i + 0.5]).then((ack) => {
        order.push(i);
        return ack;
      }),
    );
    expect(socket.inFlight).toBeGreaterThan(900); // really in flight together
    const acks = await Promise.all(adds);
    expect(order).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    // counts grow by 2 per pool in request order
    for (let i = 0; i < 1000; i++) expect(acks[i]).toEqual({ created: i < 10, count: 2 * (Math.floor(i / 10) + 1) });
    for (let p = 0; p < 10; p++) expect((await http.summary(1000 + p)).count).toBe(200);
    await socket.close();
  });

  it('takes JSON and binary adds on one socket, and a query sees the adds sent before it', async () => {
    const { ws, next } = await rawSocket();
    ws.send(JSON.stringify({ op: 'add', id: 'a', poolId: 2001, poolValues: [1, 2, 3] }));
    ws.send(encodeBinaryAdd(7, 2001, [10, -0]));
    ws.send(JSON.stringify({ op: 'query', id: 'q', poolId: 2001, percentiles: [0, 100], method: 'lower' }));
    const replies = await next(3);
    expect(replies).toEqual([
      { id: 'a', ok: true, created: true, count: 3 },
      { id: 7, ok: true, created: false, count: 5 },
      { id: 'q', ok: true, quantiles: [-0, 10], count: 5 },
    ]);
    ws.close();
  });

  it('answers malformed messages with the id, the code and the field, and changes nothing', async () => {
    const { ws, next } = await rawSocket();
    const bad: [string | Uint8Array, object][] = [
      ['{nope', { id: null, error: 'invalid_json' }],
      ['[1,2]', { id: null, error: 'invalid_request', field: '$' }],
      [JSON.stringify({ op: 'add', poolId: 2002, poolValues: [1] }), { id: null, field: 'id' }],
      [JSON.stringify({ op: 'fly', id: 1 }), { id: 1, field: 'op' }],
      [JSON.stringify({ op: 'add', id: 2, poolId: 2002, poolValues: [1, 'x'] }), { id: 2, field: 'poolValues[1]' }],
      [JSON.stringify({ op: 'add', id: 3, poolId: -1, poolValues: [1] }), { id: 3, field: 'poolId' }],
      [JSON.stringify({ op: 'add', id: 4, poolId: 2002, poolValues: [] }), { id: 4, field: 'poolValues' }],
      [JSON.stringify({ op: 'add', id: 5, poolId: 2002, poolValues: [1], key: 'a b' }), { id: 5, field: 'key' }],
      [JSON.stringify({ op: 'query', id: 6, poolId: 2002, percentile: 50 }), { id: 6, error: 'pool_not_found' }],
      [JSON.stringify({ op: 'query', id: 7, poolId: 2002, percentile: 150 }), { id: 7, field: 'percentile' }],
      [JSON.stringify({ op: 'subscribe', id: 8, poolId: 2002 }), { id: 8, field: 'percentiles' }],
      [JSON.stringify({ op: 'subscribe', id: 9, topic: 'nope', poolId: 2002 }), { id: 9, field: 'topic' }],
      [JSON.stringify({ op: 'unsubscribe', id: 10, topic: 'pool:2002:linear:1000:50' }), { id: 10, field: 'topic' }],
      [encodeBinaryAdd(11, 2002, [1, NaN]), { id: 11, field: 'poolValues[1]' }],
      [encodeBinaryAdd(12, 2002, [Infinity]), { id: 12, field: 'poolValues[0]' }],
      [encodeBinaryAdd(13, 2002, [1]).subarray(0, 20), { id: 13, field: 'poolValues' }],
    ];
    for (const [frame] of bad) ws.send(frame);
    const replies = await next(bad.length);
    bad.forEach(([, expected], i) => {
      expect(replies[i], JSON.stringify(expected)).toMatchObject(expected);
      expect(typeof replies[i].message).toBe('string');
    });
    expect((await fetch(server.url('/pools/2002'))).status).toBe(404);
    ws.close();
  });

  it('closes on protocol violations with 1003 and 1009, and on text that is not UTF-8', async () => {
    const cases: [string, (ws: WebSocket) => void, number][] = [
      ['short binary frame', (ws) => ws.send(new Uint8Array(5)), 1003],
      ['unknown binary op', (ws) => ws.send(Uint8Array.from(encodeBinaryAdd(1, 1, [1]), (b, i) => (i === 0 ? 9 : b))), 1003],
      // uWS checks UTF-8 itself and drops the connection without a close frame: the client sees 1006, not 1007 (docs/api.md).
      ['text that is not UTF-8', (ws) => ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false }), 1006],
      ['message over --max-body', (ws) => ws.send(encodeBinaryAdd(1, 2003, new Float64Array(140_000))), 1009],
    ];
    for (const [name, act, code] of cases) {
      const { ws, closed } = await rawSocket();
      act(ws);
      expect((await closed).code, name).toBe(code);
    }
    expect((await fetch(server.url('/pools/2003'))).status).toBe(404);
    expect((await fetch(server.url('/healthz'))).status).toBe(200);
  });

  it('closes a socket that does not read its replies (1008) once they pass --ws-max-backlog', async () => {
    await http.add(
      2004,
      Array.from({ length: 1000 }, (_, i) => i),
    );
    const connections = async () => metric(await (await fetch(server.url('/metrics'))).text(), 'poolq_ws_connections');
    const { ws, closed, messages } = await rawSocket();
    const open = await connections();
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const query = JSON.stringify({ op: 'query', id: 1, poolId: 2004, percentiles: Array.from({ length: 1000 }, (_, i) => i / 10) });
    // ~12 KB replies, 18 MB unread: more than loopback's socket buffers hold (~5 MB here)
    for (let i = 0; i < 1500; i++) ws.send(query);
    // The server closes it while the client still reads nothing.
    for (let i = 0; i < 300 && (await connections()) >= open; i++) await sleep(50);
    expect(await connections()).toBe(open - 1);
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const { code } = await Promise.race([closed, sleep(15_000).then(() => ({ code: -1 }))]);
    expect(messages[0]).toMatchObject({ id: 1, ok: true }); // replies were big ones, in order, until the close
    expect([1008, 1006]).toContain(code); // 1006 when the close frame could not be written behind the backlog
    const text = await (await fetch(server.url('/metrics'))).text();
    expect(metric(text, 'poolq_ws_buffered_bytes')).toBeLessThan(1 << 20);
  });
});

describe('auth at upgrade', () => {
  it('refuses /ws without the token (401) and accepts the header or ?token=', async () => {
    const secured = await startServer([], { env: { AUTH_TOKEN: 'tok-en' } });
    try {
      const url = `ws://127.0.0.1:${secured.port}/ws`;
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(url);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
      });
      expect(status).toBe(401);
      await expect(PoolqSocket.connect({ url, token: 'wrong', reconnect: false })).rejects.toBeInstanceOf(PoolqConnectionError);
      const byHeader = await PoolqSocket.connect({ url, token: 'tok-en', reconnect: false });
      expect(await byHeader.add(1, [1])).toEqual({ created: true, count: 1 });
      await byHeader.close();
      const { ws, next } = await rawSocket(`${url}?token=tok-en`);
      ws.send(JSON.stringify({ op: 'query', id: 1, poolId: 1, percentile: 50 }));
      expect((await next(1))[0]).toEqual({ id: 1, ok: true, quantile: 1, count: 1 });
      ws.close();
    } finally {
      expect(await secured.stop()).toBe(0);
    }
  });
});

describe('subscriptions', () => {
  it('pushes the current state at once, then within the interval after a change, coalescing bursts', async () => {
    const socket = await PoolqSocket.connect({ url: wsUrl(), reconnect: false });
    const pushes: { at: number; push: PushMessage }[] = [];
    const sub = await socket.subscribe({ poolId: 3001, percentiles: [50, 100], intervalMs: 100 }, (push) =>
      pushes.push({ at: performance.now(), push }),
    );
    await sleep(50);
    expect(pushes.map((p) => p.push)).toEqual([{ topic: sub.topic, poolId: 3001, count: 0, quantiles: null }]);

    // A change after a quiet interval is pushed at once (the topic is due).
    await sleep(150);
    const acked = performance.now();
    await http.add(3001, [4]);
    for (let i = 0; i < 100 && pushes.length < 2; i++) await sleep(2);
    expect(pushes[1].push).toMatchObject({ count: 1, quantiles: [4, 4] });
    expect(pushes[1].at - acked).toBeLessThan(100 + 20);

    // A burst of 20 appends within one interval: at most one push per interval, the last with the final state.
    const before = pushes.length;
    for (let i = 0; i < 20; i++) await http.add(3001, [i]);
    await sleep(250);
    const burst = pushes.slice(before);
    expect(burst.length).toBeGreaterThanOrEqual(1);
    expect(burst.length).toBeLessThanOrEqual(4);
    // Spacing as seen by this process: arrival times carry its own event-loop delay (up to ~20 ms on a loaded machine).
    for (let i = 1; i < burst.length; i++) expect(burst[i].at - burst[i - 1].at).toBeGreaterThanOrEqual(100 - 25);
    expect(burst.at(-1)!.push.count).toBe(21);

    await sub.unsubscribe();
    const after = pushes.length;
    await http.add(3001, [1]);
    await sleep(250);
    expect(pushes.length).toBe(after);
    await socket.close();
  });

  it('shares one topic between subscribers with equal parameters and pushes deletions', async () => {
    const sockets = await Promise.all(Array.from({ length: 20 }, () => PoolqSocket.connect({ url: wsUrl(), reconnect: false })));
    const seen = sockets.map(() => [] as PushMessage[]);
    const subs = await Promise.all(
      sockets.map((s, i) => s.subscribe({ poolId: 3002, percentiles: [50], intervalMs: 20 }, (p) => seen[i].push(p))),
    );
    expect(new Set(subs.map((s) => s.topic)).size).toBe(1);
    await http.add(3002, [1, 2, 3]);
    await sleep(100);
    await http.deletePool(3002);
    await sleep(100);
    for (const pushes of seen) {
      expect(pushes.at(-2)).toMatchObject({ count: 3, quantiles: [2] });
      expect(pushes.at(-1)).toMatchObject({ count: 0, quantiles: null });
    }
    await Promise.all(sockets.map((s) => s.close()));
  });

  it('keeps a stalled subscriber to the push limit (skipping, memory bounded) and gives it the newest state when it drains', async () => {
    const pid = server.proc.pid!;
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    const { ws, messages } = await rawSocket();
    const percentiles = Array.from({ length: 1000 }, (_, i) => i / 10); // ~20 KB per push
    // Five topics every 10 ms: ~10 MB/s, more than loopback's socket buffers absorb in 3 s.
    for (let t = 0; t < 5; t++) ws.send(JSON.stringify({ op: 'subscribe', id: t, poolId: 3003, percentiles, intervalMs: 10 + t }));
    await sleep(100);
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const rssBefore = rss();
    const writer = await PoolqSocket.connect({ url: wsUrl(), reconnect: false });
    let count = 0;
    // Append until the server had to skip pushes (the kernel's socket buffers, several MB on
    // loopback, fill first), then at least 2 s more: every push from then on is skipped.
    const skipped = async () => metric(await (await fetch(server.url('/metrics'))).text(), 'poolq_ws_pushes_skipped_total');
    const until = performance.now() + 40_000;
    let skippingSince = Infinity;
    while (performance.now() < until && performance.now() < skippingSince + 2000) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => writer.add(3003, [count + i])));
      count += 20;
      if (skippingSince === Infinity && count % 200 === 0 && (await skipped()) > 0) skippingSince = performance.now();
    }
    const text = await (await fetch(server.url('/metrics'))).text();
    expect(metric(text, 'poolq_ws_pushes_skipped_total')).toBeGreaterThan(10);
    // The socket holds at most the push limit plus the one push that crossed it (~20 KB).
    expect(metric(text, 'poolq_ws_buffered_bytes')).toBeLessThan(64 * 1024 + 64 * 1024);
    expect(rss() - rssBefore).toBeLessThan(64 << 20);
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const last = (t: number) => messages.filter((m) => m.topic?.includes(`:${10 + t}:`)).at(-1);
    for (let i = 0; i < 300 && [0, 1, 2, 3, 4].some((t) => last(t)?.count !== count); i++) await sleep(10);
    for (let t = 0; t < 5; t++) expect(last(t)).toMatchObject({ poolId: 3003, count });
    ws.close();
    await writer.close();
  });
});

describe('client helpers', () => {
  it('coalesces small appends into binary frames, each promise settled by its frame’s durable ack', async () => {
    const socket = await PoolqSocket.connect({ url: wsUrl(), reconnect: false });
    const batcher = new AppendBatcher(socket, { maxDelayMs: 5 });
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => batcher.add(4000 + (i % 4), [i])));
    expect(results.every((r) => r.count > 0)).toBe(true);
    for (let p = 0; p < 4; p++) expect((await http.summary(4000 + p)).count).toBe(500);
    await socket.close();
  });

  it('reports server refusals as PoolqRequestError with the field', async () => {
    const socket = await PoolqSocket.connect({ url: wsUrl(), reconnect: false, binary: false });
    const err = await socket.add(4100, [1, Number.NaN]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolqRequestError);
    expect((err as PoolqRequestError).field).toBe('poolValues[1]');
    await socket.close();
  });
});
