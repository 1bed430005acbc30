// GET /docs: Swagger UI (swagger-ui-dist, served from node_modules — no CDN)
// rendering GET /openapi.json. Assets are read once, on the first /docs hit.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface DocsAssets {
  page: string;
  files: Map<string, { body: Buffer; contentType: string }>;
}

const ASSETS: [string, string][] = [
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['docs-init.js', 'text/javascript; charset=utf-8'],
];

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>poolq API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/docs-init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });\n`;

export function loadDocsAssets(): DocsAssets {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const files = new Map<string, { body: Buffer; contentType: string }>();
  for (const [name, contentType] of ASSETS) {
    const body = name === 'docs-init.js' ? Buffer.from(INIT) : readFileSync(path.join(dir, name));
    files.set(name, { body, contentType });
  }
  return { page: PAGE, files };
}
