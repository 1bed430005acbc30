// The JSON messages of the /ws endpoint (text frames), both directions.
//
// Client → server, one object per frame, `id` a number or a string of at most
// 128 characters, echoed in the reply:
//   {"op":"add","id":1,"poolId":7,"poolValues":[1,2],"key":"k-1"}     key optional
//   {"op":"query","id":2,"poolId":7,"percentile":50}                   or "percentiles":[..], "method"
//   {"op":"subscribe","id":3,"poolId":7,"percentiles":[50,99],"method":"linear","intervalMs":100}
//   {"op":"unsubscribe","id":4,"topic":"pool:7:linear:100:50,99"}
// `subscribe` may name a topic kind (`"topic":"pool"`, the default); other
// kinds plug into the server's subscription hub with their own parameters.
//
// Server → client:
//   {"id":1,"ok":true,"created":true,"count":2}                          add
//   {"id":2,"ok":true,"quantile":1.5,"count":2}                          query ("quantiles":[..] for percentiles)
//   {"id":3,"ok":true,"topic":"pool:7:linear:100:50,99"}                 subscribe
//   {"id":4,"ok":true}                                                   unsubscribe
//   {"id":5,"error":"invalid_request","message":"…","field":"poolValues[1]"}
//   {"topic":"pool:7:linear:100:50,99","poolId":7,"count":2,"quantiles":[1.5,2]}   push (no id)

import { invalidRequest, PoolqError } from '../core/errors.js';
import type { QuantileMethod } from '../core/methods.js';
import { checkMethod, checkPercentile, checkPercentileChoice, checkPercentileList, checkPoolId, checkValues } from './validate.js';
import { checkIdempotencyKey } from './idempotency-key.js';

export type RequestId = number | string;

export const MAX_ID_LENGTH = 128;
export const MIN_INTERVAL_MS = 10;
export const MAX_INTERVAL_MS = 3_600_000;
export const DEFAULT_INTERVAL_MS = 1000;

export interface AddMessage {
  op: 'add';
  id: RequestId;
  poolId: number;
  values: Float64Array;
  key: string | null;
}

export interface QueryMessage {
  op: 'query';
  id: RequestId;
  poolId: number;
  percentiles: number[];
  many: boolean;
  method: QuantileMethod;
}

/** A subscription request; `params` are checked by the topic kind's own parser. */
export interface SubscribeMessage {
  op: 'subscribe';
  id: RequestId;
  kind: string;
  params: Record<string, unknown>;
}

export interface UnsubscribeMessage {
  op: 'unsubscribe';
  id: RequestId;
  topic: string;
}

export type ClientMessage = AddMessage | QueryMessage | SubscribeMessage | UnsubscribeMessage;

/** A message that parsed far enough to know its id (or not: id null) but is refused. */
export class MessageError extends Error {
  constructor(
    readonly id: RequestId | null,
    readonly error: PoolqError,
  ) {
    super(error.message);
    this.name = 'MessageError';
  }
}

function readId(value: unknown): RequestId | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.length <= MAX_ID_LENGTH) return value;
  return null;
}

/** Decodes one text frame; throws MessageError (changes nothing) for anything malformed. */
export function decodeClientMessage(text: string): ClientMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MessageError(null, new PoolqError('invalid_json', `The message is not valid JSON: ${(err as Error).message}.`));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MessageError(null, invalidRequest('$', 'A message must be a JSON object with "op" and "id".'));
  }
  const obj = parsed as Record<string, unknown>;
  const id = readId(obj.id);
  if (id === null) {
    throw new MessageError(null, invalidRequest('id', `id must be a number or a string of at most ${MAX_ID_LENGTH} characters.`));
  }
  try {
    switch (obj.op) {
      case 'add':
        return {
          op: 'add',
          id,
          poolId: checkPoolId(obj.poolId),
          values: checkValues(obj.poolValues),
          key: obj.key === undefined || obj.key === null ? null : checkIdempotencyKey(obj.key, 'key'),
        };
      case 'query': {
        const poolId = checkPoolId(obj.poolId);
        const method = checkMethod(obj.method);
        return { op: 'query', id, poolId, ...checkPercentileChoice(obj), method };
      }
      case 'subscribe': {
        const kind = obj.topic === undefined ? 'pool' : obj.topic;
        if (typeof kind !== 'string') throw invalidRequest('topic', 'topic must be a string naming the kind of subscription, e.g. "pool".');
        return { op: 'subscribe', id, kind, params: obj };
      }
      case 'unsubscribe':
        if (typeof obj.topic !== 'string' || obj.topic.length === 0 || obj.topic.length > 4096) {
          throw invalidRequest('topic', 'topic must be the string the subscribe reply returned.');
        }
        return { op: 'unsubscribe', id, topic: obj.topic };
      default:
        throw invalidRequest('op', 'op must be one of add, query, subscribe, unsubscribe.');
    }
  } catch (err) {
    if (err instanceof PoolqError) throw new MessageError(id, err);
    throw err;
  }
}

// ---- pool subscriptions ------------------------------------------------------

export interface PoolTopic {
  poolId: number;
  percentiles: number[];
  method: QuantileMethod;
  intervalMs: number;
  /** The topic's name: equal parameters give the same name, so subscribers share one computation. */
  name: string;
}

/** The parameters of a `pool` subscription: poolId, percentiles (or percentile), method, intervalMs. */
export function parsePoolTopic(params: Record<string, unknown>): PoolTopic {
  const poolId = checkPoolId(params.poolId);
  const method = checkMethod(params.method);
  let percentiles: number[];
  if (params.percentiles !== undefined) percentiles = checkPercentileList(params.percentiles, 'percentiles');
  else if (params.percentile !== undefined) percentiles = [checkPercentile(params.percentile, 'percentile')];
  else throw invalidRequest('percentiles', 'percentiles (a list) or percentile is required.');
  let intervalMs = DEFAULT_INTERVAL_MS;
  if (params.intervalMs !== undefined) {
    const v = params.intervalMs;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_INTERVAL_MS || v > MAX_INTERVAL_MS) {
      throw invalidRequest('intervalMs', `intervalMs must be an integer from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS}.`);
    }
    intervalMs = v;
  }
  const name = `pool:${poolId}:${method}:${intervalMs}:${percentiles.map(jsonNumber).join(',')}`;
  return { poolId, percentiles, method, intervalMs, name };
}

// ---- server → client ---------------------------------------------------------

/** JSON number text that keeps -0 (JSON.stringify(-0) is "0"). */
export function jsonNumber(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

export function idJson(id: RequestId | null): string {
  return typeof id === 'number' ? jsonNumber(id) : id === null ? 'null' : JSON.stringify(id);
}

export function encodeAddAck(id: RequestId, created: boolean, count: number): string {
  return `{"id":${idJson(id)},"ok":true,"created":${created},"count":${count}}`;
}

export function encodeQueryReply(id: RequestId, values: readonly number[], count: number, many: boolean): string {
  if (many) return `{"id":${idJson(id)},"ok":true,"quantiles":[${values.map(jsonNumber).join(',')}],"count":${count}}`;
  return `{"id":${idJson(id)},"ok":true,"quantile":${jsonNumber(values[0])},"count":${count}}`;
}

export function encodeSubscribed(id: RequestId, topic: string): string {
  return `{"id":${idJson(id)},"ok":true,"topic":${JSON.stringify(topic)}}`;
}

export function encodeOk(id: RequestId): string {
  return `{"id":${idJson(id)},"ok":true}`;
}

export function encodeError(id: RequestId | null, code: string, message: string, field?: string): string {
  const base = `{"id":${idJson(id)},"error":${JSON.stringify(code)},"message":${JSON.stringify(message)}`;
  return field === undefined ? `${base}}` : `${base},"field":${JSON.stringify(field)}}`;
}

/** A pool push; `quantiles` null when the pool does not exist (deleted, or not created yet). */
export function encodePoolPush(topic: string, poolId: number, count: number, quantiles: readonly number[] | null): string {
  const q = quantiles === null ? 'null' : `[${quantiles.map(jsonNumber).join(',')}]`;
  return `{"topic":${JSON.stringify(topic)},"poolId":${poolId},"count":${count},"quantiles":${q}}`;
}

// ---- client side -------------------------------------------------------------

export interface AckReply {
  id: RequestId;
  ok: true;
  created?: boolean;
  count?: number;
  quantile?: number;
  quantiles?: number[];
  topic?: string;
}

export interface ErrorReply {
  id: RequestId | null;
  error: string;
  message: string;
  field?: string;
}

export interface PushMessage {
  topic: string;
  poolId: number;
  count: number;
  quantiles: number[] | null;
}

export type ServerMessage = AckReply | ErrorReply | PushMessage;

export function isPush(m: ServerMessage): m is PushMessage {
  return !('id' in m) && 'topic' in m;
}

export function isErrorReply(m: ServerMessage): m is ErrorReply {
  return 'error' in m;
}
