// The heavy-task worker's two-lane queue: work a request waits for (sorts,
// parses) runs before queued merges, each lane in order; checked on the queue
// itself and through a real one-thread WorkerPool, where a sort submitted
// behind two large merges finishes before the second one starts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Piscina } from 'piscina';
import { allocateRun, trustSorted } from '../src/core/sorted-run.js';
import { plainRun } from '../src/core/stored-run.js';
import { startWorkerPool, type WorkerPool } from '../src/workers/worker-pool.js';
import { asBackground, TwoLaneTaskQueue } from '../src/workers/task-queue.js';

type QueuedTask = Parameters<TwoLaneTaskQueue['push']>[0];

function fakeTask(name: string, background: boolean): QueuedTask & { name: string } {
  const options = background ? { background: true } : null;
  return { name, [Piscina.queueOptionsSymbol]: options } as unknown as QueuedTask & { name: string };
}

describe('TwoLaneTaskQueue', () => {
  it('hands out foreground tasks first, each lane first in first out, and removes from either lane', () => {
    const queue = new TwoLaneTaskQueue();
    const tasks = [fakeTask('m1', true), fakeTask('s1', false), fakeTask('m2', true), fakeTask('s2', false), fakeTask('m3', true)];
    for (const t of tasks) queue.push(t);
    expect(queue.size).toBe(5);
    queue.remove(tasks[2]); // m2
    queue.remove(tasks[3]); // s2
    queue.unshift(fakeTask('s0', false));
    const order: string[] = [];
    for (let t = queue.shift(); t !== null; t = queue.shift()) order.push((t as unknown as { name: string }).name);
    expect(order).toEqual(['s0', 's1', 'm1', 'm3']);
    expect(queue.size).toBe(0);
  });

  it('asBackground marks the task object itself, with a symbol structured clone drops', () => {
    const task = asBackground({ op: 'merge' });
    expect(task.op).toBe('merge');
    expect(structuredClone(task)).toEqual({ op: 'merge' });
    expect(Object.getOwnPropertySymbols(structuredClone(task))).toEqual([]);
  });
});

describe('one worker thread: a sort overtakes queued merges', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await startWorkerPool({ threads: 1, engine: 'wasm', inline: { sortBatch: () => Promise.reject(new Error('not inline')) } });
  });
  afterAll(() => pool.close());

  function bigRun(n: number, offset: number) {
    const values = allocateRun(n);
    for (let i = 0; i < n; i++) values[i] = offset + 2 * i;
    return plainRun(trustSorted(values), n);
  }

  it('finishes the sort before the second queued merge', async () => {
    const n = 1 << 21; // merges of 4 Mi values: tens of milliseconds each
    const a = bigRun(n, 0);
    const b = bigRun(n, 1);
    const finished: string[] = [];
    const first = pool.merge(a, b, 'plain').then(() => finished.push('merge 1'));
    const second = pool.merge(a, b, 'plain').then(() => finished.push('merge 2'));
    const batch = allocateRun(1 << 15);
    for (let i = 0; i < batch.length; i++) batch[i] = batch.length - i;
    const sort = pool.sortBatch(batch).then(() => finished.push('sort'));
    await Promise.all([first, second, sort]);
    expect(finished).toEqual(['merge 1', 'sort', 'merge 2']);
    expect(batch[0]).toBe(1);
  });
});
