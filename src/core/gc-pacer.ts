// Handing freed run memory back to the OS when it is freed, not whenever V8
// next collects. A run's buffer (8 MB for 10^6 values) is outside the JS heap,
// so dropping the last reference to it frees nothing until a full GC finds
// the wrapper dead; with a small JS heap V8 saw no reason to run one, and after
// 10^7 values appended as 10^5-value bodies ~80 MB of dead merge inputs were
// still resident on the main thread and more on the worker that merged them
// (a worker's references to shared runs keep them alive just the same). The
// pacer is told the bytes that became garbage and runs a full collection once
// they add up to `thresholdBytes`, and once more after `idleMs` without news,
// so a quiet server holds its data and not its garbage. With the glibc setting
// npm start uses (MALLOC_MMAP_THRESHOLD_), the freed buffers go straight back.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface GcPacerOptions {
  /** Collect once this many bytes became garbage since the last collection. Default 64 MiB. */
  thresholdBytes?: number;
  /** Collect this long after the last report, if any garbage was reported. Default 1000 ms. */
  idleMs?: number;
}

/**
 * V8's full-collection function, exposed at run time on this thread (workers
 * included), so no command-line flag is needed; null where that is refused.
 */
export function exposeGc(): (() => void) | null {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

export class GcPacer {
  private pendingBytes = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Immediate | null = null;
  private readonly thresholdBytes: number;
  private readonly idleMs: number;
  /** Full collections run so far (tests, diagnostics). */
  collections = 0;

  constructor(
    private readonly collect: () => void,
    options: GcPacerOptions = {},
  ) {
    this.thresholdBytes = options.thresholdBytes ?? 64 << 20;
    this.idleMs = options.idleMs ?? 1000;
  }

  /** `bytes` of buffers just became unreachable. Cheap: collections happen later, off this call. */
  readonly note = (bytes: number): void => {
    if (!(bytes > 0)) return;
    this.pendingBytes += bytes;
    // The idle collection follows the last report whatever happened before it,
    // and catches garbage nobody reported (request bodies, log buffers).
    if (this.idleTimer !== null) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        this.collectNow();
      }, this.idleMs);
      this.idleTimer.unref();
    }
    // After the current turn: the caller is in the middle of its work.
    if (this.pendingBytes >= this.thresholdBytes) this.soon ??= setImmediate(() => this.collectNow());
  };

  collectNow(): void {
    if (this.soon !== null) clearImmediate(this.soon);
    this.soon = null;
    this.pendingBytes = 0;
    this.collections++;
    this.collect();
  }

  stop(): void {
    if (this.soon !== null) clearImmediate(this.soon);
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.soon = null;
    this.idleTimer = null;
  }
}

/** A pacer over V8's own collector, or null when it cannot be reached (the service then runs without one). */
export function createGcPacer(options: GcPacerOptions = {}): GcPacer | null {
  const gc = exposeGc();
  return gc === null ? null : new GcPacer(gc, options);
}
