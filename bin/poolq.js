#!/usr/bin/env node
// The poolq command: runs the built CLI (npm run build makes dist/).
import('../dist/src/cli/main.js').catch((err) => {
  console.error(err.code === 'ERR_MODULE_NOT_FOUND' ? 'poolq: not built yet; run npm run build' : err);
  process.exit(1);
});
