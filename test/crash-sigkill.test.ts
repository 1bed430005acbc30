// The real server as a child process, appends from several connections, SIGKILL
// at random moments, restart, and check: every acknowledged append is present
// exactly once, and an unacknowledged one is either absent or present exactly
// once. Every append goes to its own pool whose values all equal the pool id,
// so a record applied twice shows up as a doubled count.
//
// SIGKILL leaves the page cache intact, so this test cannot catch a missing
// fdatasync (docs/durability.md, "How it is tested"); the power-cut tests in
// storage-*.test.ts do that. This one catches replies sent before the write,
// lost group-commit batches, torn records at kill time and replay bugs.

import { describe, expect, it } from 'vitest';
import { seededRandom } from './helpers/random.js';
import { startServer, tempDataDir, type ServerProcess } from './helpers/server-process.js';

const KILLS = 20;
const CONNECTIONS = 6;

interface Attempt {
  poolId: number;
  size: number;
  acked: boolean;
}

async function appendLoop(server: ServerProcess, nextId: () => number, attempts: Attempt[], stop: { now: boolean }, random: () => number) {
  while (!stop.now) {
    const poolId = nextId();
    const size = 1 + Math.floor(random() * 5);
    const attempt: Attempt = { poolId, size, acked: false };
    attempts.push(attempt);
    try {
      const res = await fetch(server.url('/add'), {
        method: 'POST',
        body: JSON.stringify({ poolId, poolValues: new Array(size).fill(poolId) }),
      });
      const text = await res.text();
      if (res.status === 200 && text === '"Inserted"') attempt.acked = true;
    } catch {
      return; // connection reset by the kill
    }
  }
}

async function allPools(server: ServerProcess): Promise<Map<number, number>> {
  const pools = new Map<number, number>();
  let after: number | null = null;
  for (;;) {
    const res = await fetch(server.url(`/pools?limit=1000${after === null ? '' : `&after=${after}`}`));
    const page = (await res.json()) as { pools: { poolId: number; count: number }[]; next: number | null };
    for (const p of page.pools) pools.set(p.poolId, p.count);
    if (page.next === null) return pools;
    after = page.next;
  }
}

describe('SIGKILL crash test (fsync=always)', () => {
  it(`loses no acknowledged append and duplicates nothing across ${KILLS} kills`, async () => {
    const dataDir = tempDataDir('poolq-crash-');
    const random = seededRandom(Number(process.env.CRASH_SEED ?? 12345));
    const attempts: Attempt[] = [];
    let next = 1;
    const nextId = () => next++;
    let totalAcked = 0;
    for (let round = 0; round < KILLS; round++) {
      // Small snapshot thresholds so kills also land during snapshots and log rotation.
      const server = await startServer(['--snapshot-wal-bytes', '64KiB', '--workers', '0'], { dataDir });
      const pools = await allPools(server);
      for (const a of attempts) {
        const count = pools.get(a.poolId);
        if (a.acked) expect(count, `acknowledged pool ${a.poolId} after round ${round}`).toBe(a.size);
        else if (count !== undefined) expect(count, `unacknowledged pool ${a.poolId} applied twice?`).toBe(a.size);
      }
      expect(pools.size).toBeLessThanOrEqual(attempts.length);
      // Unacknowledged appends that survived are now facts; later rounds must keep them.
      for (const a of attempts) if (!a.acked && pools.has(a.poolId)) a.acked = true;

      const stop = { now: false };
      const loops = Array.from({ length: CONNECTIONS }, () => appendLoop(server, nextId, attempts, stop, random));
      await new Promise((r) => setTimeout(r, 50 + random() * 300));
      await server.kill();
      stop.now = true;
      await Promise.all(loops);
      totalAcked = attempts.filter((a) => a.acked).length;
    }
    const server = await startServer([], { dataDir });
    const pools = await allPools(server);
    for (const a of attempts) if (a.acked) expect(pools.get(a.poolId), `pool ${a.poolId}`).toBe(a.size);
    expect(await server.stop()).toBe(0);
    expect(totalAcked).toBeGreaterThan(KILLS * 10); // the test did real work
  }, 180_000);
});
