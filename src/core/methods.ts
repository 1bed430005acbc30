// numpy.percentile's 13 methods (numpy >= 1.24). The numeric id is what crosses
// the WASM boundary, so the order here is part of the engine ABI: append only.

export const QUANTILE_METHODS = [
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
] as const;

export type QuantileMethod = (typeof QUANTILE_METHODS)[number];

export const METHOD_ID: Readonly<Record<QuantileMethod, number>> = Object.freeze(
  Object.fromEntries(QUANTILE_METHODS.map((name, id) => [name, id])) as Record<QuantileMethod, number>,
);

export function isQuantileMethod(name: unknown): name is QuantileMethod {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(METHOD_ID, name);
}
