// Rate-paced latency run in a process of its own (so the bench's own work and
// heap cannot pause it). `npm run bench:http` starts it for its "50 % of peak"
// rows; it can also be run by hand:
//   node dist/bench/http-paced.js --port P --rate 20000 [--mode add|query|mix|echo-add|echo-query|get]
//     [--duration-ms 5000] [--warmup-ms 1000] [--connections 64] [--pools 1000] [--values 10] [--query-pct 90]
// Prints one line: PACED_JSON {...} (see PacedResult in lib/http-paced.ts).
// bench:http runs it with --min-semi-space-size=64 --max-semi-space-size=64: the
// sender spins on setImmediate (≈ 50 MB/s of garbage), and with the default young
// generation the ~15 scavenges a second showed up in the client's own p99.
//
// Requests come from a pool of 16384 raw requests built before the run (random
// poolIds and values, as in bench/wrk/poolq.lua), one picked at random per send,
// so the sender allocates nothing per request.

import { rawRequest, type Mode } from './lib/http-loadgen.js';
import { runPaced } from './lib/http-paced.js';

const MODES: Mode[] = ['add', 'query', 'mix', 'echo-add', 'echo-query', 'get'];

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`http-paced: --${name} is required`);
  return v;
}

let sink: unknown;

/**
 * Allocates ~400 MB of short-lived objects before the run, so the young
 * generation's pages are faulted in and the request pool is promoted now:
 * with a 64 MiB semi-space the first scavenges otherwise took 40–55 ms (page
 * faults on fresh to-space), right inside the measured window.
 */
function preTouchYoungGeneration(): void {
  for (let i = 0; i < 8_000_000; i++) sink = { i, next: sink === undefined ? null : 1 };
  sink = undefined;
}

async function main(): Promise<void> {
  const port = Number(arg('port'));
  const rate = Number(arg('rate'));
  const mode = arg('mode', 'query') as Mode;
  if (!MODES.includes(mode)) throw new Error(`http-paced: unknown --mode ${mode}`);
  const shape = { pools: Number(arg('pools', '1000')), values: Number(arg('values', '10')), queryPct: Number(arg('query-pct', '90')) };
  const pool = Array.from({ length: 16384 }, () => Buffer.from(rawRequest(mode, shape, port), 'latin1'));
  preTouchYoungGeneration();
  const result = await runPaced({
    port,
    rate,
    durationMs: Number(arg('duration-ms', '5000')),
    warmupMs: Number(arg('warmup-ms', '1000')),
    connections: Number(arg('connections', '64')),
    nextRequest: () => pool[(Math.random() * pool.length) | 0],
  });
  process.stdout.write(`PACED_JSON ${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
