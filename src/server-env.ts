// The process environment poolq's server runs with under `npm start`: anything
// that spawns the server (benchmarks, tests, a CLI) adds these so it measures
// and tests the server as it is run.
//
// MALLOC_MMAP_THRESHOLD_ fixes glibc's mmap threshold, so freed run buffers go
// back to the OS instead of staying in the heap after merges. No huge pages
// (glibc.malloc.hugetlb): they kept more memory resident for integer loads and
// made neither first fills nor snapshot loads faster here (docs/performance.md).

export const SERVER_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_MMAP_THRESHOLD_: '131072',
});

/** `KEY=value KEY=value`, for logs and reports. */
export function serverEnvText(env: Readonly<Record<string, string>> = SERVER_ENV): string {
  return Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}
