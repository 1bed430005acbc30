// POST /batch bodies: NDJSON, one {"poolId": n, "poolValues": [...]} per line,
// parsed while the body streams in. Memory stays bounded by the limits below
// whatever the body's size: at most one partial line is buffered (≤ maxLineBytes),
// and parsed values are kept as float64 (≤ maxValues of them). Every line is
// validated before the caller applies anything (all or nothing); the first bad
// line stops the parse with a 400 naming it (1-based) in `field` as
// `line[N]` or `line[N].poolValues[3]`. Blank lines are skipped; lines may end
// in \r\n. Lines for the same pool are combined into one append.

import { invalidRequest, PoolqError } from '../core/errors.js';
import { allocateBatch } from '../core/sorted-run.js';
import { parseAddBodyFast } from './bulk-parse.js';
import { parseAddRequest, parseJson } from './validate.js';

export interface BatchLimits {
  /** Longest line in bytes (a JSON parse of one line holds the event loop; 1 MiB parses in a few ms). */
  maxLineBytes: number;
  /** Most lines (appends) in one batch. */
  maxLines: number;
  /** Most values in one batch, over all lines. */
  maxValues: number;
}

export const DEFAULT_BATCH_LIMITS: Readonly<BatchLimits> = Object.freeze({
  maxLineBytes: 1 << 20,
  maxLines: 100_000,
  maxValues: 1 << 22,
});

export interface BatchEntry {
  poolId: number;
  values: Float64Array;
}

export interface ParsedBatch {
  /** One entry per distinct pool, in order of first appearance. */
  entries: BatchEntry[];
  lines: number;
  values: number;
}

const NEWLINE = 0x0a;
const CR = 0x0d;

function isBlank(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}

export class NdjsonBatchParser {
  private readonly limits: BatchLimits;
  private partial: Buffer | null = null;
  private partialLength = 0;
  private lineNumber = 0;
  private lines = 0;
  private values = 0;
  private readonly pools = new Map<number, Float64Array[]>();

  constructor(limits: Partial<BatchLimits> = {}) {
    this.limits = { ...DEFAULT_BATCH_LIMITS, ...limits };
  }

  /** Feeds the next bytes of the body (read synchronously; nothing is kept but a copy of a trailing partial line). */
  push(chunk: Uint8Array): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl < 0) break;
      if (this.partialLength > 0) {
        this.appendPartial(chunk.subarray(start, nl));
        const line = this.partial!.subarray(0, this.partialLength);
        this.partialLength = 0;
        this.line(line);
      } else {
        this.line(chunk.subarray(start, nl));
      }
      start = nl + 1;
    }
    if (start < chunk.length) this.appendPartial(chunk.subarray(start));
  }

  /** The body ended: parses a last line without a newline and returns every entry. */
  end(): ParsedBatch {
    if (this.partialLength > 0) {
      const line = this.partial!.subarray(0, this.partialLength);
      this.partialLength = 0;
      this.line(line);
    }
    if (this.lines === 0)
      throw invalidRequest('line[1]', 'Line 1: the batch holds no lines; send one {"poolId": n, "poolValues": [...]} per line.');
    const entries: BatchEntry[] = [];
    for (const [poolId, parts] of this.pools) {
      if (parts.length === 1) {
        entries.push({ poolId, values: parts[0] });
        continue;
      }
      let n = 0;
      for (const p of parts) n += p.length;
      const values = allocateBatch(n);
      let at = 0;
      for (const p of parts) {
        values.set(p, at);
        at += p.length;
      }
      entries.push({ poolId, values });
    }
    return { entries, lines: this.lines, values: this.values };
  }

  private appendPartial(bytes: Uint8Array): void {
    const needed = this.partialLength + bytes.length;
    if (needed > this.limits.maxLineBytes) {
      const n = this.lineNumber + 1;
      throw invalidRequest(
        `line[${n}]`,
        `Line ${n}: longer than ${this.limits.maxLineBytes} bytes; split it, or send large batches as application/octet-stream to /pools/{poolId}/values.`,
      );
    }
    if (this.partial === null || this.partial.length < needed) {
      const grown = Buffer.allocUnsafe(Math.min(this.limits.maxLineBytes, Math.max(needed, 2 * (this.partial?.length ?? 4096))));
      if (this.partial !== null) this.partial.copy(grown, 0, 0, this.partialLength);
      this.partial = grown;
    }
    this.partial.set(bytes, this.partialLength);
    this.partialLength = needed;
  }

  private line(bytes: Uint8Array): void {
    const n = ++this.lineNumber;
    if (bytes.length > this.limits.maxLineBytes) {
      throw invalidRequest(
        `line[${n}]`,
        `Line ${n}: longer than ${this.limits.maxLineBytes} bytes; split it, or send large batches as application/octet-stream to /pools/{poolId}/values.`,
      );
    }
    if (isBlank(bytes)) return;
    let request;
    try {
      request = parseAddBodyFast(bytes) ?? parseAddRequest(parseJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
    } catch (err) {
      if (!(err instanceof PoolqError)) throw err;
      const field = err.field === undefined || err.field === '$' ? `line[${n}]` : `line[${n}].${err.field}`;
      throw new PoolqError(err.code, `Line ${n}: ${err.message.replace('The request body', 'the line')}`, field);
    }
    if (++this.lines > this.limits.maxLines) {
      throw invalidRequest(`line[${n}]`, `Line ${n}: a batch holds at most ${this.limits.maxLines} lines.`);
    }
    this.values += request.values.length;
    if (this.values > this.limits.maxValues) {
      throw invalidRequest(
        `line[${n}]`,
        `Line ${n}: a batch holds at most ${this.limits.maxValues} values in all, and this line goes past it.`,
      );
    }
    const parts = this.pools.get(request.poolId);
    if (parts === undefined) this.pools.set(request.poolId, [request.values]);
    else parts.push(request.values);
  }
}
