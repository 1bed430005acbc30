// Query strings of the distribution reads: GET /pools/{poolId}/histogram
// ?bins=N&min=a&max=b and GET /pools/{poolId}/rank?value=x. Ranges and bin
// counts are checked by the engine (distribution.ts); this only reads numbers.

import { invalidRequest } from '../core/errors.js';
import { parseNumberText } from './number-text.js';

/** numpy.histogram's default bin count. */
export const DEFAULT_HISTOGRAM_BINS = 10;

export interface HistogramQuery {
  bins: number;
  range: { min?: number; max?: number };
}

function numberParam(params: URLSearchParams, name: string): number | undefined {
  const text = params.get(name);
  if (text === null || text === '') return undefined;
  const value = parseNumberText(text.trim());
  if (Number.isNaN(value)) throw invalidRequest(name, `${name} must be a finite number, got ${JSON.stringify(text)}.`);
  return value;
}

export function parseHistogramQuery(params: URLSearchParams): HistogramQuery {
  const bins = numberParam(params, 'bins') ?? DEFAULT_HISTOGRAM_BINS;
  const range: { min?: number; max?: number } = {};
  const min = numberParam(params, 'min');
  const max = numberParam(params, 'max');
  if (min !== undefined) range.min = min;
  if (max !== undefined) range.max = max;
  return { bins, range };
}

export function parseRankQuery(params: URLSearchParams): number {
  const value = numberParam(params, 'value');
  if (value === undefined) throw invalidRequest('value', 'Query parameter value is required, e.g. ?value=250.');
  return value;
}
