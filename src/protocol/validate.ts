// Request validation, hand-written because it runs on every request and names
// the exact offending field (`poolValues[3]`): each check is one typeof or
// range test, ~1 ns per number next to JSON.parse's 40-90 (docs/performance.md).
// Pure functions, so the worker threads that parse large bodies run the same
// code (src/workers/heavy-tasks.ts).

import { invalidRequest, PoolqError } from '../core/errors.js';
import { isValidWindowSeconds, windowRuleText } from '../core/time-window.js';
import { isQuantileMethod, QUANTILE_METHODS, type QuantileMethod } from '../core/methods.js';
import { allocateBatch } from '../core/sorted-run.js';
import { DEFAULT_LIST_LIMIT, echo, isValidPoolId, MAX_LIST_LIMIT, MAX_PERCENTILES_PER_QUERY, MAX_POOLS_PER_QUERY } from './limits.js';

export interface AddRequest {
  poolId: number;
  values: Float64Array;
}

export interface QueryRequest {
  poolId: number;
  percentiles: number[];
  /** true when the client sent `percentiles` (answer with a list). */
  many: boolean;
  method: QuantileMethod;
}

/** A /query over the union of several pools (`poolIds` instead of `poolId`). */
export interface UnionQueryRequest {
  poolIds: number[];
  percentiles: number[];
  many: boolean;
  method: QuantileMethod;
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    const detail = body.length === 0 ? 'the request body is empty' : (err as Error).message;
    throw new PoolqError('invalid_json', `The request body is not valid JSON: ${detail}.`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${echo(value)}`;
  if (typeof value === 'number') return String(value);
  return `a ${typeof value}`;
}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('$', `The request body must be a JSON object, got ${describe(body)}.`);
  }
  return body as Record<string, unknown>;
}

export function checkPoolId(value: unknown, field = 'poolId'): number {
  if (value === undefined) throw invalidRequest(field, `${field} is required.`);
  if (!isValidPoolId(value)) {
    throw invalidRequest(field, `${field} must be an integer from 0 to 2^53-1, got ${describe(value)}.`);
  }
  return value === 0 ? 0 : value; // -0 is pool 0
}

/** A path segment like "123456" → pool id. */
export function parsePoolIdText(text: string, field = 'poolId'): number {
  if (!/^\d{1,16}$/.test(text)) {
    // Cut like body fields (describe): a 100 000-digit path segment is not echoed whole.
    throw invalidRequest(field, `${field} must be an integer from 0 to 2^53-1, got ${echo(text)}.`);
  }
  return checkPoolId(Number(text), field);
}

export function checkValues(value: unknown, field = 'poolValues'): Float64Array {
  if (value === undefined) throw invalidRequest(field, `${field} is required.`);
  if (!Array.isArray(value)) throw invalidRequest(field, `${field} must be an array of numbers, got ${describe(value)}.`);
  const n = value.length;
  if (n === 0) throw invalidRequest(field, `${field} must not be empty.`);
  const out = allocateBatch(n);
  for (let i = 0; i < n; i++) {
    const v = value[i];
    // v - v is 0 only for finite numbers; 1e400 parses to Infinity and lands here.
    if (typeof v !== 'number' || v - v !== 0) {
      throw invalidRequest(`${field}[${i}]`, `${field}[${i}] must be a finite number, got ${describe(v)}.`);
    }
    out[i] = v;
  }
  return out;
}

export function checkPercentile(value: unknown, field: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 100)) {
    throw invalidRequest(field, `${field} must be a number from 0 to 100, got ${describe(value)}.`);
  }
  return value;
}

export function checkMethod(value: unknown): QuantileMethod {
  if (value === undefined) return 'linear';
  if (!isQuantileMethod(value)) {
    throw invalidRequest('method', `method must be one of ${QUANTILE_METHODS.join(', ')}; got ${describe(value)}.`);
  }
  return value;
}

export function checkPercentileList(value: unknown, field: string): number[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidRequest(field, `${field} must be a non-empty array of numbers from 0 to 100, got ${describe(value)}.`);
  }
  if (value.length > MAX_PERCENTILES_PER_QUERY) {
    throw invalidRequest(field, `${field} may hold at most ${MAX_PERCENTILES_PER_QUERY} percentiles, got ${value.length}.`);
  }
  return value.map((p, i) => checkPercentile(p, `${field}[${i}]`));
}

export function parseAddRequest(body: unknown): AddRequest {
  const obj = requireObject(body);
  return { poolId: checkPoolId(obj.poolId), values: checkValues(obj.poolValues) };
}

/** 1 to MAX_POOLS_PER_QUERY pool ids (each counted once in the union). */
export function checkPoolIdList(value: unknown, field = 'poolIds'): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_POOLS_PER_QUERY) {
    throw invalidRequest(field, `${field} must be an array of 1 to ${MAX_POOLS_PER_QUERY} pool ids, got ${describe(value)}.`);
  }
  return value.map((id, i) => checkPoolId(id, `${field}[${i}]`));
}

export function parseQueryRequest(body: unknown): QueryRequest | UnionQueryRequest {
  const obj = requireObject(body);
  const union = obj.poolIds !== undefined;
  if (union && obj.poolId !== undefined) throw invalidRequest('poolIds', 'Send either poolId or poolIds, not both.');
  const poolId = union ? -1 : checkPoolId(obj.poolId);
  const poolIds = union ? checkPoolIdList(obj.poolIds) : null;
  const method = checkMethod(obj.method);
  const { percentiles, many } = checkPercentileChoice(obj);
  if (poolIds !== null) return { poolIds, percentiles, many, method };
  return { poolId, percentiles, many, method };
}

/** A query's `percentile` (one) or `percentiles` (a list): exactly one of them. `many`: the list was sent. */
export function checkPercentileChoice(obj: Record<string, unknown>): { percentiles: number[]; many: boolean } {
  const hasOne = obj.percentile !== undefined;
  const many = obj.percentiles !== undefined;
  if (hasOne && many) throw invalidRequest('percentiles', 'Send either percentile or percentiles, not both.');
  if (!hasOne && !many) throw invalidRequest('percentile', 'percentile is required (or percentiles, a list).');
  const percentiles = many ? checkPercentileList(obj.percentiles, 'percentiles') : [checkPercentile(obj.percentile, 'percentile')];
  return { percentiles, many };
}

/** `?pools=1,2,3` → [1, 2, 3]. */
export function parsePoolsQuery(text: string | null): number[] {
  if (text === null || text === '') throw invalidRequest('pools', 'Query parameter pools is required, e.g. ?pools=1,2,3.');
  const parts = text.split(',');
  if (parts.length > MAX_POOLS_PER_QUERY) {
    throw invalidRequest('pools', `pools may hold at most ${MAX_POOLS_PER_QUERY} pool ids, got ${parts.length}.`);
  }
  return parts.map((part, i) => parsePoolIdText(part.trim(), `pools[${i}]`));
}

export function checkWindowSeconds(value: unknown, field = 'windowSeconds'): number {
  if (!isValidWindowSeconds(value)) throw invalidRequest(field, `${windowRuleText(field)}, got ${describe(value)}.`);
  return value;
}

/** The body of PUT /pools/{poolId}/retention: {"windowSeconds": W}. */
export function parseRetentionRequest(body: unknown): number {
  const obj = requireObject(body);
  if (obj.windowSeconds === undefined)
    throw invalidRequest('windowSeconds', 'windowSeconds is required (DELETE the retention to keep every value).');
  return checkWindowSeconds(obj.windowSeconds);
}

/** `?windowSeconds=300` on the request that creates a pool; null when absent. */
export function parseWindowQuery(text: string | null): number | null {
  if (text === null) return null;
  return checkWindowSeconds(/^\d{1,10}$/.test(text) ? Number(text) : text);
}

/** `?p=50,90,99.5` → [50, 90, 99.5]. */
export function parsePercentileQuery(text: string | null): number[] {
  if (text === null || text === '') throw invalidRequest('p', 'Query parameter p is required, e.g. ?p=50,90,99.5.');
  const parts = text.split(',');
  if (parts.length > MAX_PERCENTILES_PER_QUERY) {
    throw invalidRequest('p', `p may hold at most ${MAX_PERCENTILES_PER_QUERY} percentiles, got ${parts.length}.`);
  }
  return parts.map((part, i) => {
    const t = part.trim();
    const n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) ? Number(t) : NaN;
    return checkPercentile(Number.isNaN(n) ? t : n, `p[${i}]`);
  });
}

/**
 * Each query parameter at most once: `?p=50&p=90` is refused rather than
 * silently reading the first (several percentiles go in one p, comma-separated).
 */
export function checkSingleParams(params: URLSearchParams, names: readonly string[]): void {
  for (const name of names) {
    const n = params.getAll(name).length;
    if (n > 1)
      throw invalidRequest(
        name,
        `Query parameter ${name} may appear once, got ${n} times${name === 'p' ? '; list several percentiles as p=50,90,99' : ''}.`,
      );
  }
}

export function parseListQuery(params: URLSearchParams): { limit: number; after: number | null } {
  checkSingleParams(params, ['limit', 'after']);
  const limitText = params.get('limit');
  let limit = DEFAULT_LIST_LIMIT;
  if (limitText !== null) {
    limit = /^\d{1,6}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_LIST_LIMIT)) {
      throw invalidRequest('limit', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${JSON.stringify(limitText)}.`);
    }
  }
  const afterText = params.get('after');
  const after = afterText === null || afterText === '' ? null : parsePoolIdText(afterText, 'after');
  return { limit, after };
}
