// Prometheus metrics (prom-client). Per-request numbers are kept by
// RequestStats in plain counters and read at scrape time; the pool and storage
// gauges are computed only when /metrics is scraped.

import client from 'prom-client';
import type { QuantileEngine } from '../core/engine.js';
import { RequestStats } from './request-stats.js';

export interface StorageGauges {
  walBytes(): number;
  lastSnapshotAgeSeconds(): number;
  pendingCommits(): number;
  writable(): boolean;
}

/** Live /ws numbers for /metrics. */
export interface WebSocketGauges {
  connections(): number;
  /** Bytes waiting in uWS's send buffers of all sockets. */
  bufferedBytes(): number;
  pushes(): number;
  skippedPushes(): number;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly requests = new RequestStats();
  private engine: QuantileEngine | null = null;
  private storage: StorageGauges | null = null;
  private webSockets: WebSocketGauges | null = null;

  constructor() {
    const registry = this.registry;
    client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
    this.requests.registerCounter(client, registry, 'poolq_http_requests_total', 'HTTP requests by route and status code.');
    this.requests.registerHistogram(
      registry,
      'poolq_http_request_duration_seconds',
      'Time from request arrival to the response being written, by route.',
    );
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
    const ws = (name: string, help: string, read: (g: WebSocketGauges) => number) =>
      new client.Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          if (self.webSockets) this.set(read(self.webSockets));
        },
      });
    ws('poolq_ws_connections', 'Open /ws connections.', (g) => g.connections());
    ws('poolq_ws_buffered_bytes', 'Bytes waiting in the send buffers of all /ws connections.', (g) => g.bufferedBytes());
    ws('poolq_ws_pushes_total', 'Subscription pushes sent.', (g) => g.pushes());
    ws('poolq_ws_pushes_skipped_total', 'Subscription pushes skipped for a socket over its push limit (the newest is sent when it drains).', (g) => g.skippedPushes());
  }

  attachWebSockets(gauges: WebSocketGauges): void {
    this.webSockets = gauges;
  }

  attachEngine(engine: QuantileEngine): void {
    this.engine = engine;
  }

  attachStorage(storage: StorageGauges): void {
    this.storage = storage;
  }

  /** Records one finished request. `status` is the numeric code as text ("200"). */
  observe(route: string, status: string, seconds: number): void {
    this.requests.observe(route, status, seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
