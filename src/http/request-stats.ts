// Per-request counters and latency histograms, kept in plain numbers on the
// hot path and handed to prom-client only when /metrics is scraped.
//
// Why not prom-client's own Counter.inc / Histogram.observe per request: even
// through cached label children each call hashes its labels again, ~100 times
// the cost of this bookkeeping in typed arrays (docs/performance.md). prom-client
// still owns the registry and the text format: requests_total is a prom-client Counter filled in its collect() hook,
// and the histogram is a collector object in the shape prom-client's Registry
// formats (name, help, type, get()).

import type client from 'prom-client';

/** Upper bounds (seconds) of the latency buckets; +Inf is implicit. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

class RouteStats {
  /** Requests by status code text ("200"). */
  readonly byStatus = new Map<string, number>();
  /** Non-cumulative counts; the last slot is +Inf. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export class RequestStats {
  private readonly routes = new Map<string, RouteStats>();

  /** Records one finished request. */
  observe(route: string, status: string, seconds: number): void {
    let stats = this.routes.get(route);
    if (stats === undefined) {
      stats = new RouteStats();
      this.routes.set(route, stats);
    }
    stats.byStatus.set(status, (stats.byStatus.get(status) ?? 0) + 1);
    let b = 0;
    while (b < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[b]) b++;
    stats.buckets[b]++;
    stats.sum += seconds;
    stats.count++;
  }

  /** A prom-client Counter `name{route,status}` whose value is read from these stats at scrape time. */
  registerCounter(prom: typeof client, registry: client.Registry, name: string, help: string): void {
    const routes = this.routes;
    new prom.Counter({
      name,
      help,
      labelNames: ['route', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [route, stats] of routes) for (const [status, n] of stats.byStatus) this.inc({ route, status }, n);
      },
    });
  }

  /** A histogram `name{route}` in the exposition format of a prom-client Histogram. */
  registerHistogram(registry: client.Registry, name: string, help: string): void {
    const routes = this.routes;
    const collector = {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get() {
        const values: MetricValue[] = [];
        for (const [route, stats] of routes) {
          let cumulative = 0;
          for (let b = 0; b < LATENCY_BUCKETS.length; b++) {
            cumulative += stats.buckets[b];
            values.push({ labels: { le: LATENCY_BUCKETS[b], route }, value: cumulative, metricName: `${name}_bucket` });
          }
          values.push({ labels: { le: '+Inf', route }, value: stats.count, metricName: `${name}_bucket` });
          values.push({ labels: { route }, value: stats.sum, metricName: `${name}_sum` });
          values.push({ labels: { route }, value: stats.count, metricName: `${name}_count` });
        }
        return { name, help, type: 'histogram', values, aggregator: 'sum' };
      },
      reset() {
        routes.clear();
      },
    };
    registry.registerMetric(collector as unknown as client.Metric);
  }
}
