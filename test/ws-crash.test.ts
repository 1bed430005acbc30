// SIGKILL during a stream of WebSocket adds under --fsync=always: every add
// acknowledged over /ws is present exactly once after a restart, and one that
// was not acknowledged is absent or present once. Each add goes to its own
// pool whose values all equal the pool id, so a duplicate shows as a doubled
// count (as in crash-sigkill.test.ts, which does the same over HTTP).

import { describe, expect, it } from 'vitest';
import { PoolqSocket } from '../src/client/index.js';
import { seededRandom } from './helpers/random.js';
import { startServer, tempDataDir } from './helpers/server-process.js';

const KILLS = 6;

async function allPools(url: (p: string) => string): Promise<Map<number, number>> {
  const pools = new Map<number, number>();
  let after: number | null = null;
  for (;;) {
    const page = (await (await fetch(url(`/pools?limit=1000${after === null ? '' : `&after=${after}`}`))).json()) as {
      pools: { poolId: number; count: number }[];
      next: number | null;
    };
    for (const p of page.pools) pools.set(p.poolId, p.count);
    if (page.next === null) return pools;
    after = page.next;
  }
}

describe('SIGKILL during WebSocket adds (fsync=always)', () => {
  it(`keeps every acknowledged add exactly once across ${KILLS} kills`, async () => {
    const dataDir = tempDataDir('poolq-ws-crash-');
    const random = seededRandom(4242);
    const attempts = new Map<number, { size: number; acked: boolean }>();
    let next = 1;
    for (let round = 0; round <= KILLS; round++) {
      const server = await startServer(['--snapshot-wal-bytes', '64KiB', '--workers', '0'], { dataDir });
      const pools = await allPools(server.url);
      for (const [poolId, a] of attempts) {
        const count = pools.get(poolId);
        if (a.acked) expect(count, `acknowledged pool ${poolId} after round ${round}`).toBe(a.size);
        else if (count !== undefined) {
          expect(count, `unacknowledged pool ${poolId} applied twice?`).toBe(a.size);
          a.acked = true; // survived: a fact from now on
        }
      }
      if (round === KILLS) {
        expect(await server.stop()).toBe(0);
        break;
      }
      const socket = await PoolqSocket.connect({ url: `ws://127.0.0.1:${server.port}/ws`, reconnect: false });
      let stop = false;
      // Several adds in flight at any time on the one socket.
      const streams = Array.from({ length: 8 }, async () => {
        while (!stop) {
          const poolId = next++;
          const size = 1 + Math.floor(random() * 5);
          const attempt = { size, acked: false };
          attempts.set(poolId, attempt);
          try {
            const ack = await socket.add(poolId, new Array(size).fill(poolId));
            if (ack.created && ack.count === size) attempt.acked = true;
          } catch {
            return; // the kill
          }
        }
      });
      await new Promise((r) => setTimeout(r, 100 + random() * 300));
      await server.kill();
      stop = true;
      await Promise.all(streams);
    }
    const acked = [...attempts.values()].filter((a) => a.acked).length;
    expect(acked).toBeGreaterThan(KILLS * 20);
  }, 120_000);
});
