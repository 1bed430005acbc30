// The report of `npm run bench:http`: every row's numbers with its ratios to
// the baselines measured in the same run, the bare uWS server (same body shapes
// on POST /echo) and the fastify peer (same scenario); then the JSON.

import type { PacedResult } from './paced-client.js';
import { fmtPct, fmtRatio, fmtUs, printTable, si } from './report.js';
import type { Row } from './http-scenarios.js';

/** The bare server's row a poolq or fastify row compares with: same connections, same body shapes. */
function ceiling(rows: readonly Row[], scenario: string): number | undefined {
  const hello = (s: string): number | undefined => rows.find((r) => r.server === 'hello' && r.scenario === s)?.rps;
  const [mode, at] = scenario.split('@');
  const suffix = at === undefined ? '' : `@${at}`;
  if (mode === 'add' || mode === 'query') return hello(`echo-${mode}${suffix}`);
  const [ea, eq] = [hello('echo-add'), hello('echo-query')];
  // a 90/10 blend's time per request is the weighted mean of the two
  if (mode === 'mix' && ea !== undefined && eq !== undefined) return 1 / (0.9 / eq + 0.1 / ea);
  return undefined;
}

export function printHttpReport(rows: readonly Row[], rounds: number): void {
  const peakOf = (server: string, scenario: string): number | undefined =>
    rows.find((r) => r.kind === 'peak' && r.server === server && r.scenario === scenario)?.rps;
  printTable(
    `Results (peak: median of ${rounds} interleaved round(s); paced rows: open loop at 50 % of that peak, latency from the intended send)`,
    rows.map((r) => {
      const paced = r.kind === 'paced' ? (r.detail as PacedResult) : undefined;
      const vs = r.kind === 'peak' && r.server !== 'hello';
      return {
        server: r.server,
        scenario: r.scenario,
        'req/s': si(r.rps),
        p50: fmtUs(r.p50Us),
        p99: fmtUs(r.p99Us),
        'p99 from send': paced === undefined ? '' : fmtUs(paced.serviceUs.p99),
        'non-2xx': r.non2xx,
        'sock err': r.socketErrors,
        'srv CPU': fmtPct(r.serverCpuPct),
        'gen CPU': fmtPct(r.loadgenCpuPct),
        'other CPU': fmtPct(r.otherCpuPct),
        'cpu speed': r.cpuSpeed?.toFixed(2) ?? '',
        '× hello': vs ? fmtRatio(r.rps, ceiling(rows, r.scenario)) : '',
        '× fastify': vs && r.server !== 'fastify' ? fmtRatio(r.rps, peakOf('fastify', r.scenario)) : '',
        rounds: r.roundRps?.map(si).join(' / ') ?? '',
      };
    }),
  );
  console.log(
    [
      '',
      '× hello: add vs echo-add, query vs echo-query, mix vs the 90/10 blend of both, @128c vs echo-add@128c (same bodies, same load generator).',
      'CPU in % of one core over the measured run: the server (all its threads), the load generator, and everything else on the machine',
      '(near 0 on a quiet machine; more means other work disturbed the run). cpu speed: a fixed loop timed before the run, relative to the',
      'first one; below ~0.8 the cores were slowed from outside. Compare rows of one run: whole runs drift by 20–30 % from one to the next.',
    ].join('\n'),
  );
}

/** What the JSON keeps of each row: everything, with the ratios spelled out. */
export function rowsForJson(rows: readonly Row[]): object[] {
  return rows.map((r) => {
    const fastify = rows.find((x) => x.kind === 'peak' && x.server === 'fastify' && x.scenario === r.scenario);
    const vs = r.kind === 'peak' && r.server !== 'hello';
    const c = vs ? ceiling(rows, r.scenario) : undefined;
    return {
      ...r,
      ratioHello: c === undefined ? null : r.rps / c,
      ratioFastify: vs && r.server !== 'fastify' && fastify !== undefined ? r.rps / fastify.rps : null,
    };
  });
}
