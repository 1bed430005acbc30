// The poolq command line (commander): serve, import, query, stats, loadtest, cluster.
// Every command but serve talks to a running server over HTTP (--url, and
// --token for a server started with --auth-token). Commands load their
// modules when run: autocannon alone took most of a second to import.

import { Command, Option } from 'commander';
import { CliError, type ServerOptions } from './http.js';
import { serve } from './serve.js';

const program = new Command('poolq').description('Pools of numbers with exact percentile queries').showHelpAfterError();

function serverOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'server URL').env('POOLQ_URL').default('http://127.0.0.1:8000'))
    .addOption(new Option('--token <token>', 'bearer token of a server run with --auth-token').env('POOLQ_TOKEN'));
}

program
  .command('serve')
  .description('run the server (flags as in --help of the server; --import FILE --pool ID loads FILE into a new pool at start-up)')
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .action(() => serve(process.argv.slice(process.argv.indexOf('serve') + 1)));

serverOptions(
  program
    .command('import')
    .description('import a CSV, NDJSON or float64 file into a pool (all or nothing)')
    .argument('<file>')
    .option('--pool <id>', 'pool for every value (optional when rows name their pools)')
    .option('--column <column>', 'CSV value column: header name or 0-based index')
    .addOption(new Option('--format <format>', 'file format (default: from the extension)').choices(['csv', 'ndjson', 'f64']))
    .addOption(new Option('--interval-ms <ms>', 'plain progress lines this often when not on a terminal').default(1000).argParser(Number)),
).action((file: string, options: ServerOptions & { pool?: string; column?: string; format?: string; intervalMs: number }) =>
  run(async () => (await import('./import.js')).importFile(file, options)),
);

serverOptions(
  program
    .command('query')
    .description('percentiles of a pool')
    .argument('<poolId>')
    .option('-p, --percentiles <list>', 'comma-separated percentiles', '50,90,99,99.9')
    .option('--method <method>', 'numpy percentile method', 'linear'),
).action((poolId: string, options: ServerOptions & { percentiles: string; method: string }) =>
  run(async () => (await import('./query.js')).query(poolId, options.percentiles, options.method, options)),
);

serverOptions(program.command('stats').description('pools, values and requests by route, from /metrics')).action((options: ServerOptions) =>
  run(async () => (await import('./query.js')).stats(options)),
);

serverOptions(
  program
    .command('loadtest')
    .description('load the server with appends and queries; print requests/s and latency percentiles')
    .addOption(new Option('--duration <seconds>', 'how long').default(10).argParser(Number))
    .addOption(new Option('--connections <n>', 'concurrent connections').default(32).argParser(Number))
    .option('--mix <add/query>', 'percent appends / percent queries', '10/90')
    .addOption(new Option('--pools <n>', 'pools to spread requests over').default(1000).argParser(Number)),
).action((options: ServerOptions & { duration: number; connections: number; mix: string; pools: number }) =>
  run(async () => (await import('./loadtest.js')).loadtest(options)),
);

program
  .command('cluster')
  .description('run a local cluster (up --shards 3) and operate one by its shard map: status, pools, move, drain, … (docs/cluster.md)')
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .action(() =>
    run(async () => (await import('./cluster/commands.js')).clusterCommand(process.argv.slice(process.argv.indexOf('cluster') + 1))),
  );

async function run(action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch (err) {
    console.error(`poolq: ${err instanceof CliError ? err.message : err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

await program.parseAsync(process.argv);
