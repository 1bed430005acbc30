// numpy's 13 percentile methods, in the server's order (default first). The
// dashboard is a separate browser build that imports no server module, so the
// list is repeated here; test/dashboard-methods.test.ts holds it to
// src/core/methods.ts.

export const METHODS: readonly string[] = [
  'linear',
  'inverted_cdf',
  'averaged_inverted_cdf',
  'closest_observation',
  'interpolated_inverted_cdf',
  'hazen',
  'weibull',
  'median_unbiased',
  'normal_unbiased',
  'lower',
  'higher',
  'nearest',
  'midpoint',
];
