// Entry point of the poolq WASM module (asconfig.json: debug and release
// targets). The ABI is flat — pointers, lengths, f64 and i32 status codes; no
// strings, classes or arrays cross. Kernels never allocate: the adapter
// (src/core/wasm-kernels.ts) owns all memory above __heap_base and grows the
// exported memory from JS.

export { sortF64, sortHistogramBytes } from './sort';
export { mergeF64 } from './merge';
export { planQuantile, lerp } from './quantile';

/** First byte the adapter may use: everything above it is free (runtime stub, no allocation). */
export function heapBase(): usize {
  return __heap_base;
}
