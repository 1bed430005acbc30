// Request framing that uWS accepts but a proxy in front may read differently
// (request smuggling): two Content-Length headers with different values (uWS
// takes the first), and a transfer coding other than plain `chunked` (uWS
// treats `gzip, chunked` as chunked and ignores gzip). RFC 9112 §6.3 makes the
// first a 400 and the second a 501. uWS itself closes the connection, without
// a status, on a Content-Length that is not a number and on Content-Length
// together with Transfer-Encoding.

import type { HttpRequest } from '@trufflesuite/uws-js-unofficial';
import { invalidRequest, PoolqError } from '../core/errors.js';
import { echo } from '../protocol/limits.js';

export function framingError(req: HttpRequest): PoolqError | null {
  const coding = req.getHeader('transfer-encoding');
  if (coding !== '' && coding.trim().toLowerCase() !== 'chunked') {
    return new PoolqError('not_implemented', `Transfer-Encoding ${echo(coding)} is not supported; send the body plain or chunked.`);
  }
  let lengths = 0;
  let first = '';
  let conflict = false;
  req.forEach((name, value) => {
    if (name !== 'content-length') return;
    if (lengths++ === 0) first = value;
    else if (value !== first) conflict = true;
  });
  return conflict ? invalidRequest('content-length', 'The request has several Content-Length headers with different values.') : null;
}
