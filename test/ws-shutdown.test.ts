// SIGTERM while /ws sockets stream adds (--fsync always): every socket gets a
// 1001 close after the replies to the adds storage already took; an add is
// either acknowledged before that close or never applied, which a restart on
// the same data directory checks. Each add goes to its own pool whose values
// all equal the pool id, so a lost or doubled add shows in that pool's count.

import { describe, expect, it } from 'vitest';
import { encodeBinaryAdd } from '../src/protocol/ws-binary-frame.js';
import { startServer, tempDataDir } from './helpers/server-process.js';
import { watchSocket, type WatchedSocket } from './helpers/ws-watch.js';

const IN_FLIGHT = 32;

interface Add {
  poolId: number;
  size: number;
  reply: { ok?: boolean; error?: string; created?: boolean; count?: number } | null;
}

async function poolCounts(url: (p: string) => string): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  let after: number | null = null;
  for (;;) {
    const page = (await (await fetch(url(`/pools?limit=1000${after === null ? '' : `&after=${after}`}`))).json()) as {
      pools: { poolId: number; count: number }[];
      next: number | null;
    };
    for (const p of page.pools) counts.set(p.poolId, p.count);
    if (page.next === null) return counts;
    after = page.next;
  }
}

/** Keeps IN_FLIGHT adds outstanding on `socket` (JSON or binary frames) until it closes. */
function stream(socket: WatchedSocket, binary: boolean, adds: Add[], nextPoolId: () => number): void {
  const mine: Add[] = [];
  const send = () => {
    while (socket.ws.readyState === socket.ws.OPEN && mine.length - socket.replies.length < IN_FLIGHT) {
      const poolId = nextPoolId();
      const add: Add = { poolId, size: 1 + (poolId % 4), reply: null };
      const values = new Array<number>(add.size).fill(poolId);
      socket.ws.send(
        binary ? encodeBinaryAdd(poolId, poolId, values) : JSON.stringify({ op: 'add', id: poolId, poolId, poolValues: values }),
      );
      mine.push(add);
      adds.push(add);
    }
  };
  // Replies come in request order: the n-th reply answers the n-th add.
  socket.ws.on('message', () => {
    mine[socket.replies.length - 1].reply = socket.replies[socket.replies.length - 1] as Add['reply'];
    send();
  });
  send();
}

describe('SIGTERM with open /ws sockets', () => {
  it('closes every socket with 1001 after acknowledging the adds in flight; a restart holds each acknowledged add once and nothing else', async () => {
    const dataDir = tempDataDir('poolq-ws-shutdown-');
    const server = await startServer([], { dataDir });
    const url = `ws://127.0.0.1:${server.port}/ws`;
    const sockets = await Promise.all([watchSocket(url), watchSocket(url), watchSocket(url)]);
    const [json, binary, subscriber] = sockets;
    subscriber.ws.send(JSON.stringify({ op: 'subscribe', id: 's', poolId: 1, percentile: 50, intervalMs: 10 }));
    expect(await subscriber.next(1)).toEqual([{ id: 's', ok: true, topic: 'pool:1:linear:10:50' }]);

    const adds: Add[] = [];
    let poolId = 0;
    stream(json, false, adds, () => ++poolId);
    stream(binary, true, adds, () => ++poolId);
    while (adds.filter((a) => a.reply !== null).length < 200) await new Promise((r) => setTimeout(r, 10));

    const exited = server.stop();
    const closes = await Promise.all(sockets.map((s) => s.closed));
    for (const close of closes) expect(close).toMatchObject({ code: 1001, reason: 'poolq is shutting down' });
    expect(await exited).toBe(0);

    const acked = adds.filter((a) => a.reply?.ok === true);
    for (const a of acked) expect(a.reply, `pool ${a.poolId}`).toEqual({ id: a.poolId, ok: true, created: true, count: a.size });
    // The rest was refused while stopping, or sent too late for any reply.
    for (const a of adds) if (a.reply !== null && a.reply.ok !== true) expect(a.reply.error, `pool ${a.poolId}`).toBe('unavailable');
    expect(acked.length).toBeGreaterThanOrEqual(200);
    expect(adds.length).toBeGreaterThan(acked.length); // some were still in flight at SIGTERM

    const restarted = await startServer([], { dataDir });
    const counts = await poolCounts(restarted.url);
    expect(await restarted.stop()).toBe(0);
    const expected = new Map(acked.map((a) => [a.poolId, a.size]));
    const missing = acked.filter((a) => counts.get(a.poolId) !== a.size).map((a) => a.poolId);
    const extra = [...counts.keys()].filter((id) => !expected.has(id));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
  }, 60_000);
});
