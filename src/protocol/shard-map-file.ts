// Reading the --shard-map file. The same file (or a copy with the same bytes)
// is given to every instance and turned into the proxy's map (src/cli/cluster),
// so all of them agree on every bucket's owner; docs/cluster.md has the format.

import { readFile } from 'node:fs/promises';
import { parseShardMap, type ShardMap } from '../core/shard-map.js';

export async function readShardMapFile(path: string): Promise<ShardMap> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the shard map ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseShardMap(text);
}
