// A worker module for tests: the built heavy-tasks.js, except that a worker
// dies (process.exit in a worker thread ends only that thread) on the merges
// and snapshots the test asks for. The counts live on shared memory
// (WorkerPoolOptions.moduleOptions), so they hold across every worker thread,
// including those piscina starts to replace a dead one. Plain JavaScript:
// piscina loads built modules only. Made by faultPlan() in
// test/workers-offload.test.ts.

import { writeFileSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { allocateRun } from '../../dist/src/core/sorted-run.js';
import heavyTasks from '../../dist/src/workers/heavy-tasks.js';

/** @type {{ merges: Int32Array, snapshots: Int32Array }} */
const faults = workerData.moduleOptions;

/** Whether this task is one of those still to fail (decrements the shared count). */
const fails = (counter) => Atomics.sub(counter, 0, 1) > 0;

export default heavyTasks.then((handle) => (task) => {
  if (task.op === 'merge' && fails(faults.merges)) {
    allocateRun(task.a.count + task.b.count); // dies mid-task: output allocated, never written
    process.exit(70);
  }
  if (task.op === 'snapshot' && fails(faults.snapshots)) {
    writeFileSync(task.path, new Uint8Array(4096)); // a torn temp file
    process.exit(70);
  }
  return handle(task);
});
