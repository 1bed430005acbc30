// The import scanners and number reader, without a server: CSV header
// detection, column choice, quoting, line endings, the first bad line, and the
// property that matters for streaming — however the input is cut into chunks,
// the values (and the error) are the same.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ImportOptions } from '../src/protocol/import-format.js';
import { createScanner, ImportLineError, PoolValues } from '../src/protocol/import-scanners.js';
import { parseNumberBytes, parseNumberText } from '../src/protocol/number-text.js';

const encoder = new TextEncoder();

/** Scans `text` cut at `cuts` (byte offsets) and returns the values by pool, or the error. */
function scan(
  text: string | Uint8Array,
  options: Partial<ImportOptions>,
  cuts: number[] = [],
): Record<number, number[]> | { line: number; message: string } {
  const bytes = typeof text === 'string' ? encoder.encode(text) : text;
  const sink = new PoolValues();
  const scanner = createScanner({ format: 'csv', poolId: 1, column: null, ...options }, sink);
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  try {
    let from = 0;
    for (const at of [...points, bytes.length]) {
      scanner.push(bytes.slice(from, at));
      from = at;
    }
    scanner.end();
  } catch (err) {
    if (err instanceof ImportLineError) return { line: err.line, message: err.message };
    throw err;
  }
  const out: Record<number, number[]> = {};
  for (const { poolId, values } of sink.arrays()) out[poolId] = Array.from(values);
  return out;
}

describe('CSV', () => {
  it('reads a single column without a header', () => {
    expect(scan('1\n2.5\n-3\n', {})).toEqual({ 1: [1, 2.5, -3] });
  });

  it('detects a header and picks the column by name', () => {
    expect(scan('host,latency\na,1.5\nb,2\n', { column: 'latency' })).toEqual({ 1: [1.5, 2] });
  });

  it('picks the column by 0-based index, with or without a header', () => {
    expect(scan('host,latency,size\na,1.5,10\nb,2,20\n', { column: 2 })).toEqual({ 1: [10, 20] });
    expect(scan('7,1.5,10\n8,2,20\n', { column: 1 })).toEqual({ 1: [1.5, 2] });
  });

  it('takes the first column by default, and the first other than poolId when rows name pools', () => {
    expect(scan('value,other\n3,x\n', {})).toEqual({ 1: [3] });
    expect(scan('poolId,value\n1,10\n2,20\n1,30\n', { poolId: null })).toEqual({ 1: [10, 30], 2: [20] });
  });

  it('lets one named pool take every row even when there is a poolId column', () => {
    expect(scan('poolId,value\n1,10\n2,20\n', { poolId: 9, column: 'value' })).toEqual({ 9: [10, 20] });
  });

  it('reads quoted fields: commas, quotes and line breaks inside, numbers in quotes', () => {
    const text = 'name,value\n"a, b",1\n"say ""hi""",2\n"two\nlines","3"\n';
    expect(scan(text, { column: 'value' })).toEqual({ 1: [1, 2, 3] });
    // a quoted header name with an escaped quote
    expect(scan('"the ""x""",y\n5,6\n', { column: 'the "x"' })).toEqual({ 1: [5] });
  });

  it('reads CRLF line endings, blank lines, spaces around numbers and a last line without a newline', () => {
    expect(scan('v\r\n1\r\n\r\n 2 \r\n\t3', {})).toEqual({ 1: [1, 2, 3] });
  });

  it('keeps -0 and reads every number form exactly as Number() does', () => {
    const values = ['-0', '0.1', '1e-7', '-1.5E+300', '.5', '5.', '+7', '123456789012345678', '0.30000000000000004', '4.9e-324'];
    const got = scan(values.join('\n'), {}) as Record<number, number[]>;
    expect(got[1].map((v) => (Object.is(v, -0) ? '-0' : String(v)))).toEqual(
      values.map((t) => (Object.is(Number(t), -0) ? '-0' : String(Number(t)))),
    );
  });

  it('names the first bad line: a word, an empty field, a missing column, NaN, Infinity, 1e400', () => {
    expect(scan('v\n1\nabc\n2\n', {})).toMatchObject({ line: 3 });
    expect(scan('1,2\n3,\n', { column: 1 })).toMatchObject({ line: 2 });
    expect(scan('1,2\n3\n', { column: 1 })).toMatchObject({ line: 2, message: expect.stringContaining('1 fields') });
    for (const bad of ['NaN', 'Infinity', '1e400', '0x10', '1 2']) expect(scan(`1\n${bad}\n`, {})).toMatchObject({ line: 2 });
  });

  it('counts lines inside quoted fields when naming a bad line', () => {
    expect(scan('v\n"1"\n"two\nlines"\nx\n', { column: 0 })).toMatchObject({ line: 3 });
    expect(scan('v\n"a\nb",1\nbad,2\n', { column: 0 })).toMatchObject({ line: 2 });
  });

  it('refuses a column that does not exist, a name without a header, and rows without a pool', () => {
    expect(scan('a,b\n1,2\n', { column: 'c' })).toMatchObject({ line: 1, message: expect.stringContaining('no column "c"') });
    expect(scan('1,2\n', { column: 'b' })).toMatchObject({ line: 1 });
    expect(scan('a,b\n1,2\n', { poolId: null })).toMatchObject({ line: 1, message: expect.stringContaining('poolId') });
    expect(scan('poolId,v\n-1,2\n', { poolId: null })).toMatchObject({ line: 2 });
  });

  it('gives the same values and errors however the input is cut into chunks', () => {
    const row = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.boolean());
    fc.assert(
      fc.property(
        fc.array(row, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(2000), { maxLength: 12 }),
        fc.option(fc.nat(39)),
        (rows, cuts, badAt) => {
          const lines = ['poolId,"value, quoted",note'];
          rows.forEach(([pool, value, quote, crlf], i) => {
            const v = i === badAt ? 'oops' : String(value);
            lines.push(`${pool},${quote ? `"${v}"` : v},"x${crlf ? '\r\n' : ','}y"${crlf ? '\r' : ''}`);
          });
          const text = lines.join('\n');
          const whole = scan(text, { poolId: null, column: 1 });
          expect(scan(text, { poolId: null, column: 1 }, cuts)).toEqual(whole);
          if (badAt !== null && badAt < rows.length) expect(whole).toMatchObject({ line: expect.any(Number) });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('NDJSON', () => {
  it('reads numbers, arrays and {poolId, poolValues} objects', () => {
    const text = '1\n[2, 3]\n{"poolId": 4, "poolValues": [5]}\n\n{"poolValues": [6]}\n';
    expect(scan(text, { format: 'ndjson' })).toEqual({ 1: [1, 2, 3, 6], 4: [5] });
  });

  it('names the first bad line', () => {
    expect(scan('1\n[1, "x"]\n', { format: 'ndjson' })).toMatchObject({ line: 2 });
    expect(scan('1\n{"poolValues": 3}\n', { format: 'ndjson' })).toMatchObject({ line: 2 });
    expect(scan('1\n2\n{oops\n', { format: 'ndjson' })).toMatchObject({ line: 3 });
    expect(scan('5\n', { format: 'ndjson', poolId: null })).toMatchObject({ line: 1 });
  });
});

describe('f64', () => {
  it('reads little-endian float64 values across chunk cuts', () => {
    const values = Float64Array.from([1.5, -0, 1e300, -2]);
    const bytes = new Uint8Array(values.buffer);
    expect(scan(bytes, { format: 'f64' }, [3, 9, 17])).toEqual({ 1: [1.5, -0, 1e300, -2] });
  });

  it('refuses a non-finite value and a ragged end', () => {
    expect(scan(new Uint8Array(Float64Array.from([1, NaN]).buffer), { format: 'f64' })).toMatchObject({ line: 2 });
    expect(scan(new Uint8Array(12), { format: 'f64' })).toMatchObject({ line: 2 });
  });
});

describe('parseNumberBytes', () => {
  it('equals Number() on every decimal it accepts, fast path or not', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 1, max: 17 }), (x, digits) => {
        for (const text of [String(x), x.toPrecision(digits), x.toExponential(Math.min(digits, 16) - 1), x.toFixed(Math.min(digits, 20))]) {
          const got = parseNumberText(text);
          const want = Number(text);
          if (Number.isFinite(want)) expect(Object.is(got, want)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts only the documented grammar', () => {
    for (const bad of ['', '-', '.', 'e5', '1e', '1e+', '--1', '1..2', ' 1', '0x1', 'Infinity', 'NaN', '1_000']) {
      expect(Number.isNaN(parseNumberText(bad)), bad).toBe(true);
    }
    const bytes = encoder.encode('x12.5x');
    expect(parseNumberBytes(bytes, 1, 5)).toBe(12.5);
  });
});

describe('CSV header detection', () => {
  it('reads a headerless file with text columns: only the value field decides', () => {
    expect(scan('1.5,host-a\n2.5,host-b\n', {})).toEqual({ 1: [1.5, 2.5] });
    expect(scan('a,1.5\nb,2.5\n', { column: 1 })).toEqual({ 1: [1.5, 2.5] });
    expect(scan('name,1.5\nb,2.5\n', { column: 0 })).toMatchObject({ line: 2 });
  });
});
