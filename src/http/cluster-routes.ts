// The /cluster routes of an instance started with --shard-map (docs/cluster.md):
// auth-protected like the data endpoints, answered by ClusterAdmin. The server
// lends its request plumbing (Exchange, auth, readiness, body reading).

import type { HttpRequest, HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import type { PoolWriter } from '../storage/pool-writer.js';
import { parseBucketText, type ClusterAdmin } from './cluster-admin.js';
import type { Exchange } from './exchange.js';

export interface RoutePlumbing {
  begin(res: HttpResponse, route: string): Exchange;
  authorized(req: HttpRequest): boolean;
  /** Replies 401/503 unless the request may proceed, then runs `work`, turning a throw into an error reply. */
  guard(ex: Exchange, authorized: boolean, writes: boolean, work: () => void): void;
  /** Reads a body of up to `maxBytes` for a write, then runs `handle`. */
  withBody(res: HttpResponse, req: HttpRequest, route: string, handle: (ex: Exchange, body: Buffer) => void, maxBytes: number): void;
  writer(): PoolWriter;
  maxImportBytes: number;
}

/** Path patterns and their methods, for the server's 405 answers. */
export const CLUSTER_ALLOWED: [string, string][] = [
  ['/cluster', 'GET'],
  ['/cluster/shard-map/reload', 'POST'],
  ['/cluster/buckets/:bucket', 'GET'],
  ['/cluster/buckets/:bucket/moving', 'PUT, DELETE'],
  ['/cluster/buckets/:bucket/export', 'GET'],
  ['/cluster/buckets/:bucket/import', 'POST'],
  ['/cluster/buckets/:bucket/pools', 'DELETE'],
];

const OK = '200 OK';

export function registerClusterRoutes(app: TemplatedApp, admin: ClusterAdmin, http: RoutePlumbing): void {
  const json = (ex: Exchange, value: unknown) => ex.send(OK, JSON.stringify(value));
  /** A route whose work needs the request's parameters (copied before the handler returns) and an admitted Exchange. */
  const route =
    (name: string, writes: boolean, work: (ex: Exchange, req: { bucket: string; query: string }) => void) =>
    (res: HttpResponse, req: HttpRequest) => {
      const params = { bucket: req.getParameter(0) ?? '', query: req.getQuery() ?? '' };
      const authorized = http.authorized(req);
      const ex = http.begin(res, name);
      http.guard(ex, authorized, writes, () => work(ex, params));
    };

  app.get(
    '/cluster',
    route('GET /cluster', false, (ex) => json(ex, admin.status())),
  );
  app.post(
    '/cluster/shard-map/reload',
    route('POST /cluster/shard-map/reload', false, (ex) => ex.settle(admin.reload(), (status) => json(ex, status))),
  );
  app.get(
    '/cluster/buckets/:bucket',
    route('GET /cluster/buckets/{bucket}', false, (ex, p) => json(ex, admin.bucket(parseBucketText(p.bucket)))),
  );
  app.put(
    '/cluster/buckets/:bucket/moving',
    route('PUT /cluster/buckets/{bucket}/moving', false, (ex, p) => json(ex, admin.markMoving(parseBucketText(p.bucket)))),
  );
  app.del(
    '/cluster/buckets/:bucket/moving',
    route('DELETE /cluster/buckets/{bucket}/moving', false, (ex, p) =>
      json(ex, admin.unmarkMoving(parseBucketText(p.bucket), new URLSearchParams(p.query).get('token'))),
    ),
  );
  app.get(
    '/cluster/buckets/:bucket/export',
    route('GET /cluster/buckets/{bucket}/export', false, (ex, p) => {
      const bucket = parseBucketText(p.bucket);
      ex.settle(admin.export(bucket), ({ bytes, pools, values }) =>
        ex.send(OK, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'application/octet-stream', {
          'x-poolq-bucket': String(bucket),
          'x-poolq-pools': String(pools),
          'x-poolq-values': String(values),
        }),
      );
    }),
  );
  app.post('/cluster/buckets/:bucket/import', (res, req) => {
    const text = req.getParameter(0) ?? '';
    http.withBody(
      res,
      req,
      'POST /cluster/buckets/{bucket}/import',
      (ex, body) => ex.settle(admin.import(parseBucketText(text), body, http.writer()), (report) => json(ex, report)),
      http.maxImportBytes,
    );
  });
  app.del(
    '/cluster/buckets/:bucket/pools',
    route('DELETE /cluster/buckets/{bucket}/pools', true, (ex, p) =>
      ex.settle(admin.deleteBucket(parseBucketText(p.bucket), http.writer()), (report) => json(ex, report)),
    ),
  );
}
