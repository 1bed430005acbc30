// The code behind the /cluster operations of the route table: ClusterAdmin
// does the work; without --shard-map every one of them answers 404.

import { PoolqError } from '../core/errors.js';
import type { PoolWriter } from '../storage/pool-writer.js';
import { parseBucketText, type ClusterAdmin } from './cluster-admin.js';
import type { Exchange } from './exchange.js';
import type { Handler, Handlers } from './router.js';

const OK = '200 OK';

type ClusterOperation =
  | 'clusterStatus'
  | 'reloadShardMap'
  | 'getBucket'
  | 'markBucketMoving'
  | 'unmarkBucketMoving'
  | 'exportBucket'
  | 'importBucket'
  | 'deleteBucketPools';

/**
 * uWS lends a body that arrived in one chunk (at most its 512 KiB receive
 * buffer) only until parse returns; an import is decoded asynchronously, so
 * such a body is copied. Larger bodies were assembled in a buffer of their own.
 */
const LENT_BODY_MAX_BYTES = 1 << 20;

export function createClusterHandlers(admin: ClusterAdmin | null, writer: () => PoolWriter): Pick<Handlers, ClusterOperation> {
  const json = (ex: Exchange, value: unknown) => ex.send(OK, JSON.stringify(value));
  const route = (work: (ex: Exchange, admin: ClusterAdmin, bucketText: string, query: string) => void): Handler => ({
    handle: (ex, input) => {
      if (admin === null) ex.sendError(new PoolqError('not_found', 'This instance runs without --shard-map: it is not part of a cluster.'));
      else work(ex, admin, input.params.bucket ?? '', input.query);
    },
  });
  return {
    clusterStatus: route((ex, a) => json(ex, a.status())),
    reloadShardMap: route((ex, a) => ex.settle(a.reload(), (status) => json(ex, status))),
    getBucket: route((ex, a, bucket) => json(ex, a.bucket(parseBucketText(bucket)))),
    markBucketMoving: route((ex, a, bucket) => json(ex, a.markMoving(parseBucketText(bucket)))),
    unmarkBucketMoving: route((ex, a, bucket, query) =>
      json(ex, a.unmarkMoving(parseBucketText(bucket), new URLSearchParams(query).get('token'))),
    ),
    exportBucket: route((ex, a, bucketText) => {
      const bucket = parseBucketText(bucketText);
      ex.settle(a.export(bucket), ({ bytes, pools, values }) =>
        ex.send(OK, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'application/octet-stream', {
          'x-poolq-bucket': String(bucket),
          'x-poolq-pools': String(pools),
          'x-poolq-values': String(values),
        }),
      );
    }),
    importBucket: {
      parse: (body) => (body.length <= LENT_BODY_MAX_BYTES ? Buffer.from(body) : body),
      handle: (ex, input, body) => {
        if (admin === null) {
          ex.sendError(new PoolqError('not_found', 'This instance runs without --shard-map: it is not part of a cluster.'));
          return;
        }
        const bucket = parseBucketText(input.params.bucket ?? '');
        ex.settle(admin.import(bucket, body as Buffer, writer()), (report) => json(ex, report));
      },
    },
    deleteBucketPools: route((ex, a, bucket) => ex.settle(a.deleteBucket(parseBucketText(bucket), writer()), (report) => json(ex, report))),
  };
}
