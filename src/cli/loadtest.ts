// `poolq loadtest [--duration s] [--connections n] [--mix add/query]`: a
// built-in load test with autocannon against a running server. Each request
// is an append of 10 values to one of 1000 pools or a p99 query of one of
// them, drawn with the --mix odds; the pools are filled first so that every
// query has data. Prints requests/s and latency percentiles.

import autocannon from 'autocannon';
import { CliError, headersFor, urlOf, type ServerOptions } from './http.js';

export interface LoadtestOptions extends ServerOptions {
  duration: number;
  connections: number;
  /** "add/query" percentages, e.g. "10/90". */
  mix: string;
  pools: number;
}

export function parseMix(mix: string): number {
  const m = /^(\d{1,3})\/(\d{1,3})$/.exec(mix);
  if (m === null || Number(m[1]) + Number(m[2]) !== 100)
    throw new CliError(`--mix must be add/query percentages adding up to 100, e.g. 10/90 (got ${mix})`);
  return Number(m[1]) / 100;
}

function addBody(poolId: number): string {
  const values = Array.from({ length: 10 }, () => Math.round(Math.random() * 1e6) / 1e3);
  return `{"poolId":${poolId},"poolValues":[${values.join(',')}]}`;
}

export async function loadtest(options: LoadtestOptions): Promise<autocannon.Result> {
  const addShare = parseMix(options.mix);
  const headers = headersFor(options, { 'content-type': 'application/json' });
  for (let poolId = 0; poolId < options.pools; poolId++) {
    const res = await fetch(urlOf(options, 'add'), { method: 'POST', headers, body: addBody(poolId) });
    if (!res.ok) throw new CliError(`filling pool ${poolId} failed: ${res.status} ${await res.text()}`);
  }
  const pick = (): number => Math.floor(Math.random() * options.pools);
  const result = await autocannon({
    url: urlOf(options, ''),
    connections: options.connections,
    duration: options.duration,
    headers,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) =>
          Math.random() < addShare
            ? { ...request, path: '/add', body: addBody(pick()) }
            : { ...request, path: '/query', body: `{"poolId":${pick()},"percentile":99}` },
      },
    ],
  });
  const l = result.latency;
  console.log(`${options.connections} connections, ${options.duration} s, mix add/query ${options.mix}, ${options.pools} pools`);
  console.log(
    `requests/s  mean ${Math.round(result.requests.average)}  (total ${result.requests.total}, non-2xx ${result.non2xx}, errors ${result.errors})`,
  );
  console.log(`latency ms  p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p99_9}  max ${l.max}`);
  return result;
}
