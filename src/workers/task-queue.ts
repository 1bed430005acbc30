// piscina's task queue for the heavy-task worker, in two lanes: the tasks a
// request waits for (sorts and parses) go before queued background work
// (merges), each lane first in, first out. A merge already running is not
// interrupted, but a bulk append's sort no longer waits behind every merge a
// compaction cascade queued. (A merge thread of its own would also spare the
// running merge, but its isolate cost 8-10 MB of RSS: 1 byte per value at 10^7.)

import { Piscina, type TaskQueue } from 'piscina';

type Task = Parameters<TaskQueue['push']>[0];

/** Marks a task (the object given to piscina's run) as background work. */
export function asBackground<T extends object>(task: T): T {
  return Object.assign(task, { [Piscina.queueOptionsSymbol]: { background: true } });
}

function isBackground(task: Task): boolean {
  const options = task[Piscina.queueOptionsSymbol as keyof Task] as { background?: boolean } | null;
  return options?.background === true;
}

export class TwoLaneTaskQueue implements TaskQueue {
  private readonly foreground: Task[] = [];
  private readonly background: Task[] = [];

  get size(): number {
    return this.foreground.length + this.background.length;
  }

  push(task: Task): void {
    (isBackground(task) ? this.background : this.foreground).push(task);
  }

  unshift(task: Task): void {
    (isBackground(task) ? this.background : this.foreground).unshift(task);
  }

  shift(): Task | null {
    return this.foreground.shift() ?? this.background.shift() ?? null;
  }

  remove(task: Task): void {
    for (const lane of [this.foreground, this.background]) {
      const at = lane.indexOf(task);
      if (at >= 0) {
        lane.splice(at, 1);
        return;
      }
    }
  }
}
