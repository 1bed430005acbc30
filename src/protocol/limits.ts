// The limits every request is held to, in one place: the parsers enforce them,
// the route table and the OpenAPI document state them, and the pool-id rule
// comes from src/core/pool-id.ts so that every layer shares one definition.

import { parseSize, SETTINGS } from '../config.js';

export { isValidPoolId, MAX_POOL_ID, poolIdRuleText } from '../core/pool-id.js';
export { MAX_POOLS_PER_QUERY } from '../core/engine.js';
export { MAX_WINDOW_SECONDS } from '../core/time-window.js';

/** Percentiles one query may ask for (POST /query `percentiles`, GET …/quantiles `p`). */
export const MAX_PERCENTILES_PER_QUERY = 1000;

/** Page size of GET /pools: the default and the largest a client may ask for. */
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

/** Longest piece of a bad string value a validation message quotes back (the rest becomes "…"). */
export const ECHO_MAX_CHARS = 40;

/** `text` as a JSON string for an error message, cut to `max` characters so a huge input is never echoed whole. */
export function echo(text: string, max = ECHO_MAX_CHARS): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** The request-body limit without --max-body (the settings table in config.ts holds the text). */
export const DEFAULT_MAX_BODY_BYTES = parseSize(SETTINGS.maxBody.default)!;

/** /query bodies are a few numbers; a limit of their own keeps a huge nested body from holding the event loop in JSON.parse. */
export const MAX_QUERY_BODY_BYTES = 64 << 10;
