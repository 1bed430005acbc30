// `poolq import FILE --pool ID [--column c] [--format f] [--url u]`: streams
// the file to POST /imports, then follows the job to the end. On a terminal a
// progress bar (cli-progress) shows the upload and then the parse; otherwise
// (a pipe, CI) a plain line every second carries the same numbers, MB/s and
// values/s included. Exits 1 when the import failed, naming the first bad line.

import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { ImportJobView } from '../protocol/import-format.js';
import { CliError, getJson, sendBody, type ServerOptions } from './http.js';

export interface ImportCommandOptions extends ServerOptions {
  pool?: string;
  column?: string;
  format?: string;
  /** Plain progress lines at most this often (non-TTY). */
  intervalMs: number;
}

type Job = ImportJobView;

const POLL_MS = 200;
const CONTENT_LENGTH_LIMIT = 1e9;

function formatFor(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return ext === '.ndjson' || ext === '.jsonl' ? 'ndjson' : ext === '.f64' || ext === '.bin' ? 'f64' : 'csv';
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** What the progress display shows; one implementation per kind of output. */
interface Progress {
  upload(sent: number, total: number, seconds: number): void;
  parse(job: Job, seconds: number): void;
  stop(): void;
}

function barProgress(total: number): Progress {
  const bar = new cliProgress.SingleBar(
    { format: '{phase} |{bar}| {percentage}% · {detail}', hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { phase: 'upload', detail: '' });
  return {
    upload: (sent, _total, s) => bar.update(sent, { phase: 'upload', detail: `${mb(sent)} MB · ${mb(sent / s)} MB/s` }),
    parse: (job, s) =>
      bar.update(job.bytes, {
        phase: 'import',
        detail: `${job.values.toLocaleString('en')} values · ${Math.round(job.values / s).toLocaleString('en')} values/s`,
      }),
    stop: () => bar.stop(),
  };
}

function lineProgress(intervalMs: number): Progress {
  let last = -Infinity;
  const due = (): boolean => {
    const now = performance.now();
    if (now - last < intervalMs) return false;
    last = now;
    return true;
  };
  return {
    upload: (sent, total, s) => {
      if (due())
        console.log(`upload ${mb(sent)}/${mb(total)} MB (${Math.round((100 * sent) / Math.max(1, total))} %) ${mb(sent / s)} MB/s`);
    },
    parse: (job, s) => {
      if (due()) {
        const pct = Math.round((100 * job.bytes) / Math.max(1, job.bytesTotal));
        console.log(`import ${job.state} ${pct} % ${job.values} values ${Math.round(job.values / s)} values/s ${mb(job.bytes / s)} MB/s`);
      }
    },
    stop: () => {},
  };
}

export async function importFile(file: string, options: ImportCommandOptions): Promise<Job> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new CliError(`cannot read ${file}`);
  }
  const query = new URLSearchParams({ format: options.format ?? formatFor(file) });
  if (options.pool !== undefined) query.set('poolId', options.pool);
  if (options.column !== undefined) query.set('column', options.column);
  const progress = process.stdout.isTTY ? barProgress(size) : lineProgress(options.intervalMs);
  const started = performance.now();
  const seconds = (): number => Math.max(1e-3, (performance.now() - started) / 1000);
  let sent = 0;
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  stream.on('data', (chunk) => {
    sent += chunk.length;
    progress.upload(sent, size, seconds());
  });
  try {
    const accepted = await sendBody<{ jobId: string }>(options, `imports?${query}`, {
      method: 'POST',
      body: Readable.toWeb(stream) as ReadableStream,
      duplex: 'half',
      // The uWS binding refuses a 10-digit content-length; larger files go chunked.
      headers: size < CONTENT_LENGTH_LIMIT ? { 'content-length': String(size) } : {},
    });
    const uploadSeconds = seconds();
    const parseStarted = performance.now();
    for (;;) {
      const job = await getJson<Job>(options, `imports/${accepted.jobId}`);
      const parseSeconds = Math.max(1e-3, (performance.now() - parseStarted) / 1000);
      progress.parse(job, parseSeconds);
      if (job.state === 'done' || job.state === 'failed') {
        progress.stop();
        const total = seconds();
        if (job.state === 'failed') {
          const where = job.error?.line !== undefined ? ` at line ${job.error.line}` : '';
          throw new CliError(`import failed${where}: ${job.error?.message ?? 'unknown error'} (nothing was imported)`);
        }
        console.log(
          `done: ${job.values} values into ${job.pools} pool(s) in ${total.toFixed(2)} s ` +
            `(${mb(size / total)} MB/s, ${Math.round(job.values / total)} values/s; upload ${uploadSeconds.toFixed(2)} s)`,
        );
        return job;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    progress.stop();
  }
}
