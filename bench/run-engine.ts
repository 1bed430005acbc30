// Runs the engine microbenchmarks (bench/engine-*.ts), each in a fresh
// `node --expose-gc` child, prints each one's tables and an overall WASM-vs-TS
// table, and writes everything to bench/results/engine.json.
//
//   npm run bench                       everything (< 5 min on 2 cores)
//   node dist/bench/run-engine.js --quick          fewer sizes, shorter budgets
//   node dist/bench/run-engine.js query merge      only benches whose name contains a word

import { cpus, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findPackageRoot } from '../src/core/wasm-module.js';
import { benchDir, parseArgs, runBenchChild } from './lib/cli.js';
import { progress } from './lib/measure.js';
import { formatNs, printReport, ratio, winner, type BenchReport, type TableRow } from './lib/report.js';

const BENCHES = ['sort', 'append', 'query', 'merge', 'memory', 'encodings'] as const;

/** Every task that exists for both engines, side by side (task names are `<kind> <what> [<case>]`). */
function overallRows(reports: readonly BenchReport[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const report of reports) {
    for (const wasm of report.records.filter((r) => r.engine === 'wasm')) {
      const what = wasm.task.slice('wasm '.length);
      const ts = report.records.find((r) => r.engine === 'ts' && r.task === `ts ${what}`);
      if (ts === undefined) continue;
      rows.push({
        bench: report.bench,
        task: what,
        wasm: formatNs(wasm.meanNs),
        ts: formatNs(ts.meanNs),
        'ts/wasm': ratio(ts.meanNs, wasm.meanNs),
        faster: winner(ts.meanNs, wasm.meanNs),
      });
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const selected = BENCHES.filter((name) => args.filters.length === 0 || args.filters.some((f) => name.includes(f)));
  if (selected.length === 0) throw new Error(`no bench matches ${args.filters.join(', ')}; benches: ${BENCHES.join(', ')}`);

  const started = performance.now();
  const dir = benchDir(import.meta.url);
  const scratch = await mkdtemp(join(tmpdir(), 'poolq-bench-'));
  const reports: BenchReport[] = [];
  const failures: string[] = [];
  try {
    for (const name of selected) {
      progress(`\n▶ ${name}${args.quick ? ' (--quick)' : ''}`);
      try {
        const report = await runBenchChild(join(dir, `engine-${name}.js`), args.quick ? ['--quick'] : [], join(scratch, `${name}.json`));
        reports.push(report);
        printReport(report);
      } catch (error) {
        failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
        progress(`✖ ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  const overall = overallRows(reports);
  if (overall.length > 0) {
    console.log('\n=== WASM vs TS, every task measured for both (mean per call; ts/wasm > 1: WASM faster) ===');
    console.table(overall);
  }
  const totalMs = performance.now() - started;
  console.log(`\nTotal ${(totalMs / 1000).toFixed(1)} s${failures.length > 0 ? `; FAILED: ${failures.join('; ')}` : ''}`);

  const resultsDir = join(await findPackageRoot(), 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, 'engine.json');
  const cpuList = cpus();
  await writeFile(
    file,
    JSON.stringify(
      {
        meta: {
          date: new Date().toISOString(),
          node: process.version,
          platform: `${process.platform} ${process.arch}`,
          cpus: `${cpuList.length} × ${cpuList[0]?.model ?? 'unknown'}`,
          wasmBuild: 'release',
          quick: args.quick,
          filters: args.filters,
          totalMs,
          units: 'records: nanoseconds per call (sample ÷ batch); summary keys name their unit',
        },
        failures,
        overall,
        reports,
      },
      null,
      2,
    ),
  );
  console.log(`Wrote ${file}`);
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
