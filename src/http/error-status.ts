// The one table from error codes (src/core/errors.ts) to HTTP statuses.

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
  internal: '500 Internal Server Error',
};
