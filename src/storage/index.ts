// Public surface of the storage layer: the durable store (WAL + snapshots +
// recovery), the file-layer seam, and the format codecs (for tools, workers
// and tests).

export type { FsyncPolicy, PoolWriter, Awaitable } from './pool-writer.js';
export {
  openDurableStore,
  type DurableStore,
  type DurableStoreOptions,
  type DurableStoreStats,
  type DurableStoreGauges,
} from './durable-store.js';
export type { RecoveryReport, StorageLogger } from './storage-types.js';
export { StorageCorruptionError, dataDirUnusable } from './errors.js';
export { nodeFileLayer, type FileLayer, type FileHandle, type OpenMode } from './file-layer.js';
export {
  writeSnapshotFile,
  writeSnapshotFileSync,
  readSnapshotFile,
  encodeSnapshot,
  snapshotFileName,
  type SnapshotBuilder,
  type SnapshotPool,
  type SnapshotSummary,
} from './snapshot-format.js';
export { segmentFileName, encodeSegmentHeader, WalOp, WalFlag, WAL_VERSION, MAX_KEY_BYTES } from './wal-format.js';
export { encodeRecordV2, MAX_RECORD_VALUES } from './wal-record-v2.js';
export { encodeRecordV1 } from './wal-record-v1.js';
export { IdempotencyConflictError } from './errors.js';
export type { AppendItem, AppendOptions, AppendResult } from './pool-writer.js';
