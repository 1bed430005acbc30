// The engines every engine suite runs over, and the one way tests make them:
// through createEngine, the same switch the service uses, on the debug WASM
// build (asserts on; asconfig.json `debug` target, `npx asc assembly/index.ts --target debug`).

import { createEngine } from '../../src/core/create-engine.js';
import type { EngineKind, QuantileEngine } from '../../src/core/engine.js';

export const ENGINE_KINDS: readonly EngineKind[] = ['ts', 'wasm'];

export function createTestEngine(kind: EngineKind): Promise<QuantileEngine> {
  return createEngine({ kind, wasmBuild: 'debug' });
}

/** One fresh engine of each kind, in ENGINE_KINDS order. */
export function createAllEngines(): Promise<QuantileEngine[]> {
  return Promise.all(ENGINE_KINDS.map(createTestEngine));
}
