// `npm run cluster -- <command>` (also `poolq cluster <command>`): run a local
// cluster and operate any cluster through its shard map. The commands are in
// src/cli/cluster/commands.ts; docs/cluster.md explains them.

import { clusterCommand, UsageError } from './cluster/commands.js';

clusterCommand(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`cluster: ${(err as Error).message}`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
