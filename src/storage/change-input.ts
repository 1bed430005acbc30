// Checks on what callers hand the store, made before anything is logged: a
// change the engine would refuse at replay must never reach the log.

import { isValidWindowSeconds, windowRuleText } from '../core/time-window.js';
import { invalidRequest } from '../core/errors.js';
import { isValidPoolId, poolIdRuleText } from '../core/pool-id.js';
import type { SortedRun } from '../core/sorted-run.js';
import type { AppendItem, AppendOptions } from './pool-writer.js';
import { MAX_KEY_BYTES } from './wal-format.js';
import { MAX_RECORD_VALUES } from './wal-record-v2.js';

export function checkPoolId(poolId: number, field = 'poolId'): void {
  if (!isValidPoolId(poolId)) throw invalidRequest(field, `${poolIdRuleText(field)}, got ${poolId}.`);
}

export function checkRun(run: SortedRun, field = 'poolValues'): void {
  if (!(run instanceof Float64Array)) throw invalidRequest(field, `${field} must be a sorted run (Float64Array).`);
  if (run.length === 0) throw invalidRequest(field, `${field} must not be empty.`);
  if (run.length > MAX_RECORD_VALUES) throw invalidRequest(field, `at most ${MAX_RECORD_VALUES} values fit in one append.`);
}

export function checkItems(items: readonly AppendItem[]): void {
  if (!Array.isArray(items) || items.length === 0) throw invalidRequest('items', 'items must be a non-empty array of { poolId, run }.');
  items.forEach((item, i) => {
    checkPoolId(item?.poolId, `items[${i}].poolId`);
    checkRun(item.run, `items[${i}].run`);
  });
}

const utf8 = new TextEncoder();

/** The key as UTF-8 bytes, or null when there is none. */
export function keyBytesOf(options: AppendOptions | undefined): Uint8Array | null {
  const key = options?.key;
  if (key === undefined) return null;
  const bytes = typeof key === 'string' ? utf8.encode(key) : null;
  if (bytes === null || bytes.length === 0 || bytes.length > MAX_KEY_BYTES) {
    throw invalidRequest(
      'key',
      `key must be a string of 1 to ${MAX_KEY_BYTES} bytes in UTF-8, got ${bytes === null ? typeof key : `${bytes.length} bytes`}.`,
    );
  }
  return bytes;
}

/** The change's time: `options.atMs` if given (a non-negative integer), else the clock's. */
export function timeOf(options: Pick<AppendOptions, 'atMs'> | undefined, clock: () => number): number {
  const atMs = options?.atMs;
  if (atMs === undefined) return Math.floor(clock());
  if (typeof atMs !== 'number' || !Number.isSafeInteger(atMs) || atMs < 0) {
    throw invalidRequest('atMs', `atMs must be a non-negative integer (ms since the epoch), got ${String(atMs)}.`);
  }
  return atMs;
}

/** A retention window as logged: whole seconds, 0 for unbounded (null or 0 given). */
export function checkWindow(windowSeconds: number | null): number {
  if (windowSeconds === null || windowSeconds === 0) return 0;
  // The engine's own rule: a logged window must be one the engine takes on replay.
  if (!isValidWindowSeconds(windowSeconds)) {
    throw invalidRequest('windowSeconds', `${windowRuleText()}, or null or 0 for none; got ${String(windowSeconds)}.`);
  }
  return windowSeconds;
}
