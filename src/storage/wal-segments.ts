// The WAL's segment files: the one being written and the list of those on
// disk. A new segment's header is made durable under a temporary name and
// only then renamed into place (docs/storage-format.md, "New segment"), so a
// segment name on disk always has a durable header.

import { bestEffort } from './errors.js';
import type { FileHandle, FileLayer } from './file-layer.js';
import type { SegmentInfo } from './storage-types.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES, segmentFileName } from './wal-format.js';

export interface ActiveSegment {
  info: SegmentInfo;
  file: FileHandle;
  /** End of the last successful write. */
  writeOffset: number;
  /** End of the last successful fdatasync. */
  durableOffset: number;
  /** An I/O error makes the file untrustworthy; the next flush opens a new segment. */
  poisoned: boolean;
}

export class WalSegments {
  /** The segment records go into, or null before the first one exists. */
  current: ActiveSegment | null = null;
  /** fdatasyncs made creating segments. */
  fdatasyncs = 0;

  constructor(
    private readonly files: FileLayer,
    private readonly dataDir: string,
    /** Segment files on disk, ascending firstSeq. */
    readonly onDisk: SegmentInfo[],
  ) {}

  /** Bytes of every segment on disk. */
  totalBytes(): number {
    let bytes = 0;
    for (const seg of this.onDisk) bytes += seg.bytes;
    return bytes;
  }

  /** A segment whose header is durable under its final name (write temp, fdatasync, rename, fsync dir). */
  async create(firstSeq: number): Promise<ActiveSegment> {
    const name = segmentFileName(firstSeq);
    const tmpPath = `${this.dataDir}/${name}.tmp`;
    const file = await this.files.open(tmpPath, 'create');
    try {
      await file.write([encodeSegmentHeader(firstSeq)], 0);
      await file.datasync();
      this.fdatasyncs++;
      await this.files.rename(tmpPath, `${this.dataDir}/${name}`);
      await this.files.fsyncDir(this.dataDir);
    } catch (err) {
      await bestEffort(() => file.close());
      await bestEffort(() => this.files.unlink(tmpPath));
      throw err;
    }
    const info: SegmentInfo = { name, firstSeq, bytes: SEGMENT_HEADER_BYTES };
    // A segment abandoned before anything in it became durable has the same
    // name; the rename just replaced it.
    const same = this.onDisk.findIndex((s) => s.name === name);
    if (same >= 0) this.onDisk[same] = info;
    else this.onDisk.push(info);
    return { info, file, writeOffset: SEGMENT_HEADER_BYTES, durableOffset: SEGMENT_HEADER_BYTES, poisoned: false };
  }

  /**
   * After a failed write or fdatasync. ENOSPC from a write failed no fsync, so
   * the file is still trustworthy: cut back to the durable end (frees the space
   * the partial write took) and keep it. Anything else poisons the segment.
   */
  async keepOrPoison(seg: ActiveSegment, writeFoundDiskFull: boolean): Promise<void> {
    if (writeFoundDiskFull) {
      try {
        await seg.file.truncate(seg.durableOffset);
        seg.writeOffset = seg.durableOffset;
        seg.info.bytes = seg.durableOffset;
        return;
      } catch {
        // poison it below
      }
    }
    seg.poisoned = true;
    await bestEffort(() => seg.file.truncate(seg.durableOffset));
    await bestEffort(() => seg.file.close());
  }

  /** Names of the segments whose records are all <= `seq` (never the current one). */
  coveredBy(seq: number): string[] {
    const covered: string[] = [];
    for (let i = 0; i + 1 < this.onDisk.length; i++) {
      const seg = this.onDisk[i];
      if (this.onDisk[i + 1].firstSeq - 1 <= seq && seg !== this.current?.info) covered.push(seg.name);
    }
    return covered;
  }

  /** Drops a deleted file from the list. */
  forget(name: string): void {
    const at = this.onDisk.findIndex((s) => s.name === name);
    if (at >= 0) this.onDisk.splice(at, 1);
  }
}
