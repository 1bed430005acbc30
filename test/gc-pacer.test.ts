// The GC pacer (src/core/gc-pacer.ts): freed run buffers reach the OS at the
// next full collection, and the pacer makes that happen when enough became
// garbage and again once things are quiet. The collector is injected here, so
// the timing rules are checked exactly; one test runs V8's real collector.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { exposeGc, GcPacer } from '../src/core/gc-pacer.js';
import { createEngine } from '../src/core/create-engine.js';

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('GcPacer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects on the turn after the reported garbage reaches the threshold, never inside the report', async () => {
    let collections = 0;
    const pacer = new GcPacer(() => collections++, { thresholdBytes: 100, idleMs: 60_000 });
    pacer.note(60);
    await nextTurn();
    expect(collections).toBe(0);
    pacer.note(40);
    expect(collections).toBe(0); // not synchronously: the caller is mid-work
    await nextTurn();
    expect(collections).toBe(1);
    pacer.note(99);
    await nextTurn();
    expect(collections).toBe(1); // the count starts again after a collection
    pacer.stop();
  });

  it('collects once more after idleMs without reports, and not while reports keep coming', () => {
    vi.useFakeTimers();
    let collections = 0;
    const pacer = new GcPacer(() => collections++, { thresholdBytes: 1 << 30, idleMs: 1000 });
    pacer.note(1);
    vi.advanceTimersByTime(900);
    pacer.note(1); // pushes the idle collection back
    vi.advanceTimersByTime(900);
    expect(collections).toBe(0);
    vi.advanceTimersByTime(100);
    expect(collections).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(collections).toBe(1); // nothing reported since: nothing to do
    pacer.note(0);
    vi.advanceTimersByTime(10_000);
    expect(collections).toBe(1); // empty reports are not news
  });

  it("reaches V8's collector without a command-line flag, and a collection frees a dropped shared buffer", async () => {
    const gc = exposeGc();
    expect(gc).toBeTypeOf('function');
    gc!();
    const before = process.memoryUsage().arrayBuffers;
    const held: SharedArrayBuffer[] = [new SharedArrayBuffer(64 << 20)];
    new Float64Array(held[0]).fill(1);
    // Other buffers may be freed meanwhile (a background sweep of earlier garbage): most of 64 MiB shows.
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThan(56 << 20);
    held.pop();
    gc!();
    // V8 frees dead backing stores on a background sweeper thread, which a
    // loaded machine may run a little later: wait for it, up to 5 s.
    const deadline = Date.now() + 5000;
    while (process.memoryUsage().arrayBuffers - before >= 8 << 20 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc!();
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
  });

  it('the engine reports the run bytes a merge lets go', async () => {
    const released: number[] = [];
    const engine = await createEngine({
      kind: 'ts',
      tail: { appendMaxValues: 0, maxValues: 0 },
      onRelease: (bytes) => released.push(bytes),
    });
    engine.appendValues(
      1,
      new Float64Array(1000).map((_, i) => i * 0.5),
    );
    engine.appendValues(
      1,
      new Float64Array(1000).map((_, i) => i * 0.25),
    ); // merges with the first: 2 × 8000 B freed
    expect(released).toEqual([16_000]);
    engine.deletePool(1);
    expect(released).toEqual([16_000, 16_000]);
  });
});
