// The process environment poolq's server runs with under `npm start`: anything
// that spawns the server (benchmarks, tests, a CLI) adds these so it measures
// and tests the server as it is run.
//
// MALLOC_MMAP_THRESHOLD_ fixes glibc's mmap threshold, so freed run buffers go
// back to the OS instead of staying in the heap after merges. glibc.malloc.hugetlb=1
// lets large buffers use transparent huge pages: the first write to fresh 4 KiB
// pages was the larger part of loading a big snapshot.

export const SERVER_ENV: Readonly<Record<string, string>> = Object.freeze({
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
  MALLOC_MMAP_THRESHOLD_: '131072',
});

/** `KEY=value KEY=value`, for logs and reports. */
export function serverEnvText(env: Readonly<Record<string, string>> = SERVER_ENV): string {
  return Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}
