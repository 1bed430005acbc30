// poolq over HTTP (global fetch). JSON for small appends and queries,
// application/octet-stream for large appends (8 bytes a value, no parsing on
// the server), NDJSON for many pools in one all-or-nothing request.

import type { QuantileMethod } from '../core/methods.js';
import { float64Bytes } from '../protocol/binary-values.js';
import { PoolqConnectionError, PoolqRequestError } from './errors.js';

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8000 */
  baseUrl: string;
  /** --auth-token of the server. */
  token?: string;
}

export interface WriteOptions {
  /** Idempotency-Key: a retry with the same key returns the first outcome instead of appending again. */
  key?: string;
}

export interface AppendResult {
  created: boolean;
  count: number;
}

export interface PoolSummary {
  poolId: number;
  count: number;
  min: number;
  max: number;
}

type Values = Float64Array | readonly number[];

export class PoolqClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;

  constructor(options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.headers = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
  }

  /** POST /add: "Inserted" or "Appended". */
  async add(poolId: number, values: Values, options: WriteOptions = {}): Promise<'Inserted' | 'Appended'> {
    const body = `{"poolId":${poolId},"poolValues":[${Array.from(values).join(',')}]}`;
    return (await this.request('POST', '/add', body, 'application/json', options.key, true)) as 'Inserted' | 'Appended';
  }

  /** POST /pools/{poolId}/values as little-endian float64 (application/octet-stream). */
  async appendBinary(poolId: number, values: Values, options: WriteOptions = {}): Promise<AppendResult> {
    const typed = values instanceof Float64Array ? values : Float64Array.from(values);
    const reply = (await this.request(
      'POST',
      `/pools/${poolId}/values`,
      float64Bytes(typed),
      'application/octet-stream',
      options.key,
      true,
    )) as {
      status: string;
      count: number;
    };
    return { created: reply.status === 'inserted', count: reply.count };
  }

  /** POST /batch (NDJSON): every entry or none. */
  async batch(
    entries: readonly { poolId: number; values: Values }[],
    options: WriteOptions = {},
  ): Promise<{ pools: number; values: number }> {
    const body = entries.map((e) => `{"poolId":${e.poolId},"poolValues":[${Array.from(e.values).join(',')}]}\n`).join('');
    return (await this.request('POST', '/batch', body, 'application/x-ndjson', options.key, true)) as { pools: number; values: number };
  }

  async query(poolId: number, percentile: number, method?: QuantileMethod): Promise<{ quantile: number; count: number }>;
  async query(poolId: number, percentiles: readonly number[], method?: QuantileMethod): Promise<{ quantiles: number[]; count: number }>;
  async query(poolId: number, p: number | readonly number[], method?: QuantileMethod): Promise<unknown> {
    const body = JSON.stringify(typeof p === 'number' ? { poolId, percentile: p, method } : { poolId, percentiles: p, method });
    return this.request('POST', '/query', body, 'application/json', undefined, false);
  }

  async summary(poolId: number): Promise<PoolSummary> {
    return (await this.request('GET', `/pools/${poolId}`, undefined, undefined, undefined, false)) as PoolSummary;
  }

  /** true if the pool existed. */
  async deletePool(poolId: number): Promise<boolean> {
    try {
      await this.request('DELETE', `/pools/${poolId}`, undefined, undefined, undefined, true);
      return true;
    } catch (err) {
      if (err instanceof PoolqRequestError && err.code === 'pool_not_found') return false;
      throw err;
    }
  }

  private async request(
    method: string,
    path: string,
    body: string | Uint8Array | undefined,
    contentType: string | undefined,
    key: string | undefined,
    writes: boolean,
  ): Promise<unknown> {
    const headers: Record<string, string> = { ...this.headers };
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (key !== undefined) headers['idempotency-key'] = key;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.base + path, { method, body, headers });
      text = await res.text();
    } catch (err) {
      throw new PoolqConnectionError(`${method} ${path} failed: ${(err as Error).message}`, writes, { cause: err });
    }
    if (res.status === 204) return null;
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: reported below
    }
    if (res.ok) return json;
    const e = (json ?? {}) as { error?: string; message?: string; field?: string };
    throw new PoolqRequestError(e.error ?? 'http_error', e.message ?? `${method} ${path} answered ${res.status}`, res.status, e.field);
  }
}
