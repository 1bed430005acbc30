// `npm run bench`: the engine benchmarks (bench/engine-*.ts), each in a fresh
// `node --expose-gc` so no bench's pools or garbage skew another's timings.
// Each prints its tables and writes bench/results/engine-<name>.json.
//
//   npm run bench -- [--quick] [sort|append|query|merge|memory|encodings ...]

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCHES = ['sort', 'append', 'query', 'merge', 'memory', 'encodings'];
const words = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const selected = BENCHES.filter((name) => words.length === 0 || words.some((w) => name.includes(w)));
if (selected.length === 0) throw new Error(`no bench matches ${words.join(', ')}; benches: ${BENCHES.join(', ')}`);

const started = performance.now();
const failed: string[] = [];
for (const name of selected) {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), `engine-${name}.js`);
  const flags = process.argv.includes('--quick') ? ['--quick'] : [];
  const { status } = spawnSync(process.execPath, ['--expose-gc', script, ...flags], { stdio: 'inherit' });
  if (status !== 0) failed.push(name);
}
console.log(`\nTotal ${((performance.now() - started) / 1000).toFixed(1)} s${failed.length > 0 ? `; FAILED: ${failed.join(', ')}` : ''}`);
if (failed.length > 0) process.exitCode = 1;
