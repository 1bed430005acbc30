// The one rule for pool identifiers, shared by every layer that accepts one:
// an integer that a float64 (and so JSON) represents exactly.

/** Largest pool id: 2^53 − 1, the largest integer a JSON number carries exactly. */
export const MAX_POOL_ID = Number.MAX_SAFE_INTEGER;

export function isValidPoolId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The sentence every layer uses when a pool id breaks the rule. */
export function poolIdRuleText(field = 'poolId'): string {
  return `${field} must be an integer between 0 and ${MAX_POOL_ID}`;
}
