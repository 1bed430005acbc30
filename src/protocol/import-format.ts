// What an import is asked to do (POST /imports?poolId=&format=&column=, or
// `--import FILE --import-pool ID` at start-up), and what parsing a file
// yields. The parsing itself runs on a worker thread (src/workers), which is
// why its interface lives here, below both the HTTP layer that asks for it and
// the worker layer that does it.

import { invalidRequest } from '../core/errors.js';
import { isValidPoolId, poolIdRuleText } from '../core/pool-id.js';
import type { SortedRun } from '../core/sorted-run.js';

export const IMPORT_FORMATS = ['csv', 'ndjson', 'f64'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

export type ImportState = 'queued' | 'running' | 'done' | 'failed';

/** What GET /imports/{jobId} and the /ws import topic report of a job. */
export interface ImportJobView {
  jobId: string;
  state: ImportState;
  format: ImportFormat;
  /** The pool every value goes to, or null when rows name their pools. */
  poolId: number | null;
  /** Bytes of the file parsed so far, and its size. */
  bytes: number;
  bytesTotal: number;
  /** Values parsed so far; once done, the values imported. */
  values: number;
  /** Pools the import added to (once done). */
  pools: number;
  /** Why it failed; `line` is the first bad line (CSV, NDJSON) or value (f64). */
  error: { message: string; line?: number } | null;
}

/** The CSV header name that sends each row to its own pool. */
export const POOL_ID_COLUMN = 'poolId';

export interface ImportOptions {
  format: ImportFormat;
  /** Every value goes to this pool; null: each row names its pool (a CSV `poolId` column, NDJSON objects). */
  poolId: number | null;
  /** CSV: the value column, by header name or 0-based index; null: the first column that is not `poolId`. */
  column: string | number | null;
}

export interface ParsedPool {
  poolId: number;
  /** Sorted, finite; on a SharedArrayBuffer when large (like any engine run). */
  values: SortedRun;
  /** CRC32C of the values' bytes, computed where they were sorted, so the log need not hash them on the event loop. */
  crc: number;
}

export interface ImportProgress {
  /** Bytes of the file parsed so far. */
  bytes: number;
  /** Values found so far. */
  values: number;
}

export type ImportParseResult =
  | { ok: true; pools: ParsedPool[]; bytes: number; values: number }
  /** `line`: 1-based line (CSV, NDJSON) or value number (f64) of the first bad input. */
  | { ok: false; line: number; message: string; bytes: number; values: number };

/** Parses a whole file off the event loop, reporting progress now and then. */
export type ImportParser = (
  file: string,
  options: ImportOptions,
  onProgress: (progress: ImportProgress) => void,
) => Promise<ImportParseResult>;

/** `?poolId=7&format=csv&column=latency` → options; bad parameters → invalid_request naming them. */
export function parseImportQuery(params: URLSearchParams): ImportOptions {
  const formatText = params.get('format') ?? 'csv';
  if (!(IMPORT_FORMATS as readonly string[]).includes(formatText)) {
    throw invalidRequest('format', `format must be one of ${IMPORT_FORMATS.join(', ')}, got ${JSON.stringify(formatText)}.`);
  }
  const format = formatText as ImportFormat;
  const idText = params.get('poolId');
  let poolId: number | null = null;
  if (idText !== null && idText !== '') {
    poolId = /^\d{1,16}$/.test(idText) ? Number(idText) : NaN;
    if (!isValidPoolId(poolId)) throw invalidRequest('poolId', `${poolIdRuleText()}, got ${JSON.stringify(idText)}.`);
  }
  if (poolId === null && format === 'f64') throw invalidRequest('poolId', 'poolId is required for format f64 (raw values name no pool).');
  const columnText = params.get('column');
  let column: string | number | null = null;
  if (columnText !== null && columnText !== '') {
    if (format !== 'csv') throw invalidRequest('column', 'column applies to format csv only.');
    column = /^\d{1,6}$/.test(columnText) ? Number(columnText) : columnText;
  }
  return { format, poolId, column };
}
