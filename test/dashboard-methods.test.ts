// The dashboard's method list (a separate browser build) is the server's.

import { expect, it } from 'vitest';
import { QUANTILE_METHODS } from '../src/core/methods.js';
import { METHODS } from '../web/src/methods.js';

it("the dashboard offers exactly the server's quantile methods, in its order", () => {
  expect([...METHODS]).toEqual([...QUANTILE_METHODS]);
});
