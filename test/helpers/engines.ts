// The engines every engine suite runs over, and the one way tests make them:
// through createEngine, the same switch the service uses, on the debug WASM
// build (asserts on; asconfig.json `debug` target, `npx asc assembly/index.ts --target debug`).

import { createEngine } from '../../src/core/create-engine.js';
import type { EngineKind, QuantileEngine } from '../../src/core/engine.js';
import type { TailPolicy } from '../../src/core/pool-store.js';

export const ENGINE_KINDS: readonly EngineKind[] = ['ts', 'wasm'];

/** Small appends make runs of their own: for tests of the merge policy and offloaded merges. */
export const NO_TAIL: TailPolicy = { appendMaxValues: 0, maxValues: 0 };
/** A tail sealed every few appends: exercises tail merges, growth and sealing in small tests. */
export const TINY_TAIL: TailPolicy = { appendMaxValues: 4, maxValues: 8 };

export function createTestEngine(kind: EngineKind, tail?: TailPolicy): Promise<QuantileEngine> {
  return createEngine({ kind, wasmBuild: 'debug', tail });
}

/** Fresh engines of each kind with the default tail, then each kind with a tiny tail and with none. */
export function createAllEngines(): Promise<QuantileEngine[]> {
  const tails: (TailPolicy | undefined)[] = [undefined, TINY_TAIL, NO_TAIL];
  return Promise.all(tails.flatMap((tail) => ENGINE_KINDS.map((kind) => createTestEngine(kind, tail))));
}
