// /ws idle timeout against the real server: the binding pings a silent socket
// and drops one that does not even answer with a pong, without a close frame
// (the client sees 1006), whatever the server keeps sending it; a client that
// answers pings stays open. 8 s is the
// least --ws-idle-timeout the binding takes; its timers tick every 4 s, so a
// silent socket is pinged within 4 s and dropped 4 s after that ping.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { postJson, startServer, type ServerProcess } from './helpers/server-process.js';
import { watchSocket, wsCloses } from './helpers/ws-watch.js';

const IDLE_S = 8;
const TICK_S = 4;
/** Allowance for a late timer on a loaded machine. */
const LATE_S = 1.5;

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer(['--ws-idle-timeout', String(IDLE_S)]);
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

describe(`idle timeout (--ws-idle-timeout ${IDLE_S})`, () => {
  it('drops a socket that answers no ping with 1006 within the timeout though pushes flow to it, keeps one that answers, and counts the drop as idle', async () => {
    const url = `ws://127.0.0.1:${server.port}/ws`;
    const before = await wsCloses(server.url('/metrics'));
    // Both open together, so both are pinged at the same ticks.
    const [silent, answering] = await Promise.all([watchSocket(url, { autoPong: false }), watchSocket(url)]);
    // Only what the client sends counts: pushes to the silent socket do not keep it open.
    silent.ws.send(JSON.stringify({ op: 'subscribe', id: 's', poolId: 2, percentile: 50, intervalMs: 100 }));
    const adds = setInterval(() => void postJson(server.url('/add'), { poolId: 2, poolValues: [1] }), 250);
    const close = await silent.closed;
    clearInterval(adds);
    expect(silent.replies.length).toBeGreaterThan(10);
    expect(close.code).toBe(1006);
    expect(silent.pings.length).toBeGreaterThanOrEqual(1);
    const silentS = (close.at - silent.openedAt) / 1000;
    expect(silentS).toBeGreaterThan(TICK_S - 0.1);
    expect(silentS).toBeLessThan(IDLE_S + LATE_S);
    // It was given a whole tick to answer the ping.
    expect((close.at - silent.pings[0]) / 1000).toBeGreaterThan(TICK_S - 0.1);

    // Past the timeout, the socket that answered is open, was pinged again after its pong, and serves.
    const wait = answering.openedAt + (IDLE_S + 0.5) * 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    expect(answering.ws.readyState).toBe(WebSocket.OPEN);
    expect(answering.pings.length).toBeGreaterThanOrEqual(2);
    answering.ws.send(JSON.stringify({ op: 'add', id: 'alive', poolId: 1, poolValues: [1] }));
    expect(await answering.next(1)).toEqual([{ id: 'alive', ok: true, created: true, count: 1 }]);

    const after = await wsCloses(server.url('/metrics'));
    expect(after.idle - before.idle).toBe(1);
    expect(after.lost - before.lost).toBe(0);
    answering.ws.close(1000);
    expect((await answering.closed).code).toBe(1000);
  }, 30_000);
});
