// Prometheus metrics (prom-client). Per-request numbers are kept by
// RequestStats in plain counters and read at scrape time; the pool and storage
// gauges are computed only when /metrics is scraped.

import client from 'prom-client';
import type { QuantileEngine } from '../core/engine.js';
import { RequestStats } from './request-stats.js';
import { WS_CLOSE_CAUSES, type WsCloseCause } from './ws-close.js';

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
  private readonly wsCloses: client.Counter<'cause'>;

  constructor() {
    const registry = this.registry;
    client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
    this.requests.registerCounter(client, registry, 'poolq_http_requests_total', 'HTTP requests by route and status code.');
    this.requests.registerHistogram(
      registry,
      'poolq_http_request_duration_seconds',
      'Time from request arrival to the response being written, by route.',
    );
    /** A gauge read at scrape time; `read` returns null while its source is not attached yet. */
    const gauge = (name: string, help: string, read: () => number | null): void => {
      new client.Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          const value = read();
          if (value !== null) this.set(value);
        },
      });
    };
    gauge('poolq_pools', 'Pools currently stored.', () => this.engine?.stats().pools ?? null);
    gauge('poolq_values', 'Values currently stored across all pools.', () => this.engine?.stats().values ?? null);
    gauge('poolq_sorted_runs', 'Sorted runs across all pools (O(log n) per pool).', () => this.engine?.stats().runs ?? null);
    gauge(
      'poolq_stored_value_bytes',
      'Bytes the stored values would take as float64 (8 per value).',
      () => this.engine?.stats().valueBytes ?? null,
    );
    gauge(
      'poolq_run_buffer_bytes',
      'Bytes the runs hold: 8 per value in plain runs, 16 per distinct value in counted runs (process_resident_memory_bytes is the whole process).',
      () => this.engine?.stats().runBytes ?? null,
    );
    gauge('poolq_counted_runs', 'Runs stored as distinct values and counts.', () => this.engine?.stats().countedRuns ?? null);
    gauge('poolq_windowed_pools', 'Pools with a retention window.', () => this.engine?.stats().windowedPools ?? null);
    gauge(
      'poolq_engine_kernel_memory_bytes',
      "The engine's own scratch memory on the event loop (WASM linear memory).",
      () => this.engine?.stats().kernelMemoryBytes ?? null,
    );
    gauge('poolq_merges_in_flight', 'Run merges currently running on worker threads.', () => this.engine?.stats().mergesInFlight ?? null);
    gauge('poolq_wal_bytes', 'Bytes in the write-ahead log since the last snapshot.', () => this.storage?.walBytes() ?? null);
    gauge('poolq_snapshot_age_seconds', 'Seconds since the last completed snapshot.', () => this.storage?.lastSnapshotAgeSeconds() ?? null);
    gauge('poolq_pending_commits', 'Appends waiting for the write-ahead log to sync.', () => this.storage?.pendingCommits() ?? null);
    gauge('poolq_storage_writable', '1 while the write-ahead log accepts writes, 0 while degraded (disk full, I/O error).', () =>
      this.storage === null ? null : this.storage.writable() ? 1 : 0,
    );
    gauge('poolq_ws_connections', 'Open /ws connections.', () => this.webSockets?.connections() ?? null);
    gauge(
      'poolq_ws_buffered_bytes',
      'Bytes waiting in the send buffers of all /ws connections.',
      () => this.webSockets?.bufferedBytes() ?? null,
    );
    gauge('poolq_ws_pushes_total', 'Subscription pushes sent.', () => this.webSockets?.pushes() ?? null);
    gauge(
      'poolq_ws_pushes_skipped_total',
      'Subscription pushes skipped for a socket over its push limit (the newest is sent when it drains).',
      () => this.webSockets?.skippedPushes() ?? null,
    );
    this.wsCloses = new client.Counter({
      name: 'poolq_ws_closes_total',
      help: '/ws connections closed, by cause (docs/api.md, "Limits and close codes").',
      labelNames: ['cause'],
      registers: [registry],
    });
    // Every cause shows from the start, so a rate over a cause that never happened yet reads 0, not nothing.
    for (const cause of WS_CLOSE_CAUSES) this.wsCloses.inc({ cause }, 0);
  }

  wsClosed(cause: WsCloseCause): void {
    this.wsCloses.inc({ cause });
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
