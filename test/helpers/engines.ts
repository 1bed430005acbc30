// The engines every engine suite runs over, and the one way tests make them:
// through createEngine, the same switch the service uses, on the debug WASM
// build (asserts on; asconfig.json `debug` target, `npx asc assembly/index.ts --target debug`).

import { createEngine, type EngineOptions } from '../../src/core/create-engine.js';
import type { EngineKind, QuantileEngine } from '../../src/core/engine.js';
import type { TailPolicy } from '../../src/core/pool-store.js';
import type { EncodingPolicy } from '../../src/core/stored-run.js';

export const ENGINE_KINDS: readonly EngineKind[] = ['ts', 'wasm'];

/** Small appends make runs of their own: for tests of the merge policy and offloaded merges. */
export const NO_TAIL: TailPolicy = { appendMaxValues: 0, maxValues: 0 };
/** A tail sealed every few appends: exercises tail merges, growth and sealing in small tests. */
export const TINY_TAIL: TailPolicy = { appendMaxValues: 4, maxValues: 8 };

/** The automatic choice, then each encoding forced on every run. */
export const ENCODINGS: readonly EncodingPolicy[] = ['auto', 'plain', 'counted'];

export type TestEngineOptions = Omit<EngineOptions, 'kind' | 'wasmBuild'>;

export function createTestEngine(kind: EngineKind, tail?: TailPolicy, options: TestEngineOptions = {}): Promise<QuantileEngine> {
  return createEngine({ ...options, kind, wasmBuild: 'debug', tail });
}

/**
 * Fresh engines of each kind with the default tail, then each kind with a tiny
 * tail and with none, then each kind with each encoding forced.
 */
export function createAllEngines(): Promise<QuantileEngine[]> {
  const tails: (TailPolicy | undefined)[] = [undefined, TINY_TAIL, NO_TAIL];
  return Promise.all([
    ...tails.flatMap((tail) => ENGINE_KINDS.map((kind) => createTestEngine(kind, tail))),
    ...(['plain', 'counted'] as const).flatMap((encoding) => ENGINE_KINDS.map((kind) => createTestEngine(kind, TINY_TAIL, { encoding }))),
  ]);
}

/** A clock tests move by hand (ms since the epoch). */
export class ManualClock {
  constructor(public nowMs = 1_700_000_000_000) {}
  readonly now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}
