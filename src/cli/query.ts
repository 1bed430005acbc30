// `poolq query ID -p 50,99,99.9 [--method m]` and `poolq stats`: one table each.

import { parseMetrics } from '../../web/src/prometheus.js';
import { getJson, getText, type ServerOptions } from './http.js';

interface PoolQuantiles {
  poolId: number;
  count: number;
  method: string;
  quantiles: { percentile: number; value: number }[];
}

export async function query(poolId: string, percentiles: string, method: string, options: ServerOptions): Promise<void> {
  const q = await getJson<PoolQuantiles>(
    options,
    `pools/${encodeURIComponent(poolId)}/quantiles?p=${encodeURIComponent(percentiles)}&method=${encodeURIComponent(method)}`,
  );
  console.log(`pool ${q.poolId}: ${q.count} values, method ${q.method}`);
  for (const { percentile, value } of q.quantiles) console.log(`  p${String(percentile).padEnd(8)} ${Object.is(value, -0) ? '-0' : value}`);
}

const GAUGES = [
  'poolq_pools',
  'poolq_values',
  'poolq_sorted_runs',
  'poolq_pending_commits',
  'poolq_wal_bytes',
  'process_resident_memory_bytes',
];

export async function stats(options: ServerOptions): Promise<void> {
  const samples = parseMetrics(await getText(options, 'metrics'));
  for (const name of GAUGES) {
    const sample = samples.find((s) => s.name === name);
    if (sample !== undefined) console.log(`${name.padEnd(32)} ${sample.value}`);
  }
  const requests = new Map<string, number>();
  for (const s of samples)
    if (s.name === 'poolq_http_requests_total') requests.set(s.labels.route, (requests.get(s.labels.route) ?? 0) + s.value);
  const latency = new Map<string, { sum: number; count: number }>();
  for (const s of samples) {
    if (s.name !== 'poolq_http_request_duration_seconds_sum' && s.name !== 'poolq_http_request_duration_seconds_count') continue;
    const entry = latency.get(s.labels.route) ?? { sum: 0, count: 0 };
    if (s.name.endsWith('_sum')) entry.sum = s.value;
    else entry.count = s.value;
    latency.set(s.labels.route, entry);
  }
  console.log('requests by route (count, mean latency):');
  for (const [route, count] of [...requests].sort((a, b) => b[1] - a[1])) {
    const l = latency.get(route);
    const mean = l !== undefined && l.count > 0 ? `${((1000 * l.sum) / l.count).toFixed(3)} ms` : '-';
    console.log(`  ${route.padEnd(36)} ${String(count).padStart(10)}  ${mean}`);
  }
}
