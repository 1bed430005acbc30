// Finding, compiling and instantiating the poolq WASM module (assembly/,
// built by asc into build/). Kept apart from the kernel adapter so a piscina
// worker can compile once (loadWasmModule) and instantiate synchronously.
//
// This file runs both as TS source (vitest) and as dist/src/core/*.js (tsc),
// so build/ is located by walking up from this module to the package root
// rather than by a fixed relative path.

import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidOption, unavailable } from './errors.js';

export type WasmBuild = 'release' | 'debug';

// The slice of the WebAssembly JS API used here, typed locally: tsconfig's lib
// is ES2022 without DOM and @types/node 20 does not declare `WebAssembly`.
// Pulling in lib "dom" would add browser globals to the whole project.

/** A compiled module (a `WasmModule`): structured-cloneable, so it can be posted to workers. */
export type WasmModule = object;

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  /** Grows by `deltaPages` 64 KiB pages; returns the old size in pages, throws RangeError on failure. */
  grow(deltaPages: number): number;
}

interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: object };
}

const WebAssemblyJs = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** File names from asconfig.json's targets. */
const WASM_FILES: Readonly<Record<WasmBuild, string>> = {
  release: 'poolq.wasm',
  debug: 'poolq.debug.wasm',
};

/**
 * The module's exports (assembly/index.ts). Flat ABI: addresses and lengths
 * are i32 — an address above 2 GiB comes back negative, so read results with
 * `>>> 0` — floats are f64, statuses are i32.
 */
export interface PoolqWasmExports {
  readonly memory: WasmMemory;
  heapBase(): number;
  sortHistogramBytes(): number;
  /** Returns the address holding the sorted values: `data` or `scratch`. */
  sortF64(data: number, n: number, scratch: number, histogram: number): number;
  /** Returns the number of distinct values written. */
  mergeF64(a: number, na: number, b: number, nb: number, out: number): number;
  /** Writes lo, hi, gamma, take (0/1) as f64 at `out`; returns 0, or 1 for an unknown method. */
  planQuantile(n: number, percentile: number, method: number, out: number): number;
  lerp(a: number, b: number, t: number): number;
}

export const PLAN_UNKNOWN_METHOD = 1;

export function assertWasmBuild(build: unknown): asserts build is WasmBuild {
  if (build !== 'release' && build !== 'debug') throw invalidOption('build', "'release' or 'debug'", build);
}

let packageRoot: Promise<string> | undefined;

/** The nearest ancestor directory of this module that holds a package.json. */
export function findPackageRoot(): Promise<string> {
  packageRoot ??= (async () => {
    const start = dirname(fileURLToPath(import.meta.url));
    for (let dir = start; ;) {
      const isRoot = await stat(join(dir, 'package.json')).then(
        (s) => s.isFile(),
        () => false,
      );
      if (isRoot) return dir;
      const parent = dirname(dir);
      if (parent === dir) throw new Error(`no package.json above ${start}`);
      dir = parent;
    }
  })();
  return packageRoot;
}

export async function wasmPath(build: WasmBuild): Promise<string> {
  return join(await findPackageRoot(), 'build', WASM_FILES[build]);
}

/** Compiled modules, one per build per thread (each piscina worker has its own module scope). */
const compiled = new Map<WasmBuild, Promise<WasmModule>>();

/** Reads and compiles build/poolq.wasm (release) or build/poolq.debug.wasm, once per thread. */
export function loadWasmModule(build: WasmBuild = 'release'): Promise<WasmModule> {
  assertWasmBuild(build);
  let module = compiled.get(build);
  if (module === undefined) {
    module = (async () => {
      const path = await wasmPath(build);
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (cause) {
        throw unavailable(`The WASM engine's ${build} build is missing (${path}: ${String(cause)}); run \`npm run build:wasm\`.`);
      }
      return WebAssemblyJs.compile(bytes);
    })();
    // A failed load is not cached, so a later build can be picked up.
    module.catch(() => compiled.delete(build));
    compiled.set(build, module);
  }
  return module;
}

/**
 * Instantiates synchronously with its own memory (instances never share
 * memory, so each worker has private scratch space). The debug build imports
 * `env.abort` for its assertions; it is turned into a thrown Error.
 */
export function instantiatePoolqModule(module: WasmModule): PoolqWasmExports {
  // Filled in once the instance exists: abort can only be called after that.
  const bound: { memory: WasmMemory | null } = { memory: null };
  const imports = {
    env: {
      abort(messagePtr: number, filePtr: number, line: number, column: number): never {
        const memory = bound.memory;
        const message = memory ? readAsString(memory, messagePtr) : '?';
        const file = memory ? readAsString(memory, filePtr) : '?';
        throw new Error(`poolq WASM assertion failed: ${message} at ${file}:${line}:${column}`);
      },
    },
  };
  const instance = new WebAssemblyJs.Instance(module, imports);
  const exports = instance.exports as unknown as PoolqWasmExports;
  bound.memory = exports.memory;
  return exports;
}

/** Decodes an AssemblyScript string (UTF-16, byte length stored at ptr - 4) for abort messages. */
function readAsString(memory: WasmMemory, ptr: number): string {
  ptr >>>= 0;
  if (ptr < 4 || ptr % 2 !== 0 || ptr > memory.buffer.byteLength) return '?';
  const byteLength = new DataView(memory.buffer).getUint32(ptr - 4, true);
  if (ptr + byteLength > memory.buffer.byteLength) return '?';
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, byteLength >>> 1));
}
