// The service's resident memory per stored value, as a new user meets it:
// `npm start`'s allocator setting, --fsync never, one pool filled by a client
// with JSON bodies of 10^5 values — random doubles (1.9 MB bodies, parsed on
// a worker) and integers 0..9999 (0.5 MB, parsed on the event loop). RSS is
// read from /proc/PID/status before the first body and 3 s after the last,
// beside the engine's own figures from /metrics.
//
//   npm run bench:memory                      1e7 values of each kind
//   npm run bench:memory -- --values 1e8 --data integers --fsync always

import { readFileSync, rmSync } from 'node:fs';
import { SERVER_ENV, serverEnvText } from '../src/server-env.js';
import { startServer } from '../test/helpers/server-process.js';
import { seededRng } from './lib/data.js';
import { progress } from './lib/engine-bench.js';
import { printTable, writeResults, type Row } from './lib/report.js';

const BODY_VALUES = 100_000;
const SETTLE_MS = 3000;

type Data = 'doubles' | 'integers';

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

function metric(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? Number.NaN : Number(match[1]);
}

async function measure(data: Data, values: number, fsync: string): Promise<Row> {
  // startServer adds SERVER_ENV, the environment npm start gives the server.
  const server = await startServer(['--fsync', fsync]);
  try {
    const port = server.port;
    const pid = server.proc.pid!;
    const url = `http://127.0.0.1:${port}`;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = rssBytes(pid);
    const rng = seededRng(values);
    const body = new Array<number>(BODY_VALUES);
    const started = performance.now();
    for (let done = 0; done < values; done += BODY_VALUES) {
      for (let i = 0; i < BODY_VALUES; i++) body[i] = data === 'doubles' ? rng() * 1000 - 500 : Math.floor(rng() * 10_000);
      const response = await fetch(`${url}/add`, { method: 'POST', body: JSON.stringify({ poolId: 1, poolValues: body }) });
      if (response.status !== 200) throw new Error(`append answered ${response.status}: ${await response.text()}`);
      await response.text();
    }
    const appendS = (performance.now() - started) / 1000;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const after = rssBytes(pid);
    const text = await (await fetch(`${url}/metrics`)).text();
    const perValue = (bytes: number): number => Math.round((bytes / values) * 100) / 100;
    return {
      data: `${values.toExponential(0).replace('+', '')} ${data}`,
      fsync,
      'append s': Math.round(appendS * 10) / 10,
      'RSS growth B/value': perValue(after - before),
      'run arrays B/value': perValue(metric(text, 'poolq_run_buffer_bytes')),
      'JS heap MiB': Math.round(metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20),
      'external MiB': Math.round(metric(text, 'nodejs_external_memory_bytes') / 2 ** 20),
      'RSS before MiB': Math.round(before / 2 ** 20),
      'RSS after MiB': Math.round(after / 2 ** 20),
      runs: metric(text, 'poolq_sorted_runs'),
      'counted runs': metric(text, 'poolq_counted_runs'),
    };
  } finally {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
}

/** `--values N`, `--data doubles|integers`, `--fsync MODE` (each `--name value`). */
function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

async function main(): Promise<void> {
  const values = Number(option('values') ?? 1e7);
  const fsync = option('fsync') ?? 'never';
  const only = option('data');
  const kinds: Data[] = only === 'doubles' || only === 'integers' ? [only] : ['doubles', 'integers'];
  const rows: Row[] = [];
  for (const data of kinds) {
    progress(`  server memory: ${values} ${data}, --fsync ${fsync} …`);
    rows.push(await measure(data, values, fsync));
  }
  printTable(
    `Service RSS per stored value (${serverEnvText()}, bodies of ${BODY_VALUES} values, read ${SETTLE_MS / 1000} s after the last)`,
    rows,
  );
  console.log('  • Target: RSS growth ≤ 8.5 B/value for 1e7 random doubles; ≤ 1 B/value for 1e8 integers over 1e4 distinct.');
  console.log(
    '  • "run arrays" is poolq_run_buffer_bytes ÷ values: what the runs themselves hold (8 B/value plain, 16 B per distinct value counted).',
  );
  writeResults('server-memory', { env: SERVER_ENV, rows });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
