// The bulk ingest paths of the HTTP API:
//   POST /pools/{poolId}/values  Content-Type: application/octet-stream
//       little-endian float64s. A body large enough to be sorted on a worker
//       is read straight into an exact-size SharedArrayBuffer, checked and
//       sorted there in place, logged from place and kept by the engine as a
//       run: after uWS's receive buffer, the bytes are never copied again.
//   POST /batch  application/x-ndjson, one {"poolId","poolValues"} per line
//       (ndjson-batch.ts), parsed while it streams in, validated completely,
//       then committed as one unit; reply {"pools": N, "values": M}.
// Both accept an Idempotency-Key header (ingest-writer.ts).

import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import type { Config } from '../config.js';
import type { AppendOutcome, QuantileEngine } from '../core/engine.js';
import { PoolqError } from '../core/errors.js';
import type { SortedRun } from '../core/sorted-run.js';
import { allocateBatch } from '../core/sorted-run.js';
import { copyFloat64, float64View } from '../protocol/binary-values.js';
import { NdjsonBatchParser, type ParsedBatch } from '../protocol/ndjson-batch.js';
import type { RequestOffload as Offload } from '../protocol/offload.js';
import type { BodyBufferPool } from './body-buffers.js';
import { LINGER_MAX_BYTES, LINGER_MS, readBody, refuseBody } from './body-reader.js';
import { inUwsCallback, type Exchange } from './exchange.js';
import type { IngestWriter } from './ingest-writer.js';
import type { PoolRefusal } from './router.js';

export interface IngestDeps {
  config: Config;
  engine: QuantileEngine;
  offload: Offload | null;
  bodyBuffers: BodyBufferPool;
  writer(): IngestWriter;
}

/** Whether a content-type names raw float64 bytes. */
export function isOctetStream(contentType: string): boolean {
  return contentType.toLowerCase().startsWith('application/octet-stream');
}

/** The sort's non-finite error names `poolValues[i]`; a binary body's values are `body[i]`. */
function asBodyField(err: unknown): unknown {
  if (err instanceof PoolqError && err.field?.startsWith('poolValues[')) {
    return new PoolqError(err.code, err.message.replace('poolValues', 'body'), err.field.replace('poolValues', 'body'));
  }
  return err;
}

const OK = '200 OK';
const CREATED = '201 Created';

export class IngestRoutes {
  constructor(private readonly deps: IngestDeps) {}

  /** Sorts a batch, on a worker when it is large (a shared array is sorted in place there). */
  private sort(values: Float64Array): SortedRun | Promise<SortedRun> {
    const { offload, config, engine } = this.deps;
    return offload !== null && values.length >= config.offloadSortValues && values.buffer instanceof SharedArrayBuffer
      ? offload.sortBatch(values)
      : engine.sortBatch(values);
  }

  /** `window`: a retention window to set first, because this request creates the pool (null: none). */
  binaryValues(
    ex: Exchange,
    res: HttpResponse,
    contentLength: string,
    poolId: number,
    key: string | null,
    window: number | null = null,
  ): void {
    const { config } = this.deps;
    const sortOnWorker = this.deps.offload !== null ? config.offloadSortValues * 8 : Infinity;
    readBody(
      res,
      contentLength,
      config.maxBodyBytes,
      sortOnWorker,
      this.deps.bodyBuffers,
      (result) => {
        if (!result.ok) return refuseBody(ex, result.reason, result.close, config.maxBodyBytes);
        try {
          const view = float64View(result.body, 'body');
          // A small body may be a view of uWS's chunk (valid during this call): copy it.
          const values =
            view.buffer instanceof SharedArrayBuffer ? view : copyFloat64(result.body, 0, view.length, allocateBatch(view.length));
          const sorted = this.sort(values);
          const write = (run: SortedRun) =>
            window === null
              ? this.deps.writer().append(poolId, run, key)
              : Promise.resolve(this.deps.writer().setRetention(poolId, window)).then(() => this.deps.writer().append(poolId, run, key));
          const appended = sorted instanceof Promise ? sorted.then(write) : write(sorted);
          ex.settle(
            appended instanceof Promise ? appended.catch((err: unknown) => Promise.reject(asBodyField(err))) : appended,
            (outcome: AppendOutcome) => {
              if (outcome.created || window !== null) ex.send(CREATED, `{"status":"inserted","count":${outcome.count}}`);
              else ex.send(OK, `{"status":"appended","count":${outcome.count}}`);
            },
          );
        } catch (err) {
          ex.sendError(asBodyField(err));
        }
      },
      // Exact size, never recycled: the sorted body becomes the pool's run.
      { allocateShared: (size) => new SharedArrayBuffer(size) },
    );
  }

  /** `guard`: the router's pool hook, applied to every pool of the batch before anything is appended. */
  batch(ex: Exchange, res: HttpResponse, contentLength: string, key: string | null, guard: (poolId: number) => PoolRefusal | null): void {
    const max = this.deps.config.maxBodyBytes;
    if (contentLength !== '') {
      if (!/^\d{1,16}$/.test(contentLength)) return refuseBody(ex, 'bad_length', true, max);
      const expected = Number(contentLength);
      // Refused before reading: the same lingering rule as every body (body-reader.ts).
      if (expected > max) {
        readBody(res, contentLength, max, Infinity, this.deps.bodyBuffers, (r) => {
          if (!r.ok) refuseBody(ex, r.reason, r.close, max);
        });
        return;
      }
    }
    const parser = new NdjsonBatchParser();
    let received = 0;
    let done = false;
    // Set when the body is refused (a bad line, over --max-body): the rest is
    // read and dropped up to the lingering bound, then the refusal is sent
    // (body-reader.ts, "Lingering").
    let refusal: unknown = null;
    let refusedAt = 0;
    let timer: NodeJS.Timeout | null = null;
    const refuse = (err: unknown) => {
      refusal = err;
      refusedAt = received;
      timer = setTimeout(() => {
        if (done) return;
        done = true;
        ex.sendError(refusal, undefined, true);
      }, LINGER_MS);
    };
    res.onData((chunk, isLast) => {
      if (done) return;
      received += chunk.byteLength;
      if (refusal === null && received > max) {
        refuse(new PoolqError('payload_too_large', `The request body exceeds the ${max}-byte limit (--max-body).`));
      }
      if (refusal === null) {
        try {
          parser.push(new Uint8Array(chunk));
          if (isLast) {
            done = true;
            const parsed = parser.end();
            inUwsCallback(res, () => {
              for (const entry of parsed.entries) {
                const refusal = guard(entry.poolId);
                if (refusal !== null) return ex.sendError(refusal.error, refusal.headers);
              }
              this.commitBatch(ex, parsed, key);
            });
          }
        } catch (err) {
          refuse(err);
        }
      }
      if (refusal !== null && (isLast || received - refusedAt > LINGER_MAX_BYTES)) {
        done = true;
        if (timer !== null) clearTimeout(timer);
        inUwsCallback(res, () => ex.sendError(refusal, undefined, !isLast));
      }
    });
  }

  private commitBatch(ex: Exchange, parsed: ParsedBatch, key: string | null): void {
    const runs = parsed.entries.map((e) => this.sort(e.values));
    const all = runs.some((r) => r instanceof Promise) ? Promise.all(runs) : (runs as SortedRun[]);
    ex.settle(all, (sorted) => {
      const items = sorted.map((run, i) => ({ poolId: parsed.entries[i].poolId, run }));
      ex.settle(this.deps.writer().appendAll(items, key), () => {
        ex.send(OK, `{"pools":${items.length},"values":${parsed.values}}`);
      });
    });
  }
}
