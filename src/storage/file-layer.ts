// Every file operation storage makes goes through a FileLayer, so tests can
// swap in a double that simulates a power cut (test/helpers/power-cut-fs.ts:
// only fdatasync'ed bytes and fsync'ed directory entries survive) or injects
// ENOSPC/EIO. This is the seam SQLite's crash VFS and LevelDB's
// FaultInjectionTestEnv put in the same place. The real layer is node:fs.

import { writevSync } from 'node:fs';
import { open, mkdir, readdir, rename, unlink, type FileHandle as NodeHandle } from 'node:fs/promises';

export type OpenMode =
  /** Existing file, read only. */
  | 'read'
  /** Existing file, read and write (recovery truncates torn tails). */
  | 'readwrite'
  /** Create or truncate to empty, read and write (O_CREAT|O_TRUNC). */
  | 'create';

export interface FileHandle {
  size(): Promise<number>;
  /** Reads up to `into.length` bytes at `position`; returns how many were read (0 at end of file). */
  read(into: Uint8Array, position: number): Promise<number>;
  /**
   * Writes `chunks` back to back starting at `position`. Either writes them all
   * or throws; after a throw any prefix may have been written.
   */
  write(chunks: readonly Uint8Array[], position: number): Promise<void>;
  /** fdatasync: the file's data and size are durable when this resolves. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface FileLayer {
  /** mkdir -p; succeeds if the directory exists. */
  mkdir(dir: string): Promise<void>;
  /** Names (not paths) of the entries in `dir`. */
  readdir(dir: string): Promise<string[]>;
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  /** Atomic replace within one directory; durable only after fsyncDir. */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync on the directory: creations, renames and unlinks in it become durable. */
  fsyncDir(dir: string): Promise<void>;
}

/** Linux caps one writev at IOV_MAX (1024) buffers. */
const MAX_IOVECS = 1024;
/** Node refuses single reads above 2 GiB; stay well below. */
const MAX_READ_BYTES = 256 << 20;
/**
 * Writes up to this many bytes are made with writev(2) on the calling thread
 * instead of on libuv's thread pool. A small write into the page cache costs a
 * few µs; handing it to the pool costs a queue, two thread wake-ups and a
 * completion callback, which on a small machine time-slice with the event
 * loop. The write-ahead log's group commits are mostly far below this. Larger
 * writes stay on the pool so they never stall the loop.
 */
const CALLER_THREAD_WRITE_MAX_BYTES = 64 << 10;
/**
 * A write into the page cache can still block: when dirty memory passes the
 * kernel's limit (a large snapshot on a small machine), writers are throttled
 * for tens of milliseconds. After one write on the calling thread took this
 * long, this file's writes go to the pool for CALLER_THREAD_WRITE_BACKOFF_MS.
 * Set above the few milliseconds a merely preempted thread can take, so a
 * single slow write does not move the log off the calling thread.
 */
const SLOW_CALLER_THREAD_WRITE_MS = 5;
const CALLER_THREAD_WRITE_BACKOFF_MS = 10_000;

/**
 * What is left of `pending` after a writev wrote its first `written` bytes
 * (writev may write short). 0 bytes is an error (EIO): retrying would spin.
 */
export function unwritten(pending: readonly Uint8Array[], written: number): Uint8Array[] {
  if (written === 0) throw Object.assign(new Error('writev wrote 0 bytes'), { code: 'EIO' });
  let left = written;
  let i = 0;
  while (i < pending.length && left >= pending[i].length) left -= pending[i++].length;
  const rest = pending.slice(i);
  if (left > 0) rest[0] = rest[0].subarray(left);
  return rest;
}

/** Writes all of `chunks` from `position` on with writev(2) on this thread, resuming after short writes. */
export function writevFullySync(fd: number, chunks: readonly Uint8Array[], position: number): void {
  let pending = chunks.filter((c) => c.length > 0);
  let at = position;
  while (pending.length > 0) {
    const written = writevSync(fd, pending.slice(0, MAX_IOVECS), at);
    at += written;
    pending = unwritten(pending, written);
  }
}

/** writevSync's shape; tests pass a slow one. */
export type SyncWritev = (fd: number, buffers: readonly Uint8Array[], position: number) => number;

export class NodeFile implements FileHandle {
  /** performance.now() until which writes stay off the calling thread. */
  private callerWritesPausedUntil = 0;
  /** Writes made on the calling thread, and on the pool (tests, diagnostics). */
  callerThreadWrites = 0;
  poolWrites = 0;

  constructor(
    private readonly handle: NodeHandle,
    private readonly syncWritev: SyncWritev = writevSync,
  ) {}

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async read(into: Uint8Array, position: number): Promise<number> {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.handle.read(into, done, Math.min(into.length - done, MAX_READ_BYTES), position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async write(chunks: readonly Uint8Array[], position: number): Promise<void> {
    let total = 0;
    for (const c of chunks) total += c.length;
    const onCaller = total <= CALLER_THREAD_WRITE_MAX_BYTES && performance.now() >= this.callerWritesPausedUntil;
    // writev may write short; resume from the first unwritten byte.
    let pending = chunks.filter((c) => c.length > 0);
    let at = position;
    while (pending.length > 0) {
      const batch = pending.slice(0, MAX_IOVECS);
      let bytesWritten: number;
      if (onCaller) {
        const started = performance.now();
        bytesWritten = this.syncWritev(this.handle.fd, batch, at);
        const now = performance.now();
        if (now - started >= SLOW_CALLER_THREAD_WRITE_MS) this.callerWritesPausedUntil = now + CALLER_THREAD_WRITE_BACKOFF_MS;
        this.callerThreadWrites++;
      } else {
        bytesWritten = (await this.handle.writev(batch, at)).bytesWritten;
        this.poolWrites++;
      }
      at += bytesWritten;
      pending = unwritten(pending, bytesWritten);
    }
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

const OPEN_FLAGS: Record<OpenMode, string> = { read: 'r', readwrite: 'r+', create: 'w+' };

/** The real thing: node:fs/promises. */
export const nodeFileLayer: FileLayer = {
  async mkdir(dir) {
    await mkdir(dir, { recursive: true });
  },
  readdir(dir) {
    return readdir(dir);
  },
  async open(path, mode) {
    return new NodeFile(await open(path, OPEN_FLAGS[mode]));
  },
  rename(from, to) {
    return rename(from, to);
  },
  unlink(path) {
    return unlink(path);
  },
  async fsyncDir(dir) {
    // Linux allows fsync on a directory opened read-only (what Redis and SQLite do).
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};
