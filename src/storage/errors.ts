// Storage errors. They extend PoolqError so the HTTP layer's one status table
// (src/protocol/error-status.ts) maps them by `code`: a corrupt data directory is
// 'internal' (the process refuses to start), an unusable one 'unavailable'.
// They live here because storage is the only layer that raises them.

import { PoolqError } from '../core/errors.js';

/**
 * Something in the data directory fails its checks in a way a crash cannot
 * explain (a bad record that a later record proves was durable, a gap between
 * snapshot and log, a corrupt snapshot with no fallback). Recovery refuses to
 * start rather than silently drop acknowledged data (RocksDB's default).
 */
export class StorageCorruptionError extends PoolqError {
  /** Path of the damaged file. */
  readonly file: string;
  /** Byte offset in `file` where the damage was found. */
  readonly offset: number;

  constructor(file: string, offset: number, reason: string) {
    super(
      'internal',
      `${file} is corrupt at byte offset ${offset}: ${reason}. Refusing to start; move the file aside only if losing the data in it is acceptable.`,
    );
    this.name = 'StorageCorruptionError';
    this.file = file;
    this.offset = offset;
  }
}

/**
 * An idempotency key was reused for a different change (another pool, another
 * value count, another number of items). The change is refused and nothing is
 * applied; the first change's outcome stands. Its code is 'invalid_request'
 * (field `key`) so the HTTP status table maps it today; `reason` tells it
 * apart from other bad input.
 */
export class IdempotencyConflictError extends PoolqError {
  readonly reason = 'idempotency_conflict' as const;
  readonly key: string;

  constructor(key: string, why: string) {
    super('invalid_request', `idempotency key ${JSON.stringify(key)} was already used for a different change: ${why}.`, 'key');
    this.name = 'IdempotencyConflictError';
    this.key = key;
  }
}

/** The data directory cannot be created, read or written (EACCES, EROFS, ENOTDIR, ENOSPC…). */
export function dataDirUnusable(dataDir: string, action: string, cause: unknown): PoolqError {
  const err = new PoolqError('unavailable', `data directory ${dataDir} is not usable: cannot ${action} (${describeIoError(cause)}).`);
  (err as { cause?: unknown }).cause = cause;
  return err;
}

/** `ENOSPC: no space left on device` style text for logs and 503 bodies. */
export function describeIoError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export function ioErrorCode(err: unknown): string | undefined {
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}

/**
 * Runs a clean-up step (close, unlink, truncate) on a path that is already
 * failing: its own error is dropped, because the one that led here is the one
 * worth reporting.
 */
export async function bestEffort(action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch {
    // the original error is reported by the caller
  }
}
