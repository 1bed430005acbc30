// Idempotency keys across a real crash: a child process (the built store,
// dist/, on a real directory, fsync=always) makes keyed appends and keyed
// transactions with several in flight and reports each acknowledgement; it is
// SIGKILLed at a random moment. Then the store is reopened here and every
// change is retried with its key: an acknowledged one must get its original
// outcome back, marked replayed, and append nothing; an unacknowledged one is
// either replayed or appended now, never both; in the end every pool holds
// its values exactly once. Three rounds on one directory, so later rounds
// also recover keys from the key file of the snapshot the previous close wrote.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppendOutcome } from '../src/core/engine.js';
import { openDurableStore } from '../src/storage/durable-store.js';
import type { AppendResult } from '../src/storage/pool-writer.js';
import { createTestEngine } from './helpers/engines.js';
import { seededRandom } from './helpers/random.js';
import { sortedRun } from './helpers/storage-model.js';

const DIST = resolve(import.meta.dirname, '../dist');
const tmpRoot = mkdtempSync(join(tmpdir(), 'poolq-keys-kill-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

/** Change n: a transaction over pools 2n and 2n + 1 when n % 5 === 0, else an append to pool 2n; each value is n. */
const sizeOf = (n: number) => 1 + (n % 3);
const itemsOf = (n: number) =>
  n % 5 === 0
    ? [
        { poolId: 2 * n, run: sortedRun(new Array(sizeOf(n)).fill(n)) },
        { poolId: 2 * n + 1, run: sortedRun([n]) },
      ]
    : [{ poolId: 2 * n, run: sortedRun(new Array(sizeOf(n)).fill(n)) }];

const CHILD = `
const [dist, dataDir, first] = process.argv.slice(1);
const { openDurableStore } = await import(dist + '/src/storage/durable-store.js');
const { createEngine } = await import(dist + '/src/core/create-engine.js');
const store = await openDurableStore({ dataDir, fsync: 'always', engine: await createEngine({ kind: 'ts' }), snapshotIntervalMs: 0, snapshotWalBytes: 8192 });
const run = (n, size) => Float64Array.from({ length: size }, () => n);
const inFlight = new Set();
process.stdout.write('ready\\n');
for (let n = Number(first); ; n++) {
  const size = 1 + (n % 3);
  const key = 'change-' + n;
  const result = n % 5 === 0
    ? store.appendAll([{ poolId: 2 * n, run: run(n, size) }, { poolId: 2 * n + 1, run: run(n, 1) }], { key })
    : store.append(2 * n, run(n, size), { key });
  const p = Promise.resolve(result).then((outcome) => process.stdout.write(JSON.stringify({ n, outcome }) + '\\n'));
  inFlight.add(p);
  p.finally(() => inFlight.delete(p));
  if (inFlight.size >= 8) await Promise.race(inFlight);
}
`;

/** Runs the child from change `first` on; SIGKILLs it after `acks` acknowledgements. Returns what it acknowledged. */
function runAndKill(dataDir: string, first: number, acks: number): Promise<Map<number, AppendOutcome | AppendOutcome[]>> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, DIST, dataDir, String(first)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked = new Map<number, AppendOutcome | AppendOutcome[]>();
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') continue;
        const { n, outcome } = JSON.parse(line) as { n: number; outcome: AppendOutcome | AppendOutcome[] };
        acked.set(n, outcome);
        if (acked.size === acks) child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') done(acked);
      else fail(new Error(`child exited with ${code} before the kill: ${stderr}`));
    });
  });
}

describe('idempotency keys after SIGKILL (real process, real files, fsync=always)', () => {
  it('a retry of every change gets the acknowledged outcome back and appends nothing; unacknowledged ones land exactly once', async () => {
    expect(existsSync(join(DIST, 'src/storage/durable-store.js')), 'run `npm run build` first (npm test does)').toBe(true);
    const dataDir = join(tmpRoot, 'data');
    const random = seededRandom(Number(process.env.CRASH_SEED ?? 4242));
    let first = 0;
    for (let round = 0; round < 3; round++) {
      const acked = await runAndKill(dataDir, first, 30 + Math.floor(random() * 120));
      const last = Math.max(...acked.keys()) + 16; // changes in flight at the kill are within 8 of the last answer
      const engine = await createTestEngine('ts');
      const store = await openDurableStore({ dataDir, fsync: 'always', engine, snapshotIntervalMs: 0 });
      let replayedAcked = 0;
      for (let n = first; n <= last; n++) {
        const items = itemsOf(n);
        const seqBefore = store.stats().seq;
        const key = `change-${n}`;
        const result = (
          n % 5 === 0 ? await store.appendAll(items, { key }) : await store.append(items[0].poolId, items[0].run, { key })
        ) as AppendResult | AppendResult[];
        const outcomes = Array.isArray(result) ? result : [result];
        const original = acked.get(n);
        if (original !== undefined) {
          const expected = (Array.isArray(original) ? original : [original]).map((o) => ({ ...o, replayed: true }));
          expect(outcomes, `change ${n} (acknowledged before the kill in round ${round})`).toEqual(expected);
          expect(store.stats().seq, `change ${n} appended again`).toBe(seqBefore);
          replayedAcked++;
        }
        for (const item of items)
          expect(engine.countOf(item.poolId), `pool ${item.poolId} after retrying change ${n}`).toBe(item.run.length);
      }
      expect(replayedAcked).toBe(acked.size);
      // A second retry of everything is a replay too.
      for (let n = first; n <= last; n++) {
        const items = itemsOf(n);
        const r =
          n % 5 === 0
            ? await store.appendAll(items, { key: `change-${n}` })
            : await store.append(items[0].poolId, items[0].run, { key: `change-${n}` });
        for (const o of Array.isArray(r) ? r : [r]) expect(o.replayed).toBe(true);
      }
      await store.close(); // a snapshot and its key file: the next round recovers these keys from them
      first = last + 1;
    }
  }, 120_000);
});
