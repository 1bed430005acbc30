// Streaming scanners for imported files: bytes go in chunk by chunk, values
// come out into a PoolValues sink, and the first bad line stops the scan with
// an ImportLineError naming it. Nothing holds more than one partial record
// between chunks, so a file of any size streams through in constant memory
// (apart from the values themselves).
//
// CSV (RFC 4180): fields separated by ',', records by LF or CRLF, fields in
// double quotes may hold ',', line breaks and "" for a quote. The first record
// is a header when its value field (the column given by index, else the
// first) is not a number, or when the column is given by name. The value
// column is picked by header name or 0-based index (default: the first column
// that is not `poolId`); a `poolId` column sends each row to its own pool unless the
// import names one pool for everything. Blank lines are skipped; spaces and
// tabs around a number are allowed.
//
// Hand-written rather than csv-parse: on a 10^7-row file this scanner was
// several times faster (docs/performance.md, `npm run bench:import`), and it
// only ever decodes the one or two fields it needs.

import { isValidPoolId, poolIdRuleText } from '../core/pool-id.js';
import { allocateRun } from '../core/sorted-run.js';
import { POOL_ID_COLUMN, type ImportOptions } from './import-format.js';
import { parseNumberBytes } from './number-text.js';

export class ImportLineError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'ImportLineError';
  }
}

/** Longest CSV record: a longer one (an unclosed quote, a file that is not CSV) fails instead of being rescanned per chunk. */
export const MAX_CSV_RECORD_BYTES = 1 << 20;
/** Longest NDJSON line (the default --max-body of one /add). */
export const MAX_NDJSON_LINE_BYTES = 16 << 20;

const FIRST_CHUNK_VALUES = 1 << 16;
const MAX_CHUNK_VALUES = 1 << 20;

/** One pool's values in a list of chunks: growing never copies what is already there. */
class ValueChunks {
  private readonly chunks: Float64Array[] = [];
  private current: Float64Array = new Float64Array(FIRST_CHUNK_VALUES);
  private used = 0;
  length = 0;

  push(value: number): void {
    if (this.used === this.current.length) {
      this.chunks.push(this.current);
      this.current = new Float64Array(Math.min(MAX_CHUNK_VALUES, this.current.length * 2));
      this.used = 0;
    }
    this.current[this.used++] = value;
    this.length++;
  }

  /** All values in one array of exactly `length` (shared when large, like an engine run). */
  toArray(): Float64Array {
    const out = allocateRun(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    out.set(this.current.subarray(0, this.used), offset);
    return out;
  }
}

/** Values found so far, by pool. */
export class PoolValues {
  private readonly pools = new Map<number, ValueChunks>();
  private lastId = -1;
  private last: ValueChunks | null = null;
  count = 0;

  add(poolId: number, value: number): void {
    if (poolId !== this.lastId) {
      let chunks = this.pools.get(poolId);
      if (chunks === undefined) {
        chunks = new ValueChunks();
        this.pools.set(poolId, chunks);
      }
      this.last = chunks;
      this.lastId = poolId;
    }
    this.last!.push(value);
    this.count++;
  }

  /** Each pool's values in one array, in ascending pool id order. */
  *arrays(): Iterable<{ poolId: number; values: Float64Array }> {
    for (const poolId of [...this.pools.keys()].sort((a, b) => a - b)) yield { poolId, values: this.pools.get(poolId)!.toArray() };
  }
}

export interface Scanner {
  /** Scans a chunk; the scanner copies what it keeps of it. Throws ImportLineError. */
  push(chunk: Uint8Array): void;
  /** The input ended: scans what is left. Throws ImportLineError. */
  end(): void;
}

export function createScanner(options: ImportOptions, sink: PoolValues): Scanner {
  switch (options.format) {
    case 'csv':
      return new CsvScanner(options, sink);
    case 'ndjson':
      return new NdjsonScanner(options, sink);
    case 'f64':
      return new F64Scanner(options.poolId!, sink);
  }
}

const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}

/**
 * Bytes left over from the previous chunk, joined with the next one; always a
 * plain Uint8Array (a Buffer here too made the scan loops polymorphic).
 */
function joined(leftover: Uint8Array | null, chunk: Uint8Array): Uint8Array {
  if (leftover === null || leftover.length === 0) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const out = new Uint8Array(leftover.length + chunk.length);
  out.set(leftover);
  out.set(chunk, leftover.length);
  return out;
}

const utf8 = new TextDecoder();

function describeField(bytes: Uint8Array, start: number, end: number): string {
  const text = utf8.decode(bytes.subarray(start, Math.min(end, start + 40)));
  return JSON.stringify(end - start > 40 ? `${text}…` : text);
}

/** Field boundaries of one record, reused across records. */
interface Fields {
  count: number;
  starts: number[];
  ends: number[];
  /** Quoted with "" inside: the raw bytes are not the field's text. */
  escaped: boolean[];
}

class CsvScanner implements Scanner {
  private leftover: Uint8Array | null = null;
  /** Line number at the start of the unscanned input (1-based). */
  private line = 1;
  private sawFirstRecord = false;
  private valueColumn = -1;
  private poolColumn = -1;
  private readonly fields: Fields = { count: 0, starts: [], ends: [], escaped: [] };

  constructor(
    private readonly options: ImportOptions,
    private readonly sink: PoolValues,
  ) {}

  push(chunk: Uint8Array): void {
    const bytes = joined(this.leftover, chunk);
    const consumed = this.scan(bytes, false);
    this.leftover = consumed === bytes.length ? null : bytes.slice(consumed);
    if (this.leftover !== null && this.leftover.length > MAX_CSV_RECORD_BYTES) {
      throw new ImportLineError(this.line, `the record is longer than ${MAX_CSV_RECORD_BYTES} bytes (an unclosed quote?).`);
    }
  }

  end(): void {
    if (this.leftover !== null) this.scan(this.leftover, true);
    this.leftover = null;
  }

  /** Scans whole records of `bytes` (the last one too when `final`); returns the bytes consumed. */
  private scan(bytes: Uint8Array, final: boolean): number {
    const n = bytes.length;
    const f = this.fields;
    let p = 0;
    while (p < n) {
      const recordStart = p;
      const recordLine = this.line;
      let newlines = 0;
      f.count = 0;
      let complete = false;
      for (;;) {
        let start = p;
        let end: number;
        let escaped = false;
        if (p < n && bytes[p] === QUOTE) {
          p++;
          start = p;
          for (;;) {
            while (p < n && bytes[p] !== QUOTE) {
              if (bytes[p] === LF) newlines++;
              p++;
            }
            if (p + 1 < n && bytes[p + 1] === QUOTE) {
              escaped = true;
              p += 2;
              continue;
            }
            break;
          }
          if (p >= n || (p + 1 >= n && !final)) break; // the closing quote or what follows it is in the next chunk
          end = p;
          p++;
          while (p < n && isBlank(bytes[p])) p++;
          if (p < n && bytes[p] !== COMMA && bytes[p] !== LF && bytes[p] !== CR) {
            throw new ImportLineError(recordLine + newlines, 'a quoted field must be followed by a comma or the end of the line.');
          }
        } else {
          while (p < n) {
            const c = bytes[p];
            if (c === COMMA || c === LF || c === CR) break;
            if (c === QUOTE) throw new ImportLineError(recordLine + newlines, 'a quote may only open a field.');
            p++;
          }
          end = p;
        }
        f.starts[f.count] = start;
        f.ends[f.count] = end;
        f.escaped[f.count] = escaped;
        f.count++;
        if (p < n && bytes[p] === COMMA) {
          p++;
          continue;
        }
        if (p < n && bytes[p] === CR) {
          if (p + 1 >= n && !final) break;
          p += p + 1 < n && bytes[p + 1] === LF ? 2 : 1;
          complete = true;
        } else if (p < n) {
          p++; // LF
          complete = true;
        } else {
          complete = final;
        }
        break;
      }
      if (!complete) return recordStart;
      this.line = recordLine + newlines + 1;
      if (f.count === 1 && f.starts[0] === f.ends[0]) continue; // a blank line
      this.record(bytes, recordLine);
    }
    return p;
  }

  private record(bytes: Uint8Array, line: number): void {
    const f = this.fields;
    if (!this.sawFirstRecord) {
      this.sawFirstRecord = true;
      if (this.firstRecord(bytes, line)) return; // a header
    }
    const col = this.valueColumn;
    if (col >= f.count) throw new ImportLineError(line, `the line has ${f.count} fields; the value column is number ${col} (0-based).`);
    let poolId = this.options.poolId!;
    if (this.poolColumn >= 0) {
      const pc = this.poolColumn;
      if (pc >= f.count)
        throw new ImportLineError(line, `the line has ${f.count} fields; the ${POOL_ID_COLUMN} column is number ${pc} (0-based).`);
      poolId = this.number(bytes, pc);
      if (!isValidPoolId(poolId))
        throw new ImportLineError(line, `${poolIdRuleText(POOL_ID_COLUMN)}, got ${describeField(bytes, f.starts[pc], f.ends[pc])}.`);
    }
    const value = this.number(bytes, col);
    if (Number.isNaN(value)) throw new ImportLineError(line, `${describeField(bytes, f.starts[col], f.ends[col])} is not a finite number.`);
    this.sink.add(poolId, value);
  }

  /** Field i as a number (NaN if it is not one), spaces around it allowed. */
  private number(bytes: Uint8Array, i: number): number {
    const f = this.fields;
    if (f.escaped[i]) return NaN;
    let start = f.starts[i];
    let end = f.ends[i];
    while (start < end && isBlank(bytes[start])) start++;
    while (end > start && isBlank(bytes[end - 1])) end--;
    return parseNumberBytes(bytes, start, end);
  }

  private text(bytes: Uint8Array, i: number): string {
    const f = this.fields;
    const text = utf8.decode(bytes.subarray(f.starts[i], f.ends[i])).trim();
    return f.escaped[i] ? text.replaceAll('""', '"') : text;
  }

  /** Settles the columns from the first record; true when it is a header. */
  private firstRecord(bytes: Uint8Array, line: number): boolean {
    const f = this.fields;
    const { column, poolId } = this.options;
    // The value field decides: a data file may well have text columns.
    const probe = typeof column === 'number' ? column : 0;
    const header = typeof column === 'string' || (probe < f.count && Number.isNaN(this.number(bytes, probe)));
    let allNumbers = true;
    for (let i = 0; i < f.count; i++) if (Number.isNaN(this.number(bytes, i))) allNumbers = false;
    if (typeof column === 'string' && allNumbers) {
      throw new ImportLineError(
        line,
        `column ${JSON.stringify(column)} names a header field, but the first line holds only numbers (no header).`,
      );
    }
    if (!header) {
      if (poolId === null)
        throw new ImportLineError(line, `the file has no header with a ${POOL_ID_COLUMN} column, so the import needs a poolId.`);
      this.valueColumn = column ?? 0;
      return false;
    }
    const names = Array.from({ length: f.count }, (_, i) => this.text(bytes, i));
    this.poolColumn = poolId === null ? names.indexOf(POOL_ID_COLUMN) : -1;
    if (poolId === null && this.poolColumn < 0) {
      throw new ImportLineError(
        line,
        `the header has no ${POOL_ID_COLUMN} column, so the import needs a poolId (header: ${names.join(', ')}).`,
      );
    }
    if (typeof column === 'string') {
      this.valueColumn = names.indexOf(column);
      if (this.valueColumn < 0)
        throw new ImportLineError(line, `the header has no column ${JSON.stringify(column)} (header: ${names.join(', ')}).`);
    } else if (typeof column === 'number') {
      this.valueColumn = column;
    } else {
      this.valueColumn = names.findIndex((name) => name !== POOL_ID_COLUMN || poolId !== null);
      if (this.valueColumn < 0) throw new ImportLineError(line, `the header has no value column besides ${POOL_ID_COLUMN}.`);
    }
    if (this.valueColumn === this.poolColumn) throw new ImportLineError(line, `the value column cannot be the ${POOL_ID_COLUMN} column.`);
    return true;
  }
}

/**
 * NDJSON: one JSON text per line — a number, an array of numbers, or an
 * object {"poolId"?, "poolValues"} like an /add body. The import's poolId
 * applies to lines that name none.
 */
class NdjsonScanner implements Scanner {
  private leftover: Uint8Array | null = null;
  private line = 1;

  constructor(
    private readonly options: ImportOptions,
    private readonly sink: PoolValues,
  ) {}

  push(chunk: Uint8Array): void {
    const bytes = joined(this.leftover, chunk);
    let start = 0;
    for (;;) {
      const nl = bytes.indexOf(LF, start);
      if (nl < 0) break;
      this.lineOf(bytes, start, nl);
      start = nl + 1;
    }
    this.leftover = start === bytes.length ? null : bytes.slice(start);
    if (this.leftover !== null && this.leftover.length > MAX_NDJSON_LINE_BYTES) {
      throw new ImportLineError(this.line, `the line is longer than ${MAX_NDJSON_LINE_BYTES} bytes.`);
    }
  }

  end(): void {
    if (this.leftover !== null) this.lineOf(this.leftover, 0, this.leftover.length);
    this.leftover = null;
  }

  private lineOf(bytes: Uint8Array, start: number, end: number): void {
    const line = this.line++;
    while (start < end && (isBlank(bytes[start]) || bytes[start] === CR)) start++;
    while (end > start && (isBlank(bytes[end - 1]) || bytes[end - 1] === CR)) end--;
    if (start === end) return;
    const first = bytes[start];
    if (first !== 0x5b && first !== 0x7b) {
      const value = parseNumberBytes(bytes, start, end);
      if (Number.isNaN(value))
        throw new ImportLineError(line, `${describeField(bytes, start, end)} is not a finite number, an array or an object.`);
      this.addTo(this.options.poolId, value, line);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8.decode(bytes.subarray(start, end)));
    } catch (err) {
      throw new ImportLineError(line, `not valid JSON: ${(err as Error).message}.`);
    }
    let poolId = this.options.poolId;
    let values: unknown = parsed;
    if (!Array.isArray(parsed)) {
      const obj = parsed as Record<string, unknown>;
      if (obj.poolId !== undefined) {
        if (!isValidPoolId(obj.poolId)) throw new ImportLineError(line, `${poolIdRuleText()}, got ${JSON.stringify(obj.poolId)}.`);
        poolId = obj.poolId;
      }
      values = obj.poolValues;
      if (!Array.isArray(values)) throw new ImportLineError(line, 'an object line needs poolValues, an array of numbers.');
    }
    const list = values as unknown[];
    for (let i = 0; i < list.length; i++) {
      const v = list[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ImportLineError(line, `value ${i} is not a finite number.`);
      this.addTo(poolId, v, line);
    }
  }

  private addTo(poolId: number | null, value: number, line: number): void {
    if (poolId === null) throw new ImportLineError(line, 'the line names no poolId and the import has none.');
    this.sink.add(poolId, value);
  }
}

/** Raw little-endian float64 values, 8 bytes each; "line" n is the n-th value. */
class F64Scanner implements Scanner {
  private leftover: Uint8Array | null = null;
  private index = 0;

  constructor(
    private readonly poolId: number,
    private readonly sink: PoolValues,
  ) {}

  push(chunk: Uint8Array): void {
    const bytes = joined(this.leftover, chunk);
    const whole = bytes.length - (bytes.length % 8);
    const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
    for (let o = 0; o < whole; o += 8) {
      const value = view.getFloat64(o, true);
      this.index++;
      if (value - value !== 0) throw new ImportLineError(this.index, `value ${this.index} is ${value}, not a finite number.`);
      this.sink.add(this.poolId, value);
    }
    this.leftover = whole === bytes.length ? null : bytes.slice(whole);
  }

  end(): void {
    if (this.leftover !== null) {
      throw new ImportLineError(this.index + 1, `the input ends with ${this.leftover.length} bytes, not a whole 8-byte value.`);
    }
  }
}
