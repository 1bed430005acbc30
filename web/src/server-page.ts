// The server page: requests and latency by route, read from GET /metrics every
// two seconds (requests/s from the difference between two reads), and the
// store's gauges.

import { metricsText } from './api.js';
import { formatNumber, h } from './dom.js';
import { RatePlot } from './plots.js';
import { bucketQuantile, parseMetrics, type Sample } from './prometheus.js';

const POLL_MS = 2000;
const REQUESTS = 'poolq_http_requests_total';
const DURATION = 'poolq_http_request_duration_seconds';
const GAUGES: [string, string][] = [
  ['poolq_pools', 'pools'],
  ['poolq_values', 'values'],
  ['poolq_sorted_runs', 'sorted runs'],
  ['poolq_pending_commits', 'appends waiting for fdatasync'],
  ['poolq_wal_bytes', 'log bytes since the last snapshot'],
  ['poolq_snapshot_age_seconds', 'seconds since the last snapshot'],
  ['process_resident_memory_bytes', 'resident memory (bytes)'],
  ['nodejs_eventloop_lag_p99_seconds', 'event-loop delay p99 (s)'],
];

interface RouteRow {
  requests: number;
  errors: number;
  sum: number;
  count: number;
  buckets: { le: number; count: number }[];
}

function byRoute(samples: Sample[]): Map<string, RouteRow> {
  const routes = new Map<string, RouteRow>();
  const row = (route: string): RouteRow => {
    let r = routes.get(route);
    if (r === undefined) routes.set(route, (r = { requests: 0, errors: 0, sum: 0, count: 0, buckets: [] }));
    return r;
  };
  for (const s of samples) {
    const route = s.labels.route;
    if (route === undefined) continue;
    if (s.name === REQUESTS) {
      row(route).requests += s.value;
      if (Number(s.labels.status) >= 400) row(route).errors += s.value;
    } else if (s.name === `${DURATION}_bucket`)
      row(route).buckets.push({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value });
    else if (s.name === `${DURATION}_sum`) row(route).sum = s.value;
    else if (s.name === `${DURATION}_count`) row(route).count = s.value;
  }
  return routes;
}

function ms(seconds: number): string {
  return Number.isNaN(seconds) ? '–' : `${(seconds * 1000).toPrecision(3)} ms`;
}

export function showServer(view: HTMLElement): () => void {
  const routesTable = h('table', { 'data-testid': 'route-table' });
  const gaugesTable = h('table', { 'data-testid': 'gauge-table' });
  const rateBox = h('div', { class: 'plot' });
  const error = h('p', { class: 'error' });
  view.replaceChildren(
    h('h1', {}, 'Server'),
    rateBox,
    h('h2', {}, 'Requests by route'),
    routesTable,
    h('h2', {}, 'Store'),
    gaugesTable,
    error,
  );
  const rate = new RatePlot(rateBox, 'requests/s');
  let previous: { at: number; total: number } | null = null;

  async function refresh(): Promise<void> {
    try {
      const samples = parseMetrics(await metricsText());
      const routes = byRoute(samples);
      const total = [...routes.values()].reduce((sum, r) => sum + r.requests, 0);
      const now = Date.now() / 1000;
      if (previous !== null) rate.push(now, (total - previous.total) / (now - previous.at));
      previous = { at: now, total };
      const rows = [...routes.entries()]
        .sort((a, b) => b[1].requests - a[1].requests)
        .map(([route, r]) =>
          h(
            'tr',
            {},
            h('td', {}, route),
            h('td', { class: 'num' }, formatNumber(r.requests)),
            h('td', { class: 'num' }, formatNumber(r.errors)),
            h('td', { class: 'num' }, ms(r.count > 0 ? r.sum / r.count : NaN)),
            h('td', { class: 'num' }, ms(bucketQuantile(0.5, r.buckets))),
            h('td', { class: 'num' }, ms(bucketQuantile(0.99, r.buckets))),
          ),
        );
      routesTable.replaceChildren(
        h(
          'thead',
          {},
          h('tr', {}, ...['route', 'requests', '4xx/5xx', 'mean', 'p50', 'p99'].map((t, i) => h('th', i === 0 ? {} : { class: 'num' }, t))),
        ),
        h('tbody', {}, ...rows),
      );
      const values = new Map(samples.filter((s) => Object.keys(s.labels).length === 0).map((s) => [s.name, s.value]));
      gaugesTable.replaceChildren(
        ...GAUGES.filter(([name]) => values.has(name)).map(([name, label]) =>
          h('tr', {}, h('td', {}, label), h('td', { class: 'num' }, formatNumber(values.get(name)!))),
        ),
      );
      error.textContent = '';
    } catch (err) {
      error.textContent = `metrics unavailable: ${(err as Error).message}`;
    }
  }
  void refresh();
  const timer = setInterval(() => void refresh(), POLL_MS);
  return () => clearInterval(timer);
}
