// One cluster instance as an operator meets it over HTTP, without a proxy: its
// start-up checks of --shard-map/--shard-name, the /cluster endpoints, the
// steps of a bucket move done by hand between two real servers (bit-for-bit
// answers after the move, an import that survives SIGKILL), and every refusal
// that keeps a step from touching live data.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignBuckets, evenShardMap, formatShardMap, type ShardMap } from '../src/core/shard-map.js';
import { PoolqSocket } from '../src/client/ws-client.js';
import { MAIN, startServer, tempDataDir, type ServerProcess } from './helpers/server-process.js';

interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a reply's shape is what the assertions check
  json: any;
  headers: Headers;
  bytes: Uint8Array;
}

async function call(url: string, method = 'GET', body?: string | Uint8Array, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, { method, body, headers });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const isJson = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return {
    status: res.status,
    json: isJson && bytes.length > 0 ? JSON.parse(Buffer.from(bytes).toString()) : null,
    headers: res.headers,
    bytes,
  };
}

function runToExit(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', tempDataDir(), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    proc.on('exit', (code) => resolve({ code, output }));
  });
}

/** Pools of bucket 5 (owned by shard a in the first map), values chosen to catch any bit lost on the way. */
const POOLS: Record<number, number[]> = {
  5: [1, -0, 0, 2.5, 1e308, -1e-308, 3],
  [5 + 4096]: [42],
  [5 + 4096 * 123456789]: Array.from({ length: 3000 }, (_, i) => Math.sin(i) * 1e6),
};
const PERCENTILES = 'p=0,0.1,25,50,99.9,100';
const WINDOWED = 5 + 4096 * 7;

describe('a cluster instance, by hand', () => {
  let dir: string;
  let mapPath: string;
  let map: ShardMap;
  let a: ServerProcess;
  let b: ServerProcess;
  const writeMap = (m: ShardMap) => writeFileSync(mapPath, formatShardMap(m));

  beforeAll(async () => {
    dir = tempDataDir('poolq-cluster-admin-');
    mapPath = path.join(dir, 'shard-map.json');
    map = evenShardMap([
      { name: 'a', address: '127.0.0.1:1' },
      { name: 'b', address: '127.0.0.1:2' },
    ]);
    writeMap(map);
    [a, b] = await Promise.all(['a', 'b'].map((name) => startServer(['--shard-map', mapPath, '--shard-name', name, '--workers', '0'])));
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('refuses to start without a usable map or with a name the map lacks', async () => {
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{"format": "poolq-shard-map/1", "epoch": 1}');
    const [noMap, badName, unknown, missing, invalid] = await Promise.all([
      runToExit(['--shard-name', 'a']),
      runToExit(['--shard-map', mapPath, '--shard-name', 'Shard_A']),
      runToExit(['--shard-map', mapPath, '--shard-name', 'c']),
      runToExit(['--shard-map', path.join(dir, 'nope.json'), '--shard-name', 'a']),
      runToExit(['--shard-map', broken, '--shard-name', 'a']),
    ]);
    expect(noMap.code).toBe(2);
    expect(noMap.output).toContain('--shard-map / SHARD_MAP must be a shard-map file when --shard-name is given');
    expect(badName.code).toBe(2);
    expect(badName.output).toContain('--shard-name / SHARD_NAME must be a shard name');
    expect(unknown.code).toBe(2);
    expect(unknown.output).toContain('has no shard named "c"; it names a, b');
    expect(missing.code).toBe(2);
    expect(missing.output).toContain('cannot read the shard map');
    expect(invalid.code).toBe(2);
    expect(invalid.output).toContain('shard map: buckets must be 4096');
  });

  it('reports its shard, answers 400 for a bad bucket and 405 for a wrong method', async () => {
    const status = await call(a.url('/cluster'));
    expect(status.json).toEqual({
      shard: 'a',
      epoch: 1,
      ownedBuckets: 2048,
      movingBuckets: [],
      pools: 0,
      values: 0,
      storedPools: 0,
      storedValues: 0,
    });
    for (const bad of ['x', '4096', '-1', '00001']) {
      const reply = await call(a.url(`/cluster/buckets/${bad}`));
      expect(reply.status).toBe(400);
      expect(reply.json).toMatchObject({ error: 'invalid_request', field: 'bucket' });
    }
    const wrong = await call(a.url('/cluster/buckets/5/export'), 'POST');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');
  });

  it('moves bucket 5 from a to b step by step, with every answer the same bit for bit afterwards', async () => {
    // one pool with a retention window and heavily repeated values (stored as counted runs)
    const repeated = JSON.stringify([...Array(2500).fill(1), ...Array(1500).fill(2)]);
    expect((await call(a.url(`/pools/${WINDOWED}/values?windowSeconds=3600`), 'POST', repeated)).status).toBe(201);
    for (const [poolId, values] of Object.entries(POOLS)) {
      expect((await call(a.url('/add'), 'POST', JSON.stringify({ poolId: Number(poolId), poolValues: values }))).status).toBe(200);
    }
    const before = await Promise.all(
      [...Object.keys(POOLS), WINDOWED].map(async (id) => (await call(a.url(`/pools/${id}/quantiles?${PERCENTILES}&method=hazen`))).json),
    );

    // an export needs a bucket no write can reach
    const early = await call(a.url('/cluster/buckets/5/export'));
    expect(early.status).toBe(409);
    expect(early.json.error).toBe('conflict');
    const marked = await call(a.url('/cluster/buckets/5/moving'), 'PUT');
    expect(marked.json).toMatchObject({ bucket: 5, owner: 'a', owned: true, pools: 4, values: 7008 });
    const token = marked.json.moving as string;

    // while marked: appends and deletes refused with Retry-After, queries served
    const refused = await call(a.url('/add'), 'POST', '{"poolId": 5, "poolValues": [1]}');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await call(a.url('/pools/5'), 'DELETE')).status).toBe(503);
    expect((await call(a.url('/pools/4101/values'), 'POST', '[1]')).status).toBe(503);
    expect((await call(a.url('/query'), 'POST', '{"poolId": 5, "percentile": 50}')).json.count).toBe(7);
    expect((await call(a.url('/add'), 'POST', '{"poolId": 6, "poolValues": [1]}')).status).toBe(200); // other buckets are not affected
    // every write path passes the gate: a binary body, a batch touching the bucket (refused whole), a /ws add
    const binary = await call(a.url('/pools/5/values'), 'POST', new Uint8Array(new Float64Array([1]).buffer), {
      'content-type': 'application/octet-stream',
    });
    expect(binary.status).toBe(503);
    const batch = await call(a.url('/batch'), 'POST', '{"poolId": 6, "poolValues": [1]}\n{"poolId": 4101, "poolValues": [1]}\n');
    expect([batch.status, batch.json.error]).toEqual([503, 'unavailable']);
    const socket = await PoolqSocket.connect({ url: a.url('/ws').replace('http', 'ws'), reconnect: false });
    try {
      await expect(socket.add(5, [1])).rejects.toMatchObject({ code: 'unavailable' });
      expect((await socket.query(5, [50])).count).toBe(7);
    } finally {
      await socket.close();
    }
    expect((await call(a.url('/pools/6'))).json.count).toBe(1); // the refused batch applied nothing

    const exported = await call(a.url('/cluster/buckets/5/export'));
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toBe('application/octet-stream');
    expect([exported.headers.get('x-poolq-pools'), exported.headers.get('x-poolq-values')]).toEqual(['4', '7008']);

    // refusals that protect live data and bad input
    expect((await call(a.url('/cluster/buckets/5/import'), 'POST', exported.bytes)).status).toBe(409); // a owns 5
    expect((await call(b.url('/cluster/buckets/6/import'), 'POST', exported.bytes)).json).toMatchObject({
      error: 'invalid_request',
      field: 'body',
    });
    const corrupt = exported.bytes.slice();
    corrupt[100] ^= 1;
    const badCrc = await call(b.url('/cluster/buckets/5/import'), 'POST', corrupt);
    expect(badCrc.status).toBe(400);
    expect(badCrc.json.message).toContain('CRC mismatch');
    expect((await call(b.url('/cluster/buckets/5/import'), 'POST', 'not an export')).status).toBe(400);
    expect((await call(b.url('/cluster'))).json.storedPools).toBe(0);

    // import twice (a retry replaces, never adds), then SIGKILL: the import was acknowledged, so it is durable
    for (let i = 0; i < 2; i++) {
      const imported = await call(b.url('/cluster/buckets/5/import'), 'POST', exported.bytes);
      expect(imported.json).toMatchObject({ bucket: 5, owner: 'a', owned: false, pools: 4, values: 7008 });
    }
    await b.kill();
    b = await startServer(['--shard-map', mapPath, '--shard-name', 'b', '--workers', '0'], { dataDir: b.dataDir });
    expect((await call(b.url('/cluster/buckets/5'))).json).toMatchObject({ pools: 4, values: 7008 });
    // not b's yet: it serves none of it, and does not list it
    expect((await call(b.url('/pools/5'))).status).toBe(421);
    expect((await call(b.url('/pools'))).json.pools).toEqual([]);

    // switch: b first (SIGHUP), then a (endpoint); a cannot delete what it still owns
    expect((await call(a.url('/cluster/buckets/5/pools'), 'DELETE')).status).toBe(409);
    writeMap(assignBuckets(map, [5], 'b'));
    b.proc.kill('SIGHUP');
    for (let i = 0; (await call(b.url('/cluster'))).json.epoch !== 2; i++) {
      expect(i).toBeLessThan(100);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await call(a.url('/cluster/shard-map/reload'), 'POST')).json).toMatchObject({ shard: 'a', epoch: 2, ownedBuckets: 2047 });
    const after = await Promise.all(
      [...Object.keys(POOLS), WINDOWED].map(async (id) => (await call(b.url(`/pools/${id}/quantiles?${PERCENTILES}&method=hazen`))).json),
    );
    expect(after).toEqual(before);
    expect(JSON.stringify(after)).toBe(JSON.stringify(before)); // -0 stays -0
    expect((await call(b.url(`/pools/${WINDOWED}`))).json).toMatchObject({ count: 4000, windowSeconds: 3600 });
    expect((await call(a.url('/pools/5'))).status).toBe(421);

    const deleted = await call(a.url('/cluster/buckets/5/pools'), 'DELETE');
    expect(deleted.json).toMatchObject({ bucket: 5, owned: false, pools: 4, values: 7008 });
    expect((await call(a.url(`/cluster/buckets/5/moving?token=${token}`), 'DELETE')).json).toMatchObject({ moving: null, pools: 0 });
    expect((await call(a.url('/cluster'))).json).toMatchObject({ pools: 1, storedPools: 1 }); // pool 6
    expect((await call(b.url('/add'), 'POST', '{"poolId": 5, "poolValues": [7]}')).json).toBe('Appended');
    map = assignBuckets(map, [5], 'b');
  });

  it('answers a query over several pools only when it owns every one of them', async () => {
    // b owns 5 now (previous test) and 2048…4095; a owns 6
    expect((await call(a.url('/quantiles?pools=6,4000&p=50'))).json.error).toBe('misdirected');
    expect((await call(a.url('/query'), 'POST', '{"poolIds": [6, 4000], "percentile": 50}')).status).toBe(421);
    expect((await call(b.url('/quantiles?pools=5,4101&p=50'))).status).toBe(200);
  });

  it('keeps the old map when a reload finds a broken file', async () => {
    writeFileSync(mapPath, '{"format": "poolq-shard-map/1", "epoch": 9, "buckets": 4096, "shards": {}}');
    const reply = await call(a.url('/cluster/shard-map/reload'), 'POST');
    expect(reply.status).toBe(400);
    expect(reply.json.message).toContain('shards must name at least one shard');
    expect((await call(a.url('/cluster'))).json.epoch).toBe(2);
    writeMap(map);
  });

  it('answers 404 on /cluster endpoints without --shard-map, and serves every pool', async () => {
    const plain = await startServer(['--workers', '0']);
    try {
      const reply = await call(plain.url('/cluster/buckets/5'));
      expect(reply.status).toBe(404);
      expect(reply.json).toMatchObject({ error: 'not_found', message: expect.stringContaining('without --shard-map') });
      expect((await call(plain.url('/add'), 'POST', '{"poolId": 4000, "poolValues": [1]}')).json).toBe('Inserted');
    } finally {
      await plain.stop();
    }
  });

  it('asks for the bearer token on every /cluster endpoint when --auth-token is set', async () => {
    const secured = await startServer(['--shard-map', mapPath, '--shard-name', 'a', '--auth-token', 's3cret']);
    try {
      for (const [method, p] of [
        ['GET', '/cluster'],
        ['POST', '/cluster/shard-map/reload'],
        ['GET', '/cluster/buckets/1'],
        ['PUT', '/cluster/buckets/1/moving'],
        ['GET', '/cluster/buckets/1/export'],
        ['POST', '/cluster/buckets/1/import'],
        ['DELETE', '/cluster/buckets/1/pools'],
      ]) {
        expect((await call(secured.url(p), method)).status, `${method} ${p}`).toBe(401);
      }
      expect((await call(secured.url('/cluster'), 'GET', undefined, { authorization: 'Bearer s3cret' })).json.shard).toBe('a');
    } finally {
      await secured.stop();
    }
  });
});
