// The real file layer's write path (src/storage/file-layer.ts): small writes on
// the calling thread, large ones on libuv's pool, and a pause of calling-thread
// writes after one of them blocked (dirty-page throttling), on a real file.

import { writevSync } from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeFile, type SyncWritev } from '../src/storage/file-layer.js';

const dir = mkdtempSync(join(tmpdir(), 'poolq-file-layer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

async function openFile(name: string, syncWritev?: SyncWritev): Promise<{ file: NodeFile; path: string }> {
  const path = join(dir, name);
  return { file: new NodeFile(await open(path, 'w+'), syncWritev), path };
}

describe('NodeFile.write', () => {
  it('writes small chunks on the calling thread and large ones on the pool, all at their positions', async () => {
    const { file, path } = await openFile('split');
    await file.write([bytes(10, 1), bytes(20, 2)], 0);
    await file.write([bytes(100 << 10, 3)], 30);
    await file.write([bytes(5, 4)], 30 + (100 << 10));
    await file.close();
    expect(file.callerThreadWrites).toBe(2);
    expect(file.poolWrites).toBe(1);
    const data = readFileSync(path);
    expect(data.length).toBe(35 + (100 << 10));
    expect([data[0], data[9], data[10], data[29], data[30], data[29 + (100 << 10)], data[30 + (100 << 10)]]).toEqual([1, 1, 2, 2, 3, 3, 4]);
  });

  it('after a calling-thread write blocks for milliseconds, later small writes go to the pool', async () => {
    let slowCalls = 0;
    const slow: SyncWritev = (fd, buffers, position) => {
      slowCalls++;
      const until = performance.now() + 8; // a throttled write (the threshold is 5 ms)
      while (performance.now() < until);
      return writevSync(fd, buffers as Uint8Array[], position);
    };
    const { file, path } = await openFile('backoff', slow);
    await file.write([bytes(8, 7)], 0);
    await file.write([bytes(8, 8)], 8);
    await file.write([bytes(8, 9)], 16);
    await file.close();
    expect(slowCalls).toBe(1);
    expect(file.callerThreadWrites).toBe(1);
    expect(file.poolWrites).toBe(2);
    expect(Array.from(readFileSync(path))).toEqual([...bytes(8, 7), ...bytes(8, 8), ...bytes(8, 9)]);
  });
});
