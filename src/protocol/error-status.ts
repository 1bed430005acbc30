// The one table from error codes (src/core/errors.ts) to HTTP statuses. The
// route table derives each operation's documented error responses from it,
// and src/http/exchange.ts writes it on the wire.

import type { ErrorCode } from '../core/errors.js';

export const ERROR_STATUS: Readonly<Record<ErrorCode, string>> = {
  invalid_json: '400 Bad Request',
  invalid_request: '400 Bad Request',
  pool_not_found: '404 Not Found',
  payload_too_large: '413 Payload Too Large',
  not_found: '404 Not Found',
  method_not_allowed: '405 Method Not Allowed',
  unauthorized: '401 Unauthorized',
  conflict: '409 Conflict',
  misdirected: '421 Misdirected Request',
  unavailable: '503 Service Unavailable',
  not_implemented: '501 Not Implemented',
  internal: '500 Internal Server Error',
};

/** Every error code, in the table's order. */
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/** The numeric status of an error code (404 for pool_not_found). */
export function statusOf(code: ErrorCode): number {
  return Number(ERROR_STATUS[code].slice(0, 3));
}

/** What each code means to a client, for the API description. */
export const ERROR_MEANING: Readonly<Record<ErrorCode, string>> = {
  invalid_json: 'the body is not valid JSON',
  invalid_request: 'a field or parameter is missing, of the wrong type or out of range (`field` names it)',
  pool_not_found: 'no pool has this id',
  payload_too_large: 'the body exceeds --max-body',
  not_found: 'nothing is served under this path',
  method_not_allowed: 'the path does not serve this method (`Allow` lists those it does)',
  unauthorized: 'the server runs with --auth-token and the bearer token is missing or wrong',
  conflict:
    "the cluster step does not fit the bucket's state here (an export of a bucket that takes writes; an import into, or a deletion of, a bucket this shard owns)",
  misdirected: "cluster mode: another shard owns this pool's bucket, so this one neither reads nor creates it (send it through the proxy)",
  unavailable:
    "the server is recovering its data, shutting down, or its storage cannot accept writes; in cluster mode also an append or delete while the pool's bucket moves to another shard",
  not_implemented: 'the request uses a transfer coding other than chunked',
  internal: 'an unexpected failure; the server logged it',
};

/** Headers that come with an error code, by name → description. */
export const ERROR_HEADERS: Readonly<Partial<Record<ErrorCode, Readonly<Record<string, string>>>>> = {
  unauthorized: { 'www-authenticate': 'The scheme to authenticate with: `Bearer`.' },
  unavailable: { 'retry-after': "Seconds to wait before retrying (sent while recovering, and while the pool's bucket moves)." },
};
