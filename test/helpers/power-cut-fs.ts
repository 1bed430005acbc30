// An in-memory FileLayer that can lose power. Like SQLite's crash VFS and
// LevelDB's FaultInjectionTestEnv it remembers, per file, the bytes as of the
// last fdatasync and, per directory, the entries as of the last directory
// fsync. `powerCut()` returns the disk as it would be after the machine lost
// power: each file holds its synced bytes plus, at random, nothing / a prefix /
// a prefix then zeros / a prefix then garbage / random 4 KiB pages of what was
// written after the sync, and a file whose creation or rename was not followed
// by a directory fsync is gone (or back under its old name) — or, as a
// journaling file system may have committed some of them, a prefix of those
// directory operations survives, or (ALICE's reordering) any subset of them.
// `processKill()` is the SIGKILL view: the page cache survives, everything
// written is there.
//
// After either, this instance is dead: every pending and future operation
// hangs forever, so the store that used it can never acknowledge anything
// again. It also records every operation (for ack-ordering checks), injects
// errors (ENOSPC/EIO/EROFS…, optionally after a partial write) and can crash
// at a chosen operation via `trap`. Simplification: mkdir is durable at once.

import { basename, dirname } from 'node:path';
import type { FileHandle, FileLayer, OpenMode } from '../../src/storage/file-layer.js';

export type FsOp =
  'mkdir' | 'readdir' | 'open' | 'size' | 'read' | 'write' | 'datasync' | 'truncate' | 'close' | 'rename' | 'unlink' | 'fsyncDir';

export interface FsEvent {
  index: number;
  op: FsOp;
  path: string;
  /** Target of a rename. */
  to?: string;
  /** Inode the handle refers to (paths change under rename). */
  inode?: number;
  position?: number;
  length?: number;
  mode?: OpenMode;
  /** datasync: the file length that became durable. */
  syncedLength?: number;
}

/** What a trap does at an operation: crash before it takes effect, after, or half-way through a write. */
export type TrapAction = 'none' | 'crash-before' | 'crash-after' | 'crash-mid';

export interface Fault {
  op: FsOp;
  /** errno code to throw: 'ENOSPC', 'EIO', 'EROFS', 'EACCES'… */
  code: string;
  /** Only operations whose path matches. */
  path?: RegExp;
  /** How many matching operations fail; Infinity until clearFaults(). Default 1. */
  times?: number;
  /** write only: write the first half of the bytes before failing. */
  partial?: boolean;
}

export type TailMode = 'drop' | 'all' | 'prefix' | 'prefix-zeros' | 'prefix-garbage' | 'pages';
export const TAIL_MODES: readonly TailMode[] = ['drop', 'all', 'prefix', 'prefix-zeros', 'prefix-garbage', 'pages'];

/** Which directory operations since the last directory fsync survive a power cut. */
export type DirMode = 'none' | 'prefix' | 'subset';
export const DIR_MODES: readonly DirMode[] = ['none', 'prefix', 'subset'];

type DirOp =
  | { kind: 'link'; name: string; inode: Inode }
  | { kind: 'unlink'; name: string }
  | { kind: 'rename'; from: string; to: string; inode: Inode };

// Re-exported so existing imports keep working; the PRNG lives in random.ts.
export { seededRandom } from './random.js';

let nextInodeId = 1;

class Inode {
  readonly id = nextInodeId++;
  data: Uint8Array;
  /** Bytes as of the last fdatasync. */
  durable: Uint8Array;

  constructor(data: Uint8Array = new Uint8Array(0), durable: Uint8Array = new Uint8Array(0)) {
    this.data = data;
    this.durable = durable;
  }
}

interface Dir {
  live: Map<string, Inode>;
  durable: Map<string, Inode>;
  /** Entry changes since the last directory fsync, in order. */
  pending: DirOp[];
}

const newDir = (): Dir => ({ live: new Map(), durable: new Map(), pending: [] });

function errno(code: string, op: string, path: string): Error {
  return Object.assign(new Error(`${code}: simulated failure, ${op} '${path}'`), { code });
}

const hang = <T>(): Promise<T> => new Promise<T>(() => {});

class MemFile implements FileHandle {
  private closed = false;

  constructor(
    private readonly fs: PowerCutFs,
    readonly path: string,
    readonly inode: Inode,
    private readonly writable: boolean,
  ) {}

  size(): Promise<number> {
    return this.fs.perform({ op: 'size', path: this.path, inode: this.inode.id }, () => this.inode.data.length);
  }

  read(into: Uint8Array, position: number): Promise<number> {
    return this.fs.perform({ op: 'read', path: this.path, inode: this.inode.id, position, length: into.length }, () => {
      const src = this.inode.data.subarray(
        Math.min(position, this.inode.data.length),
        Math.min(position + into.length, this.inode.data.length),
      );
      into.set(src);
      return src.length;
    });
  }

  write(chunks: readonly Uint8Array[], position: number): Promise<void> {
    let total = 0;
    for (const c of chunks) total += c.length;
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    const apply = (n: number) => {
      this.checkWritable();
      const end = position + n;
      if (end > this.inode.data.length) {
        const grown = new Uint8Array(end);
        grown.set(this.inode.data);
        this.inode.data = grown;
      }
      this.inode.data.set(bytes.subarray(0, n), position);
    };
    return this.fs.perform(
      { op: 'write', path: this.path, inode: this.inode.id, position, length: total },
      () => apply(total),
      () => apply(Math.floor(total / 2)),
    );
  }

  datasync(): Promise<void> {
    return this.fs.perform(
      { op: 'datasync', path: this.path, inode: this.inode.id, syncedLength: this.inode.data.length },
      () => {
        if (!this.fs.datasyncIsNoop) this.inode.durable = this.inode.data.slice();
      },
      undefined,
      this.fs.syncDelayMs,
    );
  }

  truncate(length: number): Promise<void> {
    return this.fs.perform({ op: 'truncate', path: this.path, inode: this.inode.id, length }, () => {
      this.checkWritable();
      const next = new Uint8Array(length);
      next.set(this.inode.data.subarray(0, Math.min(length, this.inode.data.length)));
      this.inode.data = next;
    });
  }

  close(): Promise<void> {
    return this.fs.perform({ op: 'close', path: this.path, inode: this.inode.id }, () => {
      this.closed = true;
    });
  }

  private checkWritable(): void {
    if (this.closed) throw errno('EBADF', 'write', this.path);
    if (!this.writable) throw errno('EBADF', 'write', this.path);
  }
}

export class PowerCutFs implements FileLayer {
  readonly events: FsEvent[] = [];
  /** The harness check: fdatasync that does nothing must make the power-cut suite fail. */
  datasyncIsNoop = false;
  /** Milliseconds each fdatasync takes (lets group commit gather batches). */
  syncDelayMs = 0;
  /** Called at every operation; returning a crash action kills the "machine" there. */
  trap: ((event: FsEvent) => TrapAction) | null = null;

  private readonly dirs = new Map<string, Dir>();
  private faults: (Fault & { remaining: number })[] = [];
  private deadFlag = false;

  get dead(): boolean {
    return this.deadFlag;
  }

  // ---- FileLayer ------------------------------------------------------------

  mkdir(dir: string): Promise<void> {
    return this.perform({ op: 'mkdir', path: dir }, () => {
      const chain: string[] = [];
      for (let d = dir; !this.dirs.has(d); d = dirname(d)) {
        if (this.isFile(d)) throw errno('ENOTDIR', 'mkdir', dir);
        chain.push(d);
        if (d === dirname(d)) break;
      }
      for (const d of chain) if (!this.dirs.has(d)) this.dirs.set(d, newDir());
    });
  }

  readdir(dir: string): Promise<string[]> {
    return this.perform({ op: 'readdir', path: dir }, () => [...this.requireDir(dir, 'scandir').live.keys()].sort());
  }

  open(path: string, mode: OpenMode): Promise<FileHandle> {
    return this.perform({ op: 'open', path, mode }, () => {
      const dir = this.requireDir(dirname(path), 'open');
      let inode = dir.live.get(basename(path));
      if (mode === 'create') {
        if (inode === undefined) {
          inode = new Inode();
          dir.live.set(basename(path), inode);
          dir.pending.push({ kind: 'link', name: basename(path), inode });
        } else {
          inode.data = new Uint8Array(0);
        }
      } else if (inode === undefined) {
        throw errno('ENOENT', 'open', path);
      }
      return new MemFile(this, path, inode, mode !== 'read');
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.perform({ op: 'rename', path: from, to }, () => {
      if (dirname(from) !== dirname(to)) throw errno('EXDEV', 'rename', from);
      const dir = this.requireDir(dirname(from), 'rename');
      const inode = dir.live.get(basename(from));
      if (inode === undefined) throw errno('ENOENT', 'rename', from);
      dir.live.delete(basename(from));
      dir.live.set(basename(to), inode);
      dir.pending.push({ kind: 'rename', from: basename(from), to: basename(to), inode });
    });
  }

  unlink(path: string): Promise<void> {
    return this.perform({ op: 'unlink', path }, () => {
      const dir = this.requireDir(dirname(path), 'unlink');
      if (!dir.live.delete(basename(path))) throw errno('ENOENT', 'unlink', path);
      dir.pending.push({ kind: 'unlink', name: basename(path) });
    });
  }

  fsyncDir(dir: string): Promise<void> {
    return this.perform({ op: 'fsyncDir', path: dir }, () => {
      const d = this.requireDir(dir, 'fsync');
      d.durable = new Map(d.live);
      d.pending = [];
    });
  }

  // ---- the machinery ------------------------------------------------------------

  /** Runs one operation: log it, consult faults and the trap, take effect, resolve (unless dead). */
  perform<T>(event: Omit<FsEvent, 'index'>, effect: () => T, halfEffect?: () => void, delayMs = 0): Promise<T> {
    if (this.deadFlag) return hang();
    const ev: FsEvent = { ...event, index: this.events.length };
    this.events.push(ev);
    const action = this.trap?.(ev) ?? 'none';
    if (action === 'crash-before') {
      this.deadFlag = true;
      return hang();
    }
    if (action === 'crash-mid') {
      halfEffect?.();
      this.deadFlag = true;
      return hang();
    }
    const fault = this.takeFault(ev);
    if (fault !== null) {
      if (fault.partial === true) halfEffect?.();
      return this.settle(() => {
        throw errno(fault.code, ev.op, ev.path);
      }, delayMs);
    }
    let result: T;
    try {
      result = effect();
    } catch (err) {
      return this.settle(() => {
        throw err;
      }, delayMs);
    }
    if (action === 'crash-after') {
      this.deadFlag = true;
      return hang();
    }
    return this.settle(() => result, delayMs);
  }

  private settle<T>(outcome: () => T, delayMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        if (this.deadFlag) return; // the machine is off: nobody hears back
        try {
          resolve(outcome());
        } catch (err) {
          reject(err);
        }
      };
      if (delayMs > 0) setTimeout(finish, delayMs);
      else setImmediate(finish);
    });
  }

  injectFault(fault: Fault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  private takeFault(ev: FsEvent): Fault | null {
    const target = ev.to ?? ev.path;
    for (const f of this.faults) {
      if (f.remaining <= 0 || f.op !== ev.op) continue;
      if (f.path !== undefined && !f.path.test(target) && !f.path.test(ev.path)) continue;
      f.remaining--;
      return f;
    }
    return null;
  }

  /** Stops the machine now: pending operations never complete. */
  kill(): void {
    this.deadFlag = true;
  }

  /**
   * The disk after a power cut (this instance dies): synced bytes plus a random
   * remnant of the unsynced tail per file; directory entries as of the last
   * directory fsync, plus per `dirMode` some of the operations after it.
   * `mode` forces one tail treatment for every file; both default to random.
   */
  powerCut(random: () => number, mode?: TailMode, dirMode?: DirMode): PowerCutFs {
    this.deadFlag = true;
    const next = new PowerCutFs();
    const made = new Map<Inode, Inode>();
    for (const [path, dir] of this.dirs) {
      const copy = newDir();
      const entries = survivingEntries(dir, random, dirMode ?? DIR_MODES[Math.floor(random() * DIR_MODES.length)]);
      for (const [name, inode] of entries) {
        let survivor = made.get(inode);
        if (survivor === undefined) {
          const bytes = survivingBytes(inode, random, mode ?? TAIL_MODES[Math.floor(random() * TAIL_MODES.length)]);
          survivor = new Inode(bytes, bytes.slice());
          made.set(inode, survivor);
        }
        copy.live.set(name, survivor);
        copy.durable.set(name, survivor);
      }
      next.dirs.set(path, copy);
    }
    return next;
  }

  /** The disk after SIGKILL (this instance dies): everything written survives, as in the page cache. */
  processKill(): PowerCutFs {
    this.deadFlag = true;
    const next = new PowerCutFs();
    const made = new Map<Inode, Inode>();
    const copyOf = (inode: Inode) => {
      let survivor = made.get(inode);
      if (survivor === undefined) {
        survivor = new Inode(inode.data.slice(), inode.durable.slice());
        made.set(inode, survivor);
      }
      return survivor;
    };
    for (const [path, dir] of this.dirs) {
      const copy = newDir();
      for (const [name, inode] of dir.live) copy.live.set(name, copyOf(inode));
      for (const [name, inode] of dir.durable) copy.durable.set(name, copyOf(inode));
      copy.pending = dir.pending.map((op) => ('inode' in op ? { ...op, inode: copyOf(op.inode) } : { ...op }));
      next.dirs.set(path, copy);
    }
    return next;
  }

  // ---- test conveniences (no events, no faults) ------------------------------------

  /** Names in `dir` as the running system sees them. */
  list(dir: string): string[] {
    return [...(this.dirs.get(dir)?.live.keys() ?? [])].sort();
  }

  exists(path: string): boolean {
    return this.dirs.get(dirname(path))?.live.has(basename(path)) ?? false;
  }

  readBytes(path: string): Uint8Array {
    const inode = this.dirs.get(dirname(path))?.live.get(basename(path));
    if (inode === undefined) throw new Error(`no such file ${path}`);
    return inode.data.slice();
  }

  /** Replaces a file's contents (durably, entry included): for planting damage. */
  writeBytes(path: string, bytes: Uint8Array): void {
    let dir = this.dirs.get(dirname(path));
    if (dir === undefined) {
      dir = newDir();
      this.dirs.set(dirname(path), dir);
    }
    let inode = dir.live.get(basename(path));
    if (inode === undefined) {
      inode = new Inode();
      dir.live.set(basename(path), inode);
    }
    inode.data = bytes.slice();
    inode.durable = bytes.slice();
    dir.durable.set(basename(path), inode);
  }

  inodeOf(path: string): number | undefined {
    return this.dirs.get(dirname(path))?.live.get(basename(path))?.id;
  }

  private isFile(path: string): boolean {
    return this.dirs.get(dirname(path))?.live.has(basename(path)) ?? false;
  }

  private requireDir(dir: string, op: string): Dir {
    const d = this.dirs.get(dir);
    if (d === undefined) throw errno(this.isFile(dir) ? 'ENOTDIR' : 'ENOENT', op, dir);
    return d;
  }
}

/** A directory's entries after the power cut: as of its last fsync, plus some later operations. */
function survivingEntries(dir: Dir, random: () => number, mode: DirMode): Map<string, Inode> {
  const entries = new Map(dir.durable);
  let ops: DirOp[] = [];
  if (mode === 'prefix') ops = dir.pending.slice(0, Math.floor(random() * (dir.pending.length + 1)));
  else if (mode === 'subset') ops = dir.pending.filter(() => random() < 0.5);
  for (const op of ops) {
    if (op.kind === 'link') entries.set(op.name, op.inode);
    else if (op.kind === 'unlink') entries.delete(op.name);
    else if (entries.get(op.from) === op.inode) {
      entries.delete(op.from);
      entries.set(op.to, op.inode);
    }
  }
  return entries;
}

/** What one file holds after the power cut. */
function survivingBytes(inode: Inode, random: () => number, mode: TailMode): Uint8Array {
  const durable = inode.durable;
  const live = inode.data;
  if (live.length < durable.length) {
    // Truncated after the last sync: the truncation may or may not have reached the disk.
    return random() < 0.5 ? durable.slice() : live.slice();
  }
  const tail = live.subarray(durable.length);
  const out = (extra: Uint8Array) => {
    const bytes = new Uint8Array(durable.length + extra.length);
    bytes.set(durable);
    bytes.set(extra, durable.length);
    return bytes;
  };
  if (tail.length === 0 || mode === 'drop') return durable.slice();
  const cut = Math.floor(random() * (tail.length + 1));
  switch (mode) {
    case 'all':
      return live.slice();
    case 'prefix':
      return out(tail.subarray(0, cut));
    case 'prefix-zeros': {
      const extra = new Uint8Array(cut + Math.floor(random() * (tail.length - cut + 1)));
      extra.set(tail.subarray(0, cut));
      return out(extra);
    }
    case 'prefix-garbage': {
      const extra = new Uint8Array(cut + 1 + Math.floor(random() * 64));
      extra.set(tail.subarray(0, cut));
      for (let i = cut; i < extra.length; i++) extra[i] = Math.floor(random() * 256);
      return out(extra);
    }
    case 'pages': {
      // Write-back in any order: each 4 KiB page of the tail made it or not.
      const extra = tail.slice();
      const pageBase = durable.length - (durable.length % 4096);
      for (let page = pageBase; page < live.length; page += 4096) {
        if (random() < 0.5) {
          for (let i = Math.max(page, durable.length); i < Math.min(page + 4096, live.length); i++) extra[i - durable.length] = 0;
        }
      }
      return out(random() < 0.5 ? extra : extra.subarray(0, cut));
    }
  }
}
