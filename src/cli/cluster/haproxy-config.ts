// The proxy's side of the ownership rule: an HAProxy 2.6 configuration and a
// bucket → backend map file, both generated from the shard map so the proxy and
// the instances can never disagree by hand-editing. docs/cluster.md ("The
// proxy") explains each setting; deploy/haproxy.cfg is this output for
// deploy/shard-map.json (a test keeps them equal).

import { BUCKET_COUNT, SHARD_MAP_FORMAT, type ShardMap } from '../../core/shard-map.js';

export interface HaproxyOptions {
  /** Address the proxy listens on, host:port. */
  bind: string;
  /** Absolute path of the bucket map file the configuration reads. */
  bucketMapPath: string;
  /** HAProxy threads; omitted: one per CPU. */
  threads?: number;
  /** Where HAProxy writes its own warnings. */
  log?: 'stderr' | 'stdout';
  /**
   * Shard addresses are DNS names whose address changes when the shard
   * restarts (Kubernetes pods): resolve them through /etc/resolv.conf's
   * servers, again every few seconds, and start even if some do not resolve yet.
   */
  dns?: boolean;
}

/** The backend that takes requests whose pool id the proxy cannot read; shard names never contain '_'. */
export const ANY_SHARD_BACKEND = 'poolq_any';

const JSON_TYPE = '"application/json; charset=utf-8"';

function jsonError(status: number, code: string, message: string, retryAfter: boolean): string {
  const body = JSON.stringify({ error: code, message });
  return `    http-error status ${status} content-type ${JSON_TYPE} string '${body}'${retryAfter ? ' hdr retry-after 1' : ''}`;
}

/** The bucket map: one `bucket backend` line per bucket (HAProxy `map_int`). */
export function haproxyBucketMap(map: ShardMap): string {
  const lines = [`# ${SHARD_MAP_FORMAT} epoch ${map.epoch}: bucket (poolId mod ${BUCKET_COUNT}) -> backend`];
  map.owners.forEach((shard, bucket) => lines.push(`${bucket} ${shard}`));
  return lines.join('\n') + '\n';
}

export function haproxyConfig(map: ShardMap, options: HaproxyOptions): string {
  const shards = [...map.shards];
  const out: string[] = [];
  const add = (...lines: string[]) => out.push(...lines);
  add(
    `# poolq cluster proxy (HAProxy 2.6), generated from the shard map (${shards.length} shards) by`,
    '#   npm run cluster -- haproxy-config --shard-map FILE --bind HOST:PORT --bucket-map FILE',
    '# Routing, timeouts and the no-redispatch rule are explained in docs/cluster.md.',
    '',
    'global',
    `    log ${options.log ?? 'stderr'} format raw local0 warning`,
    ...(options.threads === undefined ? [] : [`    nbthread ${options.threads}`]),
    '    # a reload waits at most this long for the old process to finish its requests',
    '    hard-stop-after 30s',
    '',
    'defaults',
    '    mode http',
    '    log global',
    '    option dontlog-normal',
    '    timeout connect 2s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    timeout http-request 10s',
    '    timeout queue 5s',
    '    timeout check 2s',
    '    # poolq (uWebSockets.js) closes connections idle for 10 s: both sides stay well under that',
    '    timeout http-keep-alive 5s',
    '    # /ws (through /shards/<name>/ws): poolq pings a silent socket before its own --ws-idle-timeout closes it',
    '    timeout tunnel 1h',
    '    http-reuse safe',
    '    # a pool lives on one shard: never send its request to another one',
    '    no option redispatch',
    '    retries 1',
    '    retry-on conn-failure',
    '    # on reload, the old process answers each kept-alive connection once more (then closes it)',
    '    option idle-close-on-response',
    '    option httpchk',
    '    http-check send meth GET uri /readyz ver HTTP/1.1 hdr host poolq-proxy',
    '    http-check expect status 200',
    `    default-server check inter 1s fastinter 250ms downinter 500ms fall 2 rise 1 pool-purge-delay 1s${options.dns ? ' resolvers dns init-addr last,libc,none' : ''}`,
    jsonError(
      502,
      'unavailable',
      'The shard that owns this pool closed the connection (it may have crashed); whether the change was applied is unknown. Query before retrying an append.',
      true,
    ),
    jsonError(503, 'unavailable', 'The shard that owns this pool is down or restarting; other pools are served. Retry shortly.', true),
    jsonError(504, 'unavailable', 'The shard that owns this pool did not answer in time.', true),
    ...(options.dns ? ['', 'resolvers dns', '    parse-resolv-conf', '    hold valid 5s', '    hold obsolete 5s'] : []),
    '',
    'frontend poolq',
    `    bind ${options.bind}`,
    '    # the body is in the buffer before the rules read poolId from it (up to tune.bufsize, 16 KiB by default)',
    '    option http-buffer-request',
    '    # /shards/<name>/... reaches one shard directly, prefix removed (listings, metrics, /cluster, /ws, /batch)',
  );
  for (const [name] of shards) add(`    http-request set-var(txn.shard) str(${name}) if { path_beg /shards/${name}/ }`);
  add(
    '    http-request set-path %[path,regsub(^/shards/[^/]+,)] if { var(txn.shard) -m found }',
    '    # the pool id: from the path for /pools/{poolId}..., the JSON body of /add and /query, ?poolId= of /imports',
    '    http-request set-var(txn.pool_id) path,field(3,/) if !{ var(txn.shard) -m found } { path_reg ^/pools/[^/]+(/[^/]*)?$ }',
    "    http-request set-var(txn.pool_id) req.body,json_query('$.poolId','int') if !{ var(txn.shard) -m found } METH_POST { path /add /query }",
    '    http-request set-var(txn.pool_id) url_param(poolId) if !{ var(txn.shard) -m found } METH_POST { path /imports }',
    `    http-request set-var(txn.bucket) var(txn.pool_id),mod(${BUCKET_COUNT}) if { var(txn.pool_id) -m found }`,
    '    # a listing of every pool needs every shard: `npm run cluster -- pools`, or /shards/<name>/pools',
    `    http-request return status 404 content-type ${JSON_TYPE} string '${JSON.stringify({
      error: 'not_found',
      message:
        'Each shard lists its own pools: GET /shards/<name>/pools through this proxy, or `npm run cluster -- pools` for all of them.',
    })}' if !{ var(txn.shard) -m found } { path /pools }`,
    '    http-response set-header x-poolq-bucket %[var(txn.bucket)] if { var(txn.bucket) -m found }',
    '    # the shard that answered (an import job lives there: follow it at /shards/<name>/imports/{jobId})',
    '    http-response set-header x-poolq-shard %[srv_name] if { srv_name -m found }',
    '    use_backend %[var(txn.shard)] if { var(txn.shard) -m found }',
    `    use_backend %[var(txn.bucket),map_int(${options.bucketMapPath})] if { var(txn.bucket) -m found }`,
    '    # no pool id the proxy can read (invalid JSON, poolId past the buffered part): any shard parses it',
    "    # and answers 400, or 421 if the pool is another shard's",
    `    default_backend ${ANY_SHARD_BACKEND}`,
  );
  for (const [name, info] of shards) add('', `backend ${name}`, `    server ${name} ${info.address}`);
  add('', `backend ${ANY_SHARD_BACKEND}`, '    balance roundrobin');
  for (const [name, info] of shards) add(`    server ${name} ${info.address} no-check track ${name}/${name}`);
  return out.join('\n') + '\n';
}
