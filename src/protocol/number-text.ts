// Decimal numbers written as text (CSV fields, NDJSON lines, query
// parameters), read straight from bytes. The grammar is JSON's number with a
// leading '+' and a bare fraction ('.5', '5.') also allowed; nothing else
// (no hex, no 'NaN', no 'Infinity', no spaces inside). The result must be a
// finite float64.
//
// Fast path (Clinger's): up to 15 significant digits and a power of ten up to
// 22 are both exact doubles, so one multiplication or division is correctly
// rounded and equals what Number() returns. Everything else goes through
// Number() on the field's text, which first needs the bytes made a string.

const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

const DIGIT_0 = 0x30;
const DOT = 0x2e;
const PLUS = 0x2b;
const MINUS = 0x2d;

function isDigit(c: number): boolean {
  return c >= DIGIT_0 && c <= DIGIT_0 + 9;
}

/** Whether bytes [start, end) follow the grammar above. */
function wellFormed(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  if (i < end && (bytes[i] === PLUS || bytes[i] === MINUS)) i++;
  const intStart = i;
  while (i < end && isDigit(bytes[i])) i++;
  let digits = i - intStart;
  if (i < end && bytes[i] === DOT) {
    const fracStart = ++i;
    while (i < end && isDigit(bytes[i])) i++;
    digits += i - fracStart;
  }
  if (digits === 0) return false;
  if (i < end && (bytes[i] === 0x65 || bytes[i] === 0x45)) {
    i++;
    if (i < end && (bytes[i] === PLUS || bytes[i] === MINUS)) i++;
    const from = i;
    while (i < end && isDigit(bytes[i])) i++;
    if (i === from) return false;
  }
  return i === end;
}

/** The finite number written in bytes [start, end), or NaN when it is malformed or out of float64's range. */
export function parseNumberBytes(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  let negative = false;
  if (i < end && (bytes[i] === MINUS || bytes[i] === PLUS)) negative = bytes[i++] === MINUS;
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  let sawDigit = false;
  while (i < end) {
    const c = bytes[i];
    if (!isDigit(c)) break;
    sawDigit = true;
    if (mantissa !== 0 || c !== DIGIT_0) digits++;
    mantissa = mantissa * 10 + (c - DIGIT_0);
    i++;
  }
  if (i < end && bytes[i] === DOT) {
    i++;
    while (i < end) {
      const c = bytes[i];
      if (!isDigit(c)) break;
      sawDigit = true;
      if (mantissa !== 0 || c !== DIGIT_0) digits++;
      mantissa = mantissa * 10 + (c - DIGIT_0);
      scale++;
      i++;
    }
  }
  if (i === end && sawDigit && digits <= 15 && scale <= 22) {
    const value = scale === 0 ? mantissa : mantissa / POW10[scale];
    return negative ? -value : value;
  }
  if (!wellFormed(bytes, start, end)) return NaN;
  let text = '';
  for (let k = start; k < end; k++) text += String.fromCharCode(bytes[k]);
  const value = Number(text);
  return Number.isFinite(value) ? value : NaN;
}

const encoder = new TextEncoder();

/** parseNumberBytes for a string (query parameters). */
export function parseNumberText(text: string): number {
  const bytes = encoder.encode(text);
  return parseNumberBytes(bytes, 0, bytes.length);
}
