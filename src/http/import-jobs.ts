// Bulk import jobs: a file (an uploaded body spooled under the data directory,
// or a file named at start-up) is parsed off the event loop, then committed
// with one append per pool. Jobs run one at a time, in arrival order.
//
// All or nothing: the parser returns every pool's values sorted, or the first
// bad line and nothing else; only then are the values appended, all pools in
// one write-ahead-log transaction, so no reader ever sees part of an import
// and a restart before the commit finds no trace of it. Jobs live in memory:
// after a restart a job id is unknown (404) and its spool file is deleted.

import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { invalidRequest, PoolqError } from '../core/errors.js';
import type { ImportJobView, ImportOptions, ImportParser, ImportParseResult } from '../protocol/import-format.js';
import type { TopicSpec } from './subscription-hub.js';
import type { IngestWriter } from './ingest-writer.js';

interface Job {
  view: ImportJobView;
  file: string;
  options: ImportOptions;
  /** Delete the file once the job ends (spooled uploads: yes; a file named at start-up: no). */
  ownsFile: boolean;
  finished: Promise<ImportJobView>;
  settle: (view: ImportJobView) => void;
}

export interface ImportJobsOptions {
  parse: ImportParser;
  /** The server's writer (it tells live subscribers of the pools an import filled). */
  writer: () => Pick<IngestWriter, 'appendAll'>;
  /** Where uploads are spooled; clearSpool() empties it (leftovers of a previous process). */
  spoolDir: string;
  /** Called whenever a job's view changes (progress pushes). */
  onChange?: (view: ImportJobView) => void;
  /** Failed and done jobs kept for GET /imports/{jobId}. Default 1000. */
  keepFinished?: number;
}

/** Import progress pushes at most this often. */
const IMPORT_PUSH_MS = 100;

export function importTopicName(jobId: string): string {
  return `import:${jobId}`;
}

/** Commits refused because the log's queue is momentarily full are retried this often, this far apart. */
const COMMIT_RETRIES = 50;
const COMMIT_RETRY_MS = 100;

export class ImportJobs {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running = false;
  private readonly keepFinished: number;
  private readonly finishedOrder: string[] = [];

  constructor(private readonly options: ImportJobsOptions) {
    this.keepFinished = options.keepFinished ?? 1000;
  }

  /** Deletes what a previous process left in the spool directory; call once the data directory is locked. */
  clearSpool(): void {
    rmSync(this.options.spoolDir, { recursive: true, force: true });
    mkdirSync(this.options.spoolDir, { recursive: true });
  }

  /**
   * The `import` topic of /ws subscriptions: {"op":"subscribe","topic":"import","jobId":…}
   * pushes the job (as GET /imports/{jobId} answers it, plus `topic`) whenever it moves.
   */
  topic(params: Record<string, unknown>): TopicSpec {
    const jobId = params.jobId;
    if (typeof jobId !== 'string' || !this.jobs.has(jobId))
      throw invalidRequest('jobId', `jobId must name a known import job, got ${JSON.stringify(jobId)}.`);
    const name = importTopicName(jobId);
    return { name, intervalMs: IMPORT_PUSH_MS, poolIds: [], render: () => JSON.stringify({ topic: name, ...this.jobs.get(jobId)?.view }) };
  }

  /** A fresh job id and the spool file an upload for it is written to. */
  reserve(): { jobId: string; file: string } {
    const jobId = randomBytes(8).toString('hex');
    return { jobId, file: path.join(this.options.spoolDir, `${jobId}.upload`) };
  }

  /** Queues a job for `file`; resolves (finished) when it is done or failed. */
  submit(
    jobId: string,
    file: string,
    options: ImportOptions,
    bytesTotal: number,
    ownsFile: boolean,
  ): { view: ImportJobView; finished: Promise<ImportJobView> } {
    let settle!: (view: ImportJobView) => void;
    const finished = new Promise<ImportJobView>((resolve) => (settle = resolve));
    const view: ImportJobView = {
      jobId,
      state: 'queued',
      format: options.format,
      poolId: options.poolId,
      bytes: 0,
      bytesTotal,
      values: 0,
      pools: 0,
      error: null,
    };
    const job: Job = { view, file, options, ownsFile, finished, settle };
    this.jobs.set(jobId, job);
    this.queue.push(job);
    this.changed(job);
    void this.runNext();
    return { view: { ...view }, finished };
  }

  get(jobId: string): ImportJobView | undefined {
    const job = this.jobs.get(jobId);
    return job === undefined ? undefined : { ...job.view };
  }

  private changed(job: Job): void {
    this.options.onChange?.({ ...job.view });
  }

  private async runNext(): Promise<void> {
    if (this.running) return;
    const job = this.queue.shift();
    if (job === undefined) return;
    this.running = true;
    try {
      await this.run(job);
    } finally {
      this.running = false;
      void this.runNext();
    }
  }

  private async run(job: Job): Promise<void> {
    const view = job.view;
    view.state = 'running';
    this.changed(job);
    try {
      const result = await this.options.parse(job.file, job.options, (progress) => {
        view.bytes = progress.bytes;
        view.values = progress.values;
        this.changed(job);
      });
      view.bytes = result.bytes;
      view.values = result.values;
      if (!result.ok) {
        this.fail(job, { message: result.message, line: result.line });
        return;
      }
      await this.commit(result);
      view.pools = result.pools.length;
      view.state = 'done';
      this.finish(job);
    } catch (err) {
      this.fail(job, { message: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * One transaction (PoolWriter.appendAll): every pool's values, each pool's
   * in one log record, committed and applied together, so no reader sees part
   * of an import and a crash leaves all of it or none.
   */
  private async commit(result: Extract<ImportParseResult, { ok: true }>): Promise<void> {
    const items = result.pools.map(({ poolId, values }) => ({ poolId, run: values }));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.options.writer().appendAll(items, null);
        return;
      } catch (err) {
        const retry =
          err instanceof PoolqError && err.code === 'unavailable' && /queue is full/.test(err.message) && attempt < COMMIT_RETRIES;
        if (!retry) throw err;
        await new Promise((resolve) => setTimeout(resolve, COMMIT_RETRY_MS));
      }
    }
  }

  private fail(job: Job, error: { message: string; line?: number }): void {
    job.view.state = 'failed';
    job.view.error = error;
    this.finish(job);
  }

  private finish(job: Job): void {
    if (job.ownsFile) void unlink(job.file).catch(() => {});
    this.changed(job);
    job.settle({ ...job.view });
    this.finishedOrder.push(job.view.jobId);
    while (this.finishedOrder.length > this.keepFinished) this.jobs.delete(this.finishedOrder.shift()!);
  }
}
