// One switch for both engines (HdrHistogramJS's `useWebAssembly`, here `kind`).
// Nothing outside src/core knows which kernels run.

import type { QuantileEngine } from './engine.js';
import { invalidOption } from './errors.js';
import type { EngineKind } from './kernels.js';
import { PoolStore, type PoolStoreOptions } from './pool-store.js';
import { createTsKernels } from './ts-kernels.js';
import { createWasmKernels } from './wasm-kernels.js';

export interface EngineOptions extends PoolStoreOptions {
  kind: EngineKind;
  /** Which WASM build to load (tests use debug, with asserts on). */
  wasmBuild?: 'release' | 'debug';
}

export async function createEngine(options: EngineOptions): Promise<QuantileEngine> {
  switch (options.kind) {
    case 'ts':
      return new PoolStore(createTsKernels(), options);
    case 'wasm':
      return new PoolStore(await createWasmKernels({ build: options.wasmBuild ?? 'release' }), options);
    default:
      throw invalidOption('kind', "'wasm' or 'ts'", options.kind);
  }
}
