// A byte-level fast path for large append bodies — {"poolId": n, "poolValues": [...]}
// and bare [...] arrays — that reads numbers straight from the request bytes
// into a Float64Array, and for the common /query body {"poolId": n, "percentile": p}
// (parseQueryBodyFast, at the end). The general path (JSON.parse of body.toString())
// builds a 10 MB string and a million-element JS array for a 10⁶-value body, and
// on two cores the worker's ~100 ms of JSON.parse is CPU taken from the event
// loop (docs/performance.md).
//
// The fast path only ever accepts bodies the general path accepts, with the
// same result: anything it does not recognise — other keys, duplicate keys,
// strings, nested values, bad syntax, an empty array, an invalid poolId, a
// number it cannot convert exactly — returns null, and the caller runs the
// general path, which also produces every error message. Numbers are converted
// exactly: an integer mantissa below 2^53 scaled by an exact power of ten
// (|k| ≤ 22) is one correctly rounded IEEE multiplication or division, the
// same double JSON.parse returns (Clinger's fast path); every other number
// goes through Number() on its own text, which is the conversion JSON.parse uses.

import { allocateRun } from '../core/sorted-run.js';
import { isValidPoolId } from './limits.js';
import type { AddRequest, QueryRequest } from './validate.js';

const POW10: number[] = [];
for (let i = 0, p = 1; i <= 22; i++, p *= 10) POW10.push(p);
const TWO_53 = 2 ** 53;

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

/** Thrown inside the parser when the fast path gives up; never escapes this module. */
const GIVE_UP = new Error('bulk-parse: not the fast path');

class Reader {
  pos = 0;
  /** The same bytes as a Buffer, for latin1 slices of tokens (keys, numbers that need Number()); made when first needed. */
  private textView: Buffer | null = null;

  constructor(readonly bytes: Uint8Array) {}

  private get text(): Buffer {
    const b = this.bytes;
    return (this.textView ??= Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  /** Where the last key read with keySpan() starts and ends (its bytes, without quotes). */
  private keyStart = 0;
  private keyEnd = 0;

  /** Reads a JSON key without making a string (keyIs() compares it); escapes give up. */
  keySpan(): void {
    this.expect(QUOTE);
    const b = this.bytes;
    let p = this.pos;
    while (p < b.length && b[p] !== QUOTE) {
      if (b[p] === 0x5c) throw GIVE_UP; // a backslash escape: the general path decodes it
      p++;
    }
    if (p >= b.length) throw GIVE_UP;
    this.keyStart = this.pos;
    this.keyEnd = p;
    this.pos = p + 1;
  }

  /** Whether the key keySpan() read is exactly `name` (ASCII bytes). */
  keyIs(name: Uint8Array): boolean {
    const b = this.bytes;
    const start = this.keyStart;
    if (this.keyEnd - start !== name.length) return false;
    for (let i = 0; i < name.length; i++) if (b[start + i] !== name[i]) return false;
    return true;
  }

  skipSpace(): void {
    const b = this.bytes;
    let p = this.pos;
    while (p < b.length) {
      const c = b[p];
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) break;
      p++;
    }
    this.pos = p;
  }

  expect(c: number): void {
    this.skipSpace();
    if (this.bytes[this.pos] !== c) throw GIVE_UP;
    this.pos++;
  }

  /** A JSON key made of plain ASCII letters (no escapes); anything else gives up. */
  key(): string {
    this.expect(QUOTE);
    const start = this.pos;
    const b = this.bytes;
    while (this.pos < b.length && b[this.pos] !== QUOTE) {
      const c = b[this.pos];
      if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a))) throw GIVE_UP;
      this.pos++;
    }
    if (this.pos >= b.length) throw GIVE_UP;
    const key = this.text.toString('latin1', start, this.pos);
    this.pos++;
    return key;
  }

  /** One JSON number, converted exactly (see the top of the file). */
  number(): number {
    this.skipSpace();
    const b = this.bytes;
    const start = this.pos;
    let p = start;
    let negative = false;
    if (b[p] === MINUS) {
      negative = true;
      p++;
    }
    let mantissa = 0;
    let digits = 0; // significant digits accumulated into mantissa
    let exact = true; // mantissa still holds every digit exactly
    let scale = 0; // power of ten to apply to mantissa
    // int part: 0 | [1-9][0-9]*
    if (b[p] === ZERO) {
      p++;
    } else if (b[p] > ZERO && b[p] <= NINE) {
      while (b[p] >= ZERO && b[p] <= NINE) {
        if (digits < 15) {
          mantissa = mantissa * 10 + (b[p] - ZERO);
          if (mantissa !== 0) digits++;
        } else {
          exact = false;
        }
        p++;
      }
    } else {
      throw GIVE_UP;
    }
    if (b[p] === DOT) {
      p++;
      if (!(b[p] >= ZERO && b[p] <= NINE)) throw GIVE_UP;
      while (b[p] >= ZERO && b[p] <= NINE) {
        if (digits < 15) {
          mantissa = mantissa * 10 + (b[p] - ZERO);
          if (mantissa !== 0) digits++;
          scale--;
        } else {
          exact = false;
        }
        p++;
      }
    }
    if (b[p] === LOWER_E || b[p] === UPPER_E) {
      p++;
      let expNegative = false;
      if (b[p] === PLUS || b[p] === MINUS) {
        expNegative = b[p] === MINUS;
        p++;
      }
      if (!(b[p] >= ZERO && b[p] <= NINE)) throw GIVE_UP;
      let exp = 0;
      while (b[p] >= ZERO && b[p] <= NINE) {
        if (exp < 1e6) exp = exp * 10 + (b[p] - ZERO);
        p++;
      }
      scale += expNegative ? -exp : exp;
    }
    this.pos = p;
    let value: number;
    if (exact && mantissa < TWO_53 && scale >= -22 && scale <= 22) {
      value = scale >= 0 ? mantissa * POW10[scale] : mantissa / POW10[-scale];
    } else {
      value = Number(this.text.toString('latin1', negative ? start + 1 : start, p));
    }
    if (!Number.isFinite(value)) throw GIVE_UP; // 1e400: the general path names the field
    return negative ? -value : value;
  }

  /** A non-empty array of numbers into a new run. */
  numbers(): Float64Array {
    this.expect(OPEN_BRACKET);
    // Count the elements first (commas before the closing bracket) so the run is
    // allocated once at its exact size.
    const b = this.bytes;
    let count = 1;
    let end = this.pos;
    while (end < b.length && b[end] !== CLOSE_BRACKET) {
      if (b[end] === COMMA) count++;
      end++;
    }
    if (end >= b.length) throw GIVE_UP;
    const out = allocateRun(count);
    for (let i = 0; i < count; i++) {
      out[i] = this.number();
      this.skipSpace();
      if (i + 1 < count) {
        if (b[this.pos] !== COMMA) throw GIVE_UP;
        this.pos++;
      }
    }
    if (this.pos !== end) throw GIVE_UP; // e.g. "[]" or "[1,]": the general path explains
    this.pos++;
    return out;
  }

  end(): void {
    this.skipSpace();
    if (this.pos !== this.bytes.length) throw GIVE_UP;
  }
}

/** {"poolId": n, "poolValues": [...]} (either key order), or null: use the general path. */
export function parseAddBodyFast(bytes: Uint8Array): AddRequest | null {
  const r = new Reader(bytes);
  try {
    r.expect(OPEN_BRACE);
    let poolId: number | null = null;
    let values: Float64Array | null = null;
    for (let i = 0; i < 2; i++) {
      if (i === 1) r.expect(COMMA);
      const key = r.key();
      r.expect(COLON);
      if (key === 'poolId' && poolId === null) poolId = r.number();
      else if (key === 'poolValues' && values === null) values = r.numbers();
      else throw GIVE_UP;
    }
    r.expect(CLOSE_BRACE);
    r.end();
    if (poolId === null || values === null) throw GIVE_UP;
    if (!isValidPoolId(poolId) || Object.is(poolId, -0)) throw GIVE_UP; // the general path turns -0 into 0
    return { poolId, values };
  } catch (err) {
    if (err === GIVE_UP) return null;
    throw err;
  }
}

/** A bare non-empty [...] of numbers, or null: use the general path. */
export function parseValuesBodyFast(bytes: Uint8Array): Float64Array | null {
  const r = new Reader(bytes);
  try {
    const values = r.numbers();
    r.end();
    return values;
  } catch (err) {
    if (err === GIVE_UP) return null;
    throw err;
  }
}

const POOL_ID_KEY = Buffer.from('poolId', 'latin1');
const PERCENTILE_KEY = Buffer.from('percentile', 'latin1');

/**
 * {"poolId": n, "percentile": p} (either key order, p in [0, 100]), or null:
 * use the general path (other keys such as percentiles or method, and every
 * error). The /query body is small, and this path is for its per-request
 * cost: JSON.parse of body.toString() plus the validator spend a third of their
 * time making strings and an object only to read two numbers; this path takes
 * about a third of their time (docs/decisions/validation.md).
 */
export function parseQueryBodyFast(bytes: Uint8Array): QueryRequest | null {
  const r = new Reader(bytes);
  try {
    r.expect(OPEN_BRACE);
    let poolId = -1;
    let percentile = -1;
    for (let i = 0; i < 2; i++) {
      if (i === 1) r.expect(COMMA);
      r.keySpan();
      r.expect(COLON);
      if (r.keyIs(POOL_ID_KEY) && poolId === -1) {
        poolId = r.number();
        if (!isValidPoolId(poolId) || Object.is(poolId, -0)) throw GIVE_UP; // the general path turns -0 into 0
      } else if (r.keyIs(PERCENTILE_KEY) && percentile === -1) {
        percentile = r.number();
        if (!(percentile >= 0 && percentile <= 100)) throw GIVE_UP;
      } else {
        throw GIVE_UP;
      }
    }
    r.expect(CLOSE_BRACE);
    r.end();
    return { poolId, percentiles: [percentile], many: false, method: 'linear' };
  } catch (err) {
    if (err === GIVE_UP) return null;
    throw err;
  }
}
