// Every pool of a cluster, in ascending poolId order: each shard lists the
// pools it owns (GET /pools, pages of 1000), and the lists are merged. A pool
// appears once even while its bucket moves, because a shard lists only what the
// map it runs with gives it.

import type { PoolPage } from '../../core/engine.js';
import type { ShardMap } from '../../core/shard-map.js';
import { shardClient, type ShardClient } from './admin-client.js';

export interface ClusterPool {
  poolId: number;
  count: number;
  shard: string;
}

const PAGE = 1000;

async function* shardPools(client: ShardClient): AsyncGenerator<ClusterPool> {
  let after: number | null = null;
  for (;;) {
    const query: string = after === null ? `?limit=${PAGE}` : `?limit=${PAGE}&after=${after}`;
    const page: PoolPage = await client.json<PoolPage>('GET', `/pools${query}`);
    for (const pool of page.pools) yield { ...pool, shard: client.name };
    if (page.next === null) return;
    after = page.next;
  }
}

export async function* listClusterPools(map: ShardMap, authToken: string | null): AsyncGenerator<ClusterPool> {
  const streams = [...map.shards].map(([name, info]) => shardPools(shardClient(name, info.address, authToken)));
  const heads = await Promise.all(streams.map((s) => s.next()));
  for (;;) {
    let best = -1;
    heads.forEach((head, i) => {
      if (!head.done && (best < 0 || head.value.poolId < (heads[best].value as ClusterPool).poolId)) best = i;
    });
    if (best < 0) return;
    yield heads[best].value as ClusterPool;
    heads[best] = await streams[best].next();
  }
}
