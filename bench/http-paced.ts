// One rate-paced latency run in a process of its own, so the bench's own work
// and heap cannot pause the sender. `npm run bench:http` starts it for its
// "50 % of peak" rows; by hand (fields as PacedJob in lib/http-scenarios.ts):
//   node dist/bench/http-paced.js '{"port":8000,"rate":20000,"mode":"query","shape":{"pools":1000,"values":10,"queryPct":90},
//     "durationS":5,"warmupS":1,"connections":64}'
// Prints `measuring` when the measured window starts, then one BENCH-RESULT line: the PacedResult
// and the client's CPU seconds in that window.
// Requests are drawn at random from 16384 built before the run, so the sender allocates nothing per request.

import { rawRequest, type PacedJob } from './lib/http-scenarios.js';
import { runPaced } from './lib/paced-client.js';
import { emitResult } from './lib/proc.js';

let sink: unknown;

/**
 * Allocates ~400 MB of short-lived objects first, so the young generation's
 * pages are faulted in and the request pool is promoted now: with a 64 MiB
 * semi-space the first scavenges otherwise took 40–55 ms inside the window.
 */
function preTouchYoungGeneration(): void {
  for (let i = 0; i < 8_000_000; i++) sink = { i, next: sink === undefined ? null : 1 };
  sink = undefined;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as PacedJob;
  const requests = Array.from({ length: 16384 }, () => rawRequest(job.mode, job.shape, job.port));
  preTouchYoungGeneration();
  let cpu0 = process.cpuUsage();
  const measuring = setTimeout(() => {
    cpu0 = process.cpuUsage();
    console.log('measuring'); // the parent starts its CPU window of the server
  }, job.warmupS * 1000);
  const result = await runPaced({
    port: job.port,
    rate: job.rate,
    durationMs: job.durationS * 1000,
    warmupMs: job.warmupS * 1000,
    connections: job.connections,
    nextRequest: () => requests[(Math.random() * requests.length) | 0],
  });
  clearTimeout(measuring);
  const cpu = process.cpuUsage(cpu0);
  emitResult({ ...result, clientCpuS: (cpu.user + cpu.system) / 1e6 });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
