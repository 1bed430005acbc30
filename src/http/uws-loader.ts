// Loads the native uWebSockets.js binding and refuses to run without it.
// The official package is not on the npm registry; its official binaries are
// mirrored by @trufflesuite/uws-js-unofficial (Node 16/18/20) and
// @btc-vision/uwebsockets.js (Node 22+, newer glibc). The trufflesuite package
// silently falls back to a pure-JS server on an unsupported Node (about 2.6x
// slower, docs/performance.md), so we check that `App` is native code.

import { createRequire } from 'node:module';
import type * as UwsTypes from '@trufflesuite/uws-js-unofficial';

export type Uws = typeof UwsTypes;

const CANDIDATES = ['@trufflesuite/uws-js-unofficial', '@btc-vision/uwebsockets.js'] as const;

export function isNativeBinding(mod: unknown): boolean {
  const app = (mod as { App?: unknown } | null)?.App;
  return typeof app === 'function' && Function.prototype.toString.call(app).includes('[native code]');
}

export interface LoadedUws {
  uws: Uws;
  packageName: string;
}

export function loadNativeUws(): LoadedUws {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  const savedWarn = console.warn;
  for (const packageName of CANDIDATES) {
    let mod: unknown;
    try {
      console.warn = () => {}; // the trufflesuite loader warns before falling back; we report ourselves
      mod = require(packageName);
    } catch (err) {
      failures.push(`${packageName}: ${(err as Error).message.split('\n')[0]}`);
      continue;
    } finally {
      console.warn = savedWarn;
    }
    if (isNativeBinding(mod)) return { uws: mod as Uws, packageName };
    failures.push(`${packageName}: loaded a pure-JS fallback, not the native binding`);
  }
  throw new Error(
    `poolq needs the native uWebSockets.js binding for Node ${process.versions.node} ` +
      `(ABI ${process.versions.modules}, ${process.platform}-${process.arch}) and refuses to serve on a JS fallback.\n  ` +
      failures.join('\n  ') +
      '\nUse Node 20 (the @trufflesuite mirror) or install @btc-vision/uwebsockets.js for Node 22+.',
  );
}
