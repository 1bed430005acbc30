// One process per data directory. Two servers replaying and appending to the
// same log would corrupt it, so start-up takes a LOCK file holding our pid. A
// lock left by a crashed process (its pid no longer alive) is taken over.

import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { unavailable } from '../core/errors.js';

export interface DataDirLock {
  readonly file: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        file,
        release: () => {
          try {
            unlinkSync(file);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
      if (Number.isSafeInteger(holder) && holder !== process.pid && alive(holder)) {
        throw unavailable(`Data directory ${dataDir} is in use by process ${holder} (${file}); one poolq per data directory.`);
      }
      unlinkSync(file); // stale: its process is gone
    }
  }
  throw unavailable(`Could not take the lock ${file}.`);
}
