// The pools the append and query benchmarks work on: one per size in each
// engine, built the way clients build them (appends of `batch` values, merges
// inline), with the same seed per size so both engines hold the same values,
// and kept as a snapshot of their runs to reset to.

import type { QuantileEngine } from '../../src/core/engine.js';
import type { EngineKind } from '../../src/core/kernels.js';
import type { SortedRun } from '../../src/core/sorted-run.js';
import { buildPool, seededRng } from './data.js';
import { progress } from './measure.js';
import { formatCount } from './report.js';

export interface PoolFixture {
  engine: QuantileEngine;
  poolId: number;
  size: number;
  snapshot: readonly SortedRun[];
}

export function fixtureKey(kind: EngineKind, size: number): string {
  return `${kind}:${size}`;
}

/** Fixtures keyed by fixtureKey(kind, size); pool ids are the sizes' indexes. */
export function buildPoolFixtures(engines: readonly QuantileEngine[], sizes: readonly number[], batch: number): Map<string, PoolFixture> {
  const fixtures = new Map<string, PoolFixture>();
  for (const engine of engines) {
    engine.setMergeOffloader(null);
    for (const [poolId, size] of sizes.entries()) {
      const t = performance.now();
      buildPool(engine, poolId, size, batch, seededRng(size));
      fixtures.set(fixtureKey(engine.kind, size), { engine, poolId, size, snapshot: engine.runsOf(poolId) });
      progress(`  built ${engine.kind} pool of ${formatCount(size)} in ${((performance.now() - t) / 1000).toFixed(2)} s (${engine.runLengths(poolId).length} runs)`);
    }
  }
  return fixtures;
}
