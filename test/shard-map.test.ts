// The ownership rule and the map file: bucketOf equals BigInt arithmetic for
// every pool id (the proxy's 64-bit `mod(4096)` is the same operation, checked
// end to end in cluster.test.ts), the file round-trips, and every malformed
// map is refused with a message naming its first problem.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addShard,
  assignBuckets,
  BUCKET_COUNT,
  bucketOf,
  bucketsOf,
  evenShardMap,
  formatShardMap,
  ownerOfPool,
  parseShardMap,
  removeShard,
  ShardMapError,
} from '../src/core/shard-map.js';
import { ShardGate } from '../src/protocol/shard-gate.js';
import { PoolqError } from '../src/core/errors.js';

const three = () =>
  evenShardMap([
    { name: 'a', address: '127.0.0.1:8001' },
    { name: 'b', address: '127.0.0.1:8002' },
    { name: 'c', address: 'poolq-2.poolq:8000' },
  ]);

describe('bucketOf', () => {
  it('is poolId mod 4096 computed exactly, for every id in 0 … 2^53-1', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }), (id) => {
        expect(bucketOf(Number(id))).toBe(Number(id % 4096n));
      }),
      { numRuns: 20_000 },
    );
    for (const id of [0, 1, 4095, 4096, 2 ** 32 - 1, 2 ** 32, 2 ** 52 + 1, 2 ** 53 - 1])
      expect(bucketOf(id)).toBe(Number(BigInt(id) % 4096n));
  });
});

describe('the shard-map file', () => {
  it('round-trips through its text and splits the buckets evenly and contiguously', () => {
    const map = three();
    expect(parseShardMap(formatShardMap(map))).toEqual(map);
    const sizes = ['a', 'b', 'c'].map((s) => bucketsOf(map, s).length);
    expect(sizes.reduce((x, y) => x + y)).toBe(BUCKET_COUNT);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(ownerOfPool(map, 0)).toBe('a');
    expect(ownerOfPool(map, 2 ** 53 - 1)).toBe('c');
  });

  it('moves buckets, adds and removes shards, each change raising the epoch', () => {
    const map = three();
    const moved = assignBuckets(map, [0, 4095], 'b');
    expect(moved.epoch).toBe(2);
    expect([moved.owners[0], moved.owners[1], moved.owners[4095]]).toEqual(['b', 'a', 'b']);
    expect(parseShardMap(formatShardMap(moved))).toEqual(moved);
    const grown = addShard(moved, 'd', '10.0.0.4:8000');
    expect(grown.epoch).toBe(3);
    expect(bucketsOf(grown, 'd')).toEqual([]);
    expect(() => removeShard(grown, 'a')).toThrow(`a still owns ${bucketsOf(grown, 'a').length} buckets`);
    expect(bucketsOf(grown, 'a').length).toBe(bucketsOf(map, 'a').length - 1);
    expect([...removeShard(grown, 'd').shards.keys()]).toEqual(['a', 'b', 'c']);
    expect(() => assignBuckets(map, [4096], 'b')).toThrow(ShardMapError);
    expect(() => assignBuckets(map, [1], 'zz')).toThrow(/no shard named "zz"/);
  });

  const base = () => JSON.parse(formatShardMap(three())) as Record<string, unknown>;
  const cases: [string, (m: Record<string, unknown>) => unknown, RegExp][] = [
    ['not JSON', () => '{', /not JSON/],
    ['wrong format', (m) => ({ ...m, format: 'other' }), /format must be "poolq-shard-map\/1"/],
    ['epoch 0', (m) => ({ ...m, epoch: 0 }), /epoch must be an integer from 1/],
    ['bucket count', (m) => ({ ...m, buckets: 1024 }), /buckets must be 4096/],
    ['no shards', (m) => ({ ...m, shards: {} }), /at least one shard/],
    ['bad shard name', (m) => ({ ...m, shards: { ...(m.shards as object), Bad_Name: { address: 'x:1' } } }), /shard name "Bad_Name"/],
    [
      'bad address',
      (m) => ({ ...m, shards: { ...(m.shards as object), a: { address: 'nohost' } } }),
      /shards.a.address must be "host:port"/,
    ],
    [
      'gap',
      (m) => ({
        ...m,
        owners: [
          { first: 0, last: 10, shard: 'a' },
          { first: 12, last: 4095, shard: 'b' },
        ],
      }),
      /owners\[1\].first must be 11/,
    ],
    [
      'overlap',
      (m) => ({
        ...m,
        owners: [
          { first: 0, last: 10, shard: 'a' },
          { first: 10, last: 4095, shard: 'b' },
        ],
      }),
      /owners\[1\].first must be 11/,
    ],
    ['short', (m) => ({ ...m, owners: [{ first: 0, last: 4000, shard: 'a' }] }), /they end at 4000/],
    [
      'unknown owner',
      (m) => ({ ...m, owners: [{ first: 0, last: 4095, shard: 'z' }] }),
      /owners\[0\].shard must be one of the shards \(a, b, c\)/,
    ],
    ['last before first', (m) => ({ ...m, owners: [{ first: 0, last: -1, shard: 'a' }] }), /owners\[0\].last must be an integer from 0/],
  ];
  it.each(cases)('refuses a map with %s', (_name, mutate, message) => {
    const mutated = mutate(base());
    const text = typeof mutated === 'string' ? mutated : JSON.stringify(mutated);
    expect(() => parseShardMap(text)).toThrow(message);
  });
});

describe('ShardGate', () => {
  const codeOf = (action: () => unknown): string | null => {
    try {
      action();
      return null;
    } catch (err) {
      return err instanceof PoolqError ? err.code : 'not a PoolqError';
    }
  };

  it('refuses pools of other shards as misdirected, and writes to a moving bucket as unavailable with Retry-After', () => {
    const gate = new ShardGate(three(), 'a');
    expect(codeOf(() => gate.checkOwner(5))).toBeNull();
    expect(codeOf(() => gate.checkOwner(4000))).toBe('misdirected');
    expect(codeOf(() => gate.admitWrite(4000))).toBe('misdirected');
    const token = gate.markMoving(5);
    expect(gate.markMoving(5)).toBe(token);
    expect(codeOf(() => gate.checkOwner(5))).toBeNull(); // reads go on
    let refusal: unknown;
    try {
      gate.admitWrite(5 + 4096);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({ code: 'unavailable', retryAfterSeconds: 1 });
    expect(() => gate.unmarkMoving(5, 'another')).toThrow(/different moving mark/);
    expect(gate.unmarkMoving(5, token)).toBe(true);
    expect(codeOf(() => gate.admitWrite(5)())).toBeNull();
  });

  it('lets an export wait for the writes admitted before the mark', async () => {
    const gate = new ShardGate(three(), 'a');
    const release1 = gate.admitWrite(7);
    const release2 = gate.admitWrite(7 + 4096);
    gate.markMoving(7);
    let settled = false;
    const waiting = gate.whenWritesSettled(7).then(() => (settled = true));
    release1();
    release1(); // a second call does nothing
    await Promise.resolve();
    expect(settled).toBe(false);
    release2();
    await waiting;
    expect(settled).toBe(true);
    expect(gate.bucketState(7)).toMatchObject({ owned: true, writesInFlight: 0 });
  });

  it('keeps its map when a reloaded one does not name it', () => {
    const gate = new ShardGate(three(), 'c');
    const other = evenShardMap([{ name: 'x', address: 'h:1' }]);
    expect(() => gate.replaceMap(other)).toThrow(/no shard named "c"/);
    expect(gate.map.epoch).toBe(1);
    gate.replaceMap(assignBuckets(gate.map, [0], 'c'));
    expect(gate.ownsBucket(0)).toBe(true);
    expect(gate.frozen(1)).toBe(true); // another shard's bucket takes no writes here
  });
});
