// Talking to POST /imports and GET /imports/{jobId} of a real server, and
// streaming large generated bodies to it without holding them in memory.

import http from 'node:http';
import { Readable } from 'node:stream';
import type { ImportJobView } from '../../src/protocol/import-format.js';
import type { ServerProcess } from './server-process.js';

export type ImportJob = ImportJobView;

/** A reply of POST /imports: 202 {jobId, state} or an error. */
export interface ImportReply {
  jobId: string;
  state: string;
  error?: string;
  message?: string;
  field?: string;
}

/** POST /imports?query with `body`; resolves with the status and JSON reply. */
export async function postImport(
  server: ServerProcess,
  query: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: ImportReply }> {
  const res = await fetch(server.url(`/imports?${query}`), { method: 'POST', body, headers });
  return { status: res.status, json: (await res.json()) as ImportReply };
}

export async function getJob(
  server: ServerProcess,
  jobId: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; job: ImportJob }> {
  const res = await fetch(server.url(`/imports/${jobId}`), { headers });
  return { status: res.status, job: (await res.json()) as ImportJob };
}

/** Polls the job until it is done or failed. */
export async function waitForJob(server: ServerProcess, jobId: string, headers: Record<string, string> = {}): Promise<ImportJob> {
  for (;;) {
    const { status, job } = await getJob(server, jobId, headers);
    if (status !== 200) throw new Error(`GET /imports/${jobId}: ${status} ${JSON.stringify(job)}`);
    if (job.state === 'done' || job.state === 'failed') return job;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Imports `body` and waits for the job. */
export async function importAndWait(server: ServerProcess, query: string, body: string | Uint8Array): Promise<ImportJob> {
  const { status, json } = await postImport(server, query, body);
  if (status !== 202) throw new Error(`POST /imports?${query}: ${status} ${JSON.stringify(json)}`);
  return waitForJob(server, json.jobId);
}

/**
 * Streams `lines(i)` for i in [0, count) as the body of POST /imports, with an
 * exact content-length (every line must be `lineBytes` long, newline included),
 * generated as it is sent: the test process never holds the body.
 */
export function streamImport(
  server: ServerProcess,
  query: string,
  count: number,
  lineBytes: number,
  line: (i: number) => string,
): Promise<{ status: number; json: ImportReply }> {
  const BATCH = 1024;
  function* chunks(): Generator<Buffer> {
    for (let i = 0; i < count; i += BATCH) {
      let text = '';
      for (let j = i; j < Math.min(count, i + BATCH); j++) text += line(j);
      yield Buffer.from(text);
    }
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      server.url(`/imports?${query}`),
      { method: 'POST', headers: lineBytes === null ? {} : { 'content-length': String(count * lineBytes) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as ImportReply }));
      },
    );
    req.on('error', reject);
    Readable.from(chunks()).pipe(req);
  });
}

/** Resident memory of a process in bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}
