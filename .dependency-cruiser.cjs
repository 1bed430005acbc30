// Layers only look down: core ← storage ← protocol ← http / workers ← main.
// `npm run lint` fails when a module imports one from a higher layer, or when
// http and workers import each other (a type both need moves down).
const layers = ['core', 'storage', 'protocol', 'http', 'workers'];
// src/cli and src/client sit at the top beside main.ts.
const above = {
  core: ['storage', 'protocol', 'http', 'workers', 'cli', 'client'],
  storage: ['protocol', 'http', 'workers', 'cli', 'client'],
  protocol: ['http', 'workers', 'cli', 'client'],
  http: ['workers', 'cli', 'client'],
  workers: ['http', 'cli', 'client'],
};

module.exports = {
  forbidden: [
    ...layers.map((layer) => ({
      name: `${layer}-looks-down-only`,
      comment: `src/${layer} may import only from layers below it`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: `^src/(${above[layer].join('|')})/` },
    })),
    {
      name: 'layers-never-import-entry-points',
      comment: 'src/main.ts and the top-level entry files sit above every layer',
      severity: 'error',
      from: { path: `^src/(${layers.join('|')})/` },
      to: { path: '^src/[^/]+\\.ts$', pathNot: '^src/(config|logger|server-env)\\.ts$' },
    },
    {
      name: 'shared-settings-stay-low',
      comment: 'config.ts and logger.ts are read by every layer, so they may only import core and storage',
      severity: 'error',
      from: { path: '^src/(config|logger)\\.ts$' },
      to: { path: '^src/(protocol|http|workers|cli|client)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-stands-alone',
      comment: 'production code never imports tests or benchmarks',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^(dist|build|node_modules)/' },
  },
};
