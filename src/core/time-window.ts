// Retention windows: a pool with a window of W seconds answers over the values
// that arrived in about the last W seconds. Arrival times are kept per bucket,
// not per value: a windowed pool's values are grouped into buckets of
// bucketWidthMs(W) = max(1 s, W/60) of arrival time, aligned to the epoch, and
// a bucket [start, end) stays in the window while end > now − W. So a query at
// time t covers every value that arrived after t − W, plus values up to one
// bucket width older; it is exact for that set of buckets (numpy.percentile
// over exactly their values). Expired buckets are dropped whole, with their
// runs: no value is ever searched for or copied to expire it.
//
// A pool without a window keeps one bucket whose [start, end) spans every
// arrival time, so a window set later expires those values together, W after
// the newest of them arrived.

/** Milliseconds since the epoch; injectable so tests can move time by hand. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** A window holds this many buckets of arrival time (at least one second each). */
export const BUCKETS_PER_WINDOW = 60;
export const MIN_BUCKET_MS = 1000;
/** Ten years: any longer window is a pool without one. */
export const MAX_WINDOW_SECONDS = 10 * 365 * 24 * 3600;

export function isValidWindowSeconds(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= MAX_WINDOW_SECONDS;
}

/** The sentence every layer uses when a window breaks the rule. */
export function windowRuleText(field = 'windowSeconds'): string {
  return `${field} must be an integer number of seconds between 1 and ${MAX_WINDOW_SECONDS}`;
}

/** Width of the arrival-time buckets of a window of `windowMs`. */
export function bucketWidthMs(windowMs: number): number {
  return Math.max(MIN_BUCKET_MS, Math.ceil(windowMs / BUCKETS_PER_WINDOW));
}

/** Start of the bucket of width `widthMs` that holds arrival time `atMs`. */
export function bucketStartMs(atMs: number, widthMs: number): number {
  return Math.floor(atMs / widthMs) * widthMs;
}
