// CRC32C of a concatenation from the CRCs of its parts, so the CRC of a large
// record's values can be computed on a worker thread (right after it sorted
// them) and joined on the event loop with the CRC of the record header written
// later: crc(A ‖ B) = crc32cCombine(crc(A), crc(B), B.length), in O(log |B|).
//
// The method is zlib's crc32_combine (multmodp / x2nmodp): multiplying crc(A)
// by x^(8·|B|) modulo the CRC polynomial shifts it past B's bytes, and CRC is
// linear, so the result XORs with crc(B). Bits are reflected, as in CRC32C:
// the polynomial 0x1EDC6F41 is 0x82F63B78 here, and x^0 is the top bit.

const POLY = 0x82f63b78;

/** a(x)·b(x) modulo the polynomial (reflected bit order). */
function multModP(a: number, b: number): number {
  let m = 0x8000_0000;
  let p = 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) modulo the polynomial. */
const X2N: number[] = [];
{
  let p = 0x4000_0000; // x^1
  for (let k = 0; k < 32; k++) {
    X2N.push(p);
    p = multModP(p, p);
  }
}

/** x^(n·2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x8000_0000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31], p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** CRC32C of A ‖ B, given crc1 = CRC32C(A), crc2 = CRC32C(B) and B's length in bytes. */
export function crc32cCombine(crc1: number, crc2: number, length2: number): number {
  if (!Number.isSafeInteger(length2) || length2 < 0) throw new RangeError(`crc32cCombine: bad length ${length2}`);
  return (multModP(x2nModP(length2, 3), crc1 >>> 0) ^ crc2) >>> 0;
}
