// `npm run bench:ab -- REV [MODE] [FSYNC] [ROUNDS] [CONNECTIONS] [--quick]`: is the
// working tree faster than REV under the same HTTP load? Whole runs drift by
// ±30 % over minutes on a small shared machine, so two bench:http runs taken
// apart say little. This builds REV in a temporary git worktree, then
// alternates it with the working tree round by round (ABBA: which build goes
// first alternates too), each against a fresh server (fresh data dir, npm
// start's environment) on CPU 0 and wrk on CPU 1, and reports every round's
// ratio and their median: of requests/s, and of the server's CPU time per
// request (user + system of all its threads over the measured run ÷ requests
// answered), which is steadier.
//
// MODE: add | query | mix (bench/wrk/poolq.lua: 10-value appends, 1000 pools; default add),
// FSYNC: never | always (never), ROUNDS (4), CONNECTIONS (32). Each round per build:
// 1 s of appends to fill pools, 1 s warm-up, 5 s measured (--quick: 1 round of 1 s).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canPin, ROOT, startServer, tempDataDir } from '../test/helpers/server-process.js';
import { findWrk, runWrk, type Load, type Mode } from './lib/http-scenarios.js';
import { processCpuSeconds } from './lib/proc.js';
import { printTable, si, writeResults } from './lib/report.js';
import { median } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const [rev, mode = 'add', fsync = 'never', roundCount = quick ? '1' : '4', connections = '32'] = process.argv
  .slice(2)
  .filter((a) => a !== '--quick');
if (rev === undefined || !['add', 'query', 'mix'].includes(mode) || !['never', 'always'].includes(fsync)) {
  console.error('usage: npm run bench:ab -- REV [add|query|mix] [never|always] [ROUNDS] [CONNECTIONS] [--quick]');
  process.exit(2);
}
const wrk = findWrk();
if (wrk === null) throw new Error('bench:ab needs wrk (apt-get install -y wrk)');
const [serverCpu, wrkCpu] = canPin() ? [0, 1] : [null, null];
const measureS = quick ? 1 : 5;

interface Measurement {
  rps: number;
  cpuUsPerRequest: number;
}

/** One round against one build: requests/s and the server's CPU µs per request. */
async function measure(main: string): Promise<Measurement> {
  const dataDir = tempDataDir('poolq-ab-');
  const server = await startServer(['--fsync', fsync, '--log-level', 'warn'], { main, dataDir, cpu: serverCpu });
  try {
    const shape = { pools: 1000, values: 10, queryPct: 90 };
    const load = (m: Mode, durationS: number, c: number): Load => ({ mode: m, shape, durationS, connections: c, cpu: wrkCpu });
    await runWrk(wrk!, server.port, load('add', 1, 8)); // pools to query
    if (!quick) await runWrk(wrk!, server.port, load(mode as Mode, 1, Number(connections)));
    const cpu0 = processCpuSeconds(server.proc.pid!);
    const r = await runWrk(wrk!, server.port, load(mode as Mode, measureS, Number(connections)));
    return { rps: r.rps, cpuUsPerRequest: ((processCpuSeconds(server.proc.pid!) - cpu0) * 1e6) / r.requests };
  } finally {
    await server.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'poolq-ab-'));
  const base = path.join(work, 'base');
  const git = (...args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).trim();
  process.on('exit', () => {
    try {
      git('worktree', 'remove', '--force', base);
    } catch {
      // never added
    }
    rmSync(work, { recursive: true, force: true });
  });
  console.log(`building ${rev} (${git('rev-parse', '--short', rev)}) in a temporary worktree …`);
  git('worktree', 'add', '--detach', '-q', base, rev);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(base, 'node_modules'));
  execFileSync('npm', ['run', 'build'], { cwd: base, stdio: 'ignore' });

  console.log(
    `${mode}, --fsync ${fsync}, ${connections} connections, ${roundCount} round(s) of ${measureS} s${serverCpu === null ? ', unpinned' : ', server on CPU 0, wrk on CPU 1'}`,
  );
  const rounds: { base: Measurement; new: Measurement }[] = [];
  for (let round = 1; round <= Number(roundCount); round++) {
    const [baseMain, newMain] = [path.join(base, 'dist/src/main.js'), path.join(ROOT, 'dist/src/main.js')];
    const r =
      round % 2 === 1
        ? { base: await measure(baseMain), new: await measure(newMain) }
        : { new: await measure(newMain), base: await measure(baseMain) };
    rounds.push(r);
    console.log(`  round ${round}: ${rev} ${si(r.base.rps)}/s, working tree ${si(r.new.rps)}/s`);
  }
  const rpsRatios = rounds.map((r) => r.new.rps / r.base.rps);
  const cpuRatios = rounds.map((r) => r.base.cpuUsPerRequest / r.new.cpuUsPerRequest);
  printTable(
    `${rev} (base) against the working tree (new)`,
    rounds.map((r, i) => ({
      round: i + 1,
      'base req/s': si(r.base.rps),
      'new req/s': si(r.new.rps),
      'new ÷ base': rpsRatios[i].toFixed(3),
      'base CPU µs/req': r.base.cpuUsPerRequest.toFixed(2),
      'new CPU µs/req': r.new.cpuUsPerRequest.toFixed(2),
      'CPU/req base ÷ new': cpuRatios[i].toFixed(3),
    })),
  );
  const rpsRatio = median(rpsRatios);
  const cpuRatio = median(cpuRatios);
  console.log(`\nmedian req/s ratio (working tree ÷ ${rev}): ${rpsRatio.toFixed(3)}`);
  console.log(
    `median CPU-per-request ratio (${rev} ÷ working tree; > 1: the working tree does less work per request): ${cpuRatio.toFixed(3)}`,
  );
  writeResults('ab', {
    rev,
    mode,
    fsync,
    connections: Number(connections),
    measureS,
    rounds,
    medianRpsRatio: rpsRatio,
    medianCpuRatio: cpuRatio,
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
