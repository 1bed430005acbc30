// The dashboard's static files (GET / and GET /dashboard/{asset}): the page
// and stylesheet from web/, its scripts as compiled by `npm run build` into
// dist/web/, and uPlot from node_modules. Nothing is fetched from elsewhere at
// run time. Files are read once, on the first request.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StaticAsset {
  body: Buffer;
  contentType: string;
}

export interface DashboardAssets {
  index: StaticAsset;
  files: Map<string, StaticAsset>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The repository root: the nearest directory above this file with web/ in it (dist/src/http or src/http). */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'web', 'index.html'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('dashboard files not found: no web/index.html above the server');
    dir = parent;
  }
  return dir;
}

function asset(file: string): StaticAsset {
  return { body: readFileSync(file), contentType: TYPES[path.extname(file)] ?? 'application/octet-stream' };
}

export function loadDashboardAssets(): DashboardAssets {
  const root = projectRoot();
  const files = new Map<string, StaticAsset>();
  const scripts = path.join(root, 'dist', 'web');
  if (!existsSync(scripts)) throw new Error(`dashboard scripts not built: ${scripts} (run npm run build)`);
  for (const name of readdirSync(scripts)) if (name.endsWith('.js')) files.set(name, asset(path.join(scripts, name)));
  for (const name of readdirSync(path.join(root, 'web'))) if (name.endsWith('.css')) files.set(name, asset(path.join(root, 'web', name)));
  const uplot = path.dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
  files.set('uPlot.esm.js', asset(path.join(uplot, 'dist', 'uPlot.esm.js')));
  files.set('uPlot.min.css', asset(path.join(uplot, 'dist', 'uPlot.min.css')));
  return { index: asset(path.join(root, 'web', 'index.html')), files };
}
