// Prometheus metrics (prom-client). Per-request cost matters at ~100k req/s, so
// label children are resolved once per (route, status) and cached; the pool
// gauges are computed only when /metrics is scraped.

import client from 'prom-client';
import type { QuantileEngine } from '../core/engine.js';

export interface StorageGauges {
  walBytes(): number;
  lastSnapshotAgeSeconds(): number;
  pendingCommits(): number;
  writable(): boolean;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter<'route' | 'status'>;
  private readonly latency: client.Histogram<'route'>;
  private readonly requestChildren = new Map<string, ReturnType<client.Counter<'route' | 'status'>['labels']>>();
  private readonly latencyChildren = new Map<string, ReturnType<client.Histogram<'route'>['labels']>>();
  private engine: QuantileEngine | null = null;
  private storage: StorageGauges | null = null;

  constructor() {
    const registry = this.registry;
    client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
    this.requests = new client.Counter({
      name: 'poolq_http_requests_total',
      help: 'HTTP requests by route and status code.',
      labelNames: ['route', 'status'],
      registers: [registry],
    });
    this.latency = new client.Histogram({
      name: 'poolq_http_request_duration_seconds',
      help: 'Time from request arrival to the response being written, by route.',
      labelNames: ['route'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    });
    const self = this;
    new client.Gauge({
      name: 'poolq_pools',
      help: 'Pools currently stored.',
      registers: [registry],
      collect() {
        if (self.engine) this.set(self.engine.stats().pools);
      },
    });
    new client.Gauge({
      name: 'poolq_values',
      help: 'Values currently stored across all pools.',
      registers: [registry],
      collect() {
        if (self.engine) this.set(self.engine.stats().values);
      },
    });
    new client.Gauge({
      name: 'poolq_sorted_runs',
      help: 'Sorted runs across all pools (O(log n) per pool).',
      registers: [registry],
      collect() {
        if (self.engine) this.set(self.engine.stats().runs);
      },
    });
    new client.Gauge({
      name: 'poolq_merges_in_flight',
      help: 'Run merges currently running on worker threads.',
      registers: [registry],
      collect() {
        if (self.engine) this.set(self.engine.stats().mergesInFlight);
      },
    });
    new client.Gauge({
      name: 'poolq_wal_bytes',
      help: 'Bytes in the write-ahead log since the last snapshot.',
      registers: [registry],
      collect() {
        if (self.storage) this.set(self.storage.walBytes());
      },
    });
    new client.Gauge({
      name: 'poolq_snapshot_age_seconds',
      help: 'Seconds since the last completed snapshot.',
      registers: [registry],
      collect() {
        if (self.storage) this.set(self.storage.lastSnapshotAgeSeconds());
      },
    });
    new client.Gauge({
      name: 'poolq_pending_commits',
      help: 'Appends waiting for the write-ahead log to sync.',
      registers: [registry],
      collect() {
        if (self.storage) this.set(self.storage.pendingCommits());
      },
    });
    new client.Gauge({
      name: 'poolq_storage_writable',
      help: '1 while the write-ahead log accepts writes, 0 while degraded (disk full, I/O error).',
      registers: [registry],
      collect() {
        if (self.storage) this.set(self.storage.writable() ? 1 : 0);
      },
    });
  }

  attachEngine(engine: QuantileEngine): void {
    this.engine = engine;
  }

  attachStorage(storage: StorageGauges): void {
    this.storage = storage;
  }

  /** Records one finished request. `status` is the numeric code as text ("200"). */
  observe(route: string, status: string, seconds: number): void {
    const key = route + ' ' + status;
    let counter = this.requestChildren.get(key);
    if (counter === undefined) {
      counter = this.requests.labels(route, status);
      this.requestChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.latencyChildren.get(route);
    if (histogram === undefined) {
      histogram = this.latency.labels(route);
      this.latencyChildren.set(route, histogram);
    }
    histogram.observe(seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
