// A real cluster on loopback: three poolq processes (built server) behind a
// real HAProxy 2.6 generated from the shard map (src/cli/cluster). Pools land
// on their owners by every route, a non-owner refuses with 421, a SIGKILLed
// shard's pools get 503 while the others are served, a restart brings back
// every acknowledged value, and a bucket moved under a stream of appends ends
// complete on its new owner and gone from the old one.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKET_COUNT, bucketOf, ownerOfPool } from '../src/core/shard-map.js';
import { LocalCluster } from '../src/cli/cluster/local-cluster.js';
import type { ClusterStatus } from '../src/http/cluster-admin.js';
import { PoolqSocket } from '../src/client/ws-client.js';
import { seededRandom } from './helpers/random.js';

interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a reply's shape is what the assertions check
  json: any;
  headers: Headers;
}

async function call(url: string, method = 'GET', body?: unknown): Promise<Reply> {
  const res = await fetch(url, { method, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text), headers: res.headers };
}

/** Runs `task` over `items` with at most `width` in flight. */
async function inParallel<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A pool id below 2^bits with every bit random (one draw has only 32 bits). */
function randomPoolId(random: () => number, bits: number): number {
  const id = Math.floor(random() * 2 ** 21) * 2 ** 32 + Math.floor(random() * 2 ** 32);
  return id % 2 ** bits;
}

describe('a 3-shard cluster behind HAProxy', () => {
  let dir: string;
  let cluster: LocalCluster;
  let proxy: (p: string) => string;
  const shard = (name: string) => (p: string) => `${cluster.shardUrl(name)}${p}`;
  /** Values each pool should hold (every acknowledged append). */
  const expected = new Map<number, number>();
  let poolIds: number[];

  const status = async (name: string) => (await call(shard(name)('/cluster'))).json as ClusterStatus;
  const ownerOf = (poolId: number) => ownerOfPool(cluster.shardMap, poolId);
  const shardNames = () => [...cluster.shardMap.shards.keys()];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'poolq-cluster-'));
    cluster = await LocalCluster.start({ dir, shards: 3, port: 0, poolqArgs: ['--workers', '0', '--snapshot-interval-ms', '0'] });
    proxy = (p) => `${cluster.layout.proxyUrl}${p}`;
    // 1000 pool ids spread over the whole id range (every magnitude), all distinct.
    const random = seededRandom(14);
    const ids = new Set<number>([0, 1, 4095, 4096, 4097, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53 - 4096]);
    while (ids.size < 1000) ids.add(randomPoolId(random, 1 + Math.floor(random() * 53)));
    poolIds = [...ids];
  });

  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts each of 1000 pools, appended through the proxy by every route, on exactly its owner', async () => {
    await inParallel(poolIds, 24, async (poolId) => {
      const add = await call(proxy('/add'), 'POST', `{"poolId": ${poolId}, "poolValues": [1, 2, 3]}`);
      expect(add.status, JSON.stringify(add.json)).toBe(200);
      expect(add.json).toBe('Inserted');
      const more = await call(proxy(`/pools/${poolId}/values`), 'POST', '[4, 5]');
      expect(more.status, JSON.stringify(more.json)).toBe(200);
      expect(more.json).toEqual({ status: 'appended', count: 5 });
      expected.set(poolId, 5);
      // the proxy computed the same bucket as poolq (a different one would have reached a non-owner: 421)
      expect(add.headers.get('x-poolq-bucket')).toBe(String(BigInt(poolId) % BigInt(BUCKET_COUNT)));
      const query = await call(proxy('/query'), 'POST', { poolId, percentile: 50 });
      expect(query.json).toEqual({ quantile: 3, count: 5 });
      if (poolId % 8 !== 0) return; // the path-routed reads, on an eighth of the pools
      const summary = await call(proxy(`/pools/${poolId}`));
      expect(summary.json).toMatchObject({ poolId, count: 5, min: 1, max: 5 });
      const quantiles = await call(proxy(`/pools/${poolId}/quantiles?p=100`));
      expect(quantiles.json.quantiles).toEqual([{ percentile: 100, value: 5 }]);
    });

    // on each instance directly: exactly the pools it owns, with exact counts, and nothing else stored
    for (const name of shardNames()) {
      const owned = poolIds.filter((id) => ownerOf(id) === name).sort((a, b) => a - b);
      expect(owned.length).toBeGreaterThan(250);
      const listed: { poolId: number; count: number }[] = [];
      let after: number | null = null;
      do {
        const page: Reply = await call(shard(name)(`/pools?limit=1000${after === null ? '' : `&after=${after}`}`));
        listed.push(...page.json.pools);
        after = page.json.next;
      } while (after !== null);
      expect(listed).toEqual(owned.map((poolId) => ({ poolId, count: 5 })));
      const s = await status(name);
      expect({ pools: s.pools, values: s.values, storedPools: s.storedPools, storedValues: s.storedValues }).toEqual({
        pools: owned.length,
        values: owned.length * 5,
        storedPools: owned.length,
        storedValues: owned.length * 5,
      });
    }
  });

  it('agrees with HAProxy on the bucket of every kind of pool id up to 2^53-1 (path and body)', async () => {
    const ids: number[] = [];
    for (let k = 0; k <= 53; k++)
      for (const d of [-1, 0, 1]) if (2 ** k + d >= 0 && 2 ** k + d <= Number.MAX_SAFE_INTEGER) ids.push(2 ** k + d);
    const random = seededRandom(4096);
    for (let i = 0; i < 300; i++) ids.push(randomPoolId(random, 53));
    await inParallel(ids, 16, async (id) => {
      const oracle = String(BigInt(id) % 4096n);
      expect(String(bucketOf(id))).toBe(oracle);
      // an unknown pool: only its owner answers 404 (anyone else would answer 421)
      const byPath = await call(proxy(`/pools/${id}/quantiles?p=5`));
      const byBody = await call(proxy('/query'), 'POST', `{"poolId":${id},"percentile":5}`);
      for (const reply of [byPath, byBody]) {
        if (expected.has(id)) expect(reply.status).toBe(200);
        else expect(reply.json.error, `pool ${id}`).toBe('pool_not_found');
        expect(reply.headers.get('x-poolq-bucket'), `pool ${id}`).toBe(oracle);
      }
    });
  });

  it('answers 421 from a non-owner for every endpoint that names a pool, and changes nothing', async () => {
    const before = await Promise.all(shardNames().map(status));
    const sample = poolIds.slice(0, 30);
    for (const poolId of sample) {
      const other = shardNames().find((name) => name !== ownerOf(poolId))!;
      const url = shard(other);
      const replies = [
        await call(url('/add'), 'POST', { poolId, poolValues: [9] }),
        await call(url(`/pools/${poolId}/values`), 'POST', '[9]'),
        await call(url('/query'), 'POST', { poolId, percentile: 50 }),
        await call(url(`/pools/${poolId}`)),
        await call(url(`/pools/${poolId}/quantiles?p=50`)),
        await call(url(`/pools/${poolId}`), 'DELETE'),
      ];
      for (const reply of replies) {
        expect(reply.status).toBe(421);
        expect(reply.json.error).toBe('misdirected');
        expect(reply.json.message).toContain(`"${ownerOf(poolId)}" owns`);
      }
    }
    expect(await Promise.all(shardNames().map(status))).toEqual(before);
    for (const poolId of sample) expect((await call(proxy(`/pools/${poolId}`))).json.count).toBe(5);
  });

  it('routes binary bodies by path and imports by ?poolId=; /batch and /ws reach one shard, which refuses (421) any pool it does not own', async () => {
    const name = 'shard-2';
    const mine = poolIds.filter((id) => ownerOf(id) === name).slice(0, 3);
    const other = poolIds.find((id) => ownerOf(id) !== name)!;
    const before = await Promise.all(shardNames().map(status));

    // raw float64 bodies on /pools/{poolId}/values are routed by their path like JSON ones
    const bytes = new Float64Array([10, 20]);
    const binary = await fetch(proxy(`/pools/${mine[0]}/values`), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(binary.status).toBe(200);
    expect(await binary.json()).toEqual({ status: 'appended', count: expected.get(mine[0])! + 2 });
    expected.set(mine[0], expected.get(mine[0])! + 2);

    // an import names its pool in the query string, and the proxy routes it by that; the job lives on the owner
    const job = await call(proxy(`/imports?poolId=${mine[2]}&format=csv`), 'POST', '1\n2\n3\n');
    expect(job.status).toBe(202);
    expect(job.headers.get('x-poolq-shard')).toBe(name);
    for (let state = job.json.state; state !== 'done';) {
      expect(state).not.toBe('failed');
      await sleep(20);
      state = (await call(proxy(`/shards/${name}/imports/${job.json.jobId}`))).json.state;
    }
    expected.set(mine[2], expected.get(mine[2])! + 3);

    // a batch is one request, so it reaches one shard: all of its pools must be that shard's
    const batch = (ids: number[]) => ids.map((poolId) => JSON.stringify({ poolId, poolValues: [3] })).join('\n') + '\n';
    const mixed = await call(proxy(`/shards/${name}/batch`), 'POST', batch([...mine, other]));
    expect(mixed.status).toBe(421);
    expect(mixed.json.error).toBe('misdirected');
    const own = await call(proxy(`/shards/${name}/batch`), 'POST', batch(mine));
    expect(own.json).toEqual({ pools: 3, values: 3 });
    for (const id of mine) expected.set(id, expected.get(id)! + 1);

    // /ws likewise: a socket to one shard, through the proxy's /shards/<name>/ws
    const socket = await PoolqSocket.connect({ url: `${proxy(`/shards/${name}/ws`).replace('http', 'ws')}`, reconnect: false });
    try {
      expect(await socket.add(mine[1], [4])).toMatchObject({ created: false, count: expected.get(mine[1])! + 1 });
      expected.set(mine[1], expected.get(mine[1])! + 1);
      expect((await socket.query(mine[1], [100])).quantiles).toEqual([5]);
      for (const request of [() => socket.add(other, [4]), () => socket.query(other, [50])]) {
        await expect(request()).rejects.toMatchObject({ code: 'misdirected' });
      }
    } finally {
      await socket.close();
    }
    const after = await Promise.all(shardNames().map(status));
    after.forEach((s, i) => {
      expect(s.storedPools).toBe(before[i].storedPools);
      expect(s.storedValues - before[i].storedValues).toBe(s.shard === name ? 2 + 3 + 3 + 1 : 0);
    });
  });

  it('serves every other pool while one shard is SIGKILLed, then brings back every acknowledged value', async () => {
    const victim = 'shard-1';
    const victimPools = poolIds.filter((id) => ownerOf(id) === victim);
    const livePools = poolIds.filter((id) => ownerOf(id) !== victim);
    const othersBefore = await Promise.all(
      shardNames()
        .filter((n) => n !== victim)
        .map(status),
    );

    // appends to the victim's pools are in flight when it dies
    let stop = false;
    const ambiguous = new Map<number, number>();
    const stream = inParallel(victimPools.slice(0, 8), 8, async (poolId) => {
      while (!stop) {
        // cut off by the kill: HAProxy answers 502, or closes the connection without a status
        // when the request went out on a reused server connection (so the client decides)
        const reply = await call(proxy(`/pools/${poolId}/values`), 'POST', '[7]').catch(() => ({ status: 0 }) as Reply);
        if (reply.status === 200) expected.set(poolId, expected.get(poolId)! + 1);
        else if (reply.status === 502 || reply.status === 0) ambiguous.set(poolId, (ambiguous.get(poolId) ?? 0) + 1);
        else {
          expect(reply.status).toBe(503);
          await sleep(20);
        }
      }
    });
    await sleep(300);
    await cluster.killShard(victim);
    await sleep(300);

    for (const poolId of victimPools.slice(0, 20)) {
      for (const reply of [
        await call(proxy('/query'), 'POST', { poolId, percentile: 50 }),
        await call(proxy(`/pools/${poolId}`)),
        await call(proxy('/add'), 'POST', { poolId, poolValues: [1] }),
      ]) {
        expect(reply.status).toBe(503);
        expect(reply.json.error).toBe('unavailable');
        expect(reply.headers.get('retry-after')).toBe('1');
      }
    }
    await inParallel(livePools, 16, async (poolId) => {
      const add = await call(proxy('/add'), 'POST', { poolId, poolValues: [6] });
      expect(add.status).toBe(200);
      expected.set(poolId, expected.get(poolId)! + 1);
      expect((await call(proxy('/query'), 'POST', { poolId, percentile: 0 })).json.count).toBe(expected.get(poolId));
    });
    stop = true;
    await stream;
    // nothing moved: the survivors hold only what they held, plus the appends they acknowledged
    const othersAfter = await Promise.all(
      shardNames()
        .filter((n) => n !== victim)
        .map(status),
    );
    othersAfter.forEach((after, i) => {
      expect(after.storedPools).toBe(othersBefore[i].storedPools);
      expect(after.storedValues).toBe(othersBefore[i].storedValues + livePools.filter((id) => ownerOf(id) === after.shard).length);
    });

    const restarted = await cluster.startShard(victim);
    expect(restarted.readyMs).toBeLessThan(20_000);
    // the proxy sees it ready within its health-check interval (500 ms while down)
    const deadline = Date.now() + 5000;
    while ((await call(proxy(`/pools/${victimPools[0]}`))).status !== 200) {
      expect(Date.now()).toBeLessThan(deadline);
      await sleep(50);
    }
    await inParallel(victimPools, 16, async (poolId) => {
      const count = (await call(proxy(`/pools/${poolId}`))).json.count as number;
      // acknowledged appends are all there; one cut off by the kill may or may not be
      expect(count).toBeGreaterThanOrEqual(expected.get(poolId)!);
      expect(count).toBeLessThanOrEqual(expected.get(poolId)! + (ambiguous.get(poolId) ?? 0));
      expected.set(poolId, count);
    });
  });

  it('moves a bucket to another shard under a stream of appends: exact count on the new owner, nothing on the old', async () => {
    const from = 'shard-0';
    const to = 'shard-2';
    const bucket = bucketOf(poolIds.find((id) => ownerOf(id) === from && id < 2 ** 40)!);
    // a few more pools in that bucket, created through the proxy
    const pools = [...poolIds.filter((id) => bucketOf(id) === bucket)];
    for (let k = 1; pools.length < 6; k++) {
      const poolId = bucket + BUCKET_COUNT * 1_000_003 * k;
      if (expected.has(poolId)) continue;
      expect((await call(proxy('/add'), 'POST', { poolId, poolValues: [1] })).status).toBe(200);
      expected.set(poolId, 1);
      pools.push(poolId);
    }

    let stop = false;
    let refused = 0;
    const stream = inParallel([...pools, ...pools], 12, async (poolId) => {
      while (!stop) {
        const reply = await call(proxy('/add'), 'POST', { poolId, poolValues: [2.5] });
        if (reply.status === 200) expected.set(poolId, expected.get(poolId)! + 1);
        else {
          expect(reply.status, JSON.stringify(reply.json)).toBe(503);
          expect(reply.headers.get('retry-after')).toBe('1');
          refused++;
          await sleep(25);
        }
      }
    });
    await sleep(500);
    const report = await cluster.moveBuckets([bucket], to);
    await sleep(500);
    stop = true;
    await stream;

    expect(report.moved).toEqual([{ bucket, from, pools: pools.length, values: expect.any(Number) }]);
    expect(refused).toBeGreaterThan(0); // the stream did hit the move
    expect(ownerOf(pools[0])).toBe(to);
    for (const poolId of pools) {
      const direct = await call(shard(to)(`/pools/${poolId}`));
      expect(direct.json.count, `pool ${poolId}`).toBe(expected.get(poolId));
      expect((await call(proxy('/query'), 'POST', { poolId, percentile: 50 })).json.count).toBe(expected.get(poolId));
      expect((await call(shard(from)(`/pools/${poolId}`))).status).toBe(421);
    }
    const old = (await call(shard(from)(`/cluster/buckets/${bucket}`))).json;
    expect(old).toMatchObject({ bucket, owner: to, owned: false, moving: null, pools: 0, values: 0 });
    const fromStatus = await status(from);
    expect(fromStatus.storedPools).toBe(fromStatus.pools);
    const all = await Promise.all(shardNames().map(status));
    expect(all.map((s) => s.epoch)).toEqual([2, 2, 2]);
    expect(all.reduce((n, s) => n + s.values, 0)).toBe([...expected.values()].reduce((a, b) => a + b, 0));
  });
});
