// Shared pieces of the storage suites: a model of what the pools must hold
// (the acknowledged operations, replayed in log order), bitwise state
// comparison, value generators and a logger that keeps what it was told.

import type { QuantileEngine } from '../../src/core/engine.js';
import { allocateRun, trustSorted, type SortedRun } from '../../src/core/sorted-run.js';
import { encodeSorted } from '../../src/core/stored-run.js';
import type { SnapshotPool } from '../../src/storage/snapshot-format.js';
import type { StorageLogger } from '../../src/storage/recovery.js';

export type PoolOp = { kind: 'append'; poolId: number; values: Float64Array } | { kind: 'delete'; poolId: number };

/** A sorted run of `values` in the engine's total order (-0 before +0). */
/** The parts, back to back, in one new array (log segments and files built by hand). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function sortedRun(values: ArrayLike<number>): SortedRun {
  const run = allocateRun(values.length);
  run.set(Array.from(values));
  run.sort();
  return trustSorted(run);
}

/** Awkward doubles on purpose: ±0, subnormals, huge, repeated. */
/** A pool without a window holding `runs` as plain runs, as a version 2 snapshot keeps it (one bucket, arrival time `atMs`). */
export function snapshotPoolOf(poolId: number, runs: readonly SortedRun[], atMs = 0): SnapshotPool {
  const kept = runs.filter((run) => run.length > 0);
  return {
    poolId,
    windowSeconds: null,
    buckets: kept.length === 0 ? [] : [{ startMs: atMs, endMs: atMs + 1, runs: kept.map((run) => encodeSorted(run, 'plain')) }],
  };
}

export function randomValues(random: () => number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = random();
    if (r < 0.05) out.push(-0);
    else if (r < 0.1) out.push(0);
    else if (r < 0.13) out.push(5e-324 * Math.floor(random() * 10));
    else if (r < 0.16) out.push((random() - 0.5) * 1e308);
    else if (r < 0.3) out.push(Math.floor(random() * 5));
    else out.push((random() - 0.5) * 1000);
  }
  return out;
}

export type PoolState = Map<number, Float64Array>;

/** Every pool's values, merged and sorted. */
export function engineState(engine: QuantileEngine): PoolState {
  const state: PoolState = new Map();
  for (const id of engine.poolIds()) state.set(id, Float64Array.from(engine.exportSorted(id)));
  return state;
}

/** The pools after applying `ops` in order. */
export function modelState(ops: readonly PoolOp[]): PoolState {
  const pools = new Map<number, number[]>();
  for (const op of ops) {
    if (op.kind === 'delete') pools.delete(op.poolId);
    else pools.set(op.poolId, (pools.get(op.poolId) ?? []).concat(Array.from(op.values)));
  }
  const state: PoolState = new Map();
  for (const [id, values] of [...pools].sort((a, b) => a[0] - b[0])) state.set(id, Float64Array.from(values).sort());
  return state;
}

/** null if equal bit for bit, else a description of the first difference. */
export function diffState(actual: PoolState, expected: PoolState): string | null {
  const ids = new Set([...actual.keys(), ...expected.keys()]);
  for (const id of [...ids].sort((a, b) => a - b)) {
    const a = actual.get(id);
    const e = expected.get(id);
    if (a === undefined) return `pool ${id} missing (expected ${e!.length} values)`;
    if (e === undefined) return `pool ${id} unexpected (${a.length} values)`;
    if (a.length !== e.length) return `pool ${id} has ${a.length} values, expected ${e.length}`;
    const ab = new BigUint64Array(a.buffer, a.byteOffset, a.length);
    const eb = new BigUint64Array(e.buffer, e.byteOffset, e.length);
    for (let i = 0; i < a.length; i++) if (ab[i] !== eb[i]) return `pool ${id} differs at ${i}: ${a[i]} vs ${e[i]}`;
  }
  return null;
}

/**
 * The recovered state must equal the state after some prefix of the submitted
 * operations that contains every acknowledged one: nothing acknowledged lost,
 * nothing applied twice, nothing out of order. Returns null or what went wrong.
 */
export function checkPrefixState(actual: PoolState, submitted: readonly PoolOp[], acknowledged: number): string | null {
  let closest = '';
  for (let k = submitted.length; k >= acknowledged; k--) {
    const diff = diffState(actual, modelState(submitted.slice(0, k)));
    if (diff === null) return null;
    if (k === acknowledged) closest = diff;
  }
  return `recovered state matches no prefix of ${acknowledged}..${submitted.length} operations (vs the acknowledged prefix: ${closest})`;
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg: string | undefined;
}

export function capturingLogger(): StorageLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
}

/** Float64 bit patterns, for "bit-identical" assertions. */
export function bits(values: readonly number[]): string[] {
  const f = Float64Array.from(values);
  return Array.from(new BigUint64Array(f.buffer), (b) => b.toString(16));
}
