// POST /imports and GET /imports/{jobId} (route table entries startImport,
// getImport). The query is checked before a byte of the body is spooled (a
// refusal lets a small body drain first, body-reader.ts "Lingering"); the
// body streams to a spool file under the data directory (import-upload.ts);
// 202 names the job, which ImportJobs runs.

import { PoolqError, unavailable } from '../core/errors.js';
import { parseImportQuery, type ImportOptions } from '../protocol/import-format.js';
import { discardBodyThen } from './body-reader.js';
import type { ImportJobs } from './import-jobs.js';
import { spoolBody } from './import-upload.js';
import type { Handler, Handlers } from './router.js';

const OK = '200 OK';
const ACCEPTED = '202 Accepted';

export interface ImportHandlerContext {
  imports: ImportJobs;
  /** --max-import. */
  maxImportBytes: number;
}

export function createImportHandlers(ctx: ImportHandlerContext): Pick<Handlers, 'startImport' | 'getImport'> {
  const { imports, maxImportBytes: max } = ctx;
  const startImport: Handler = {
    // The body never reaches handle: stream always takes it (a streamed route).
    handle: () => {},
    stream: (ex, res, input, contentLength, guard) => {
      let options: ImportOptions;
      try {
        options = parseImportQuery(new URLSearchParams(input.query));
        const refusal = options.poolId === null ? null : guard(options.poolId);
        if (refusal !== null) throw Object.assign(refusal.error, { headers: refusal.headers });
      } catch (err) {
        discardBodyThen(res, contentLength, () => ex.sendError(err, (err as { headers?: Record<string, string> }).headers));
        return true;
      }
      const { jobId, file } = imports.reserve();
      spoolBody(ex, contentLength, max, file, (result) => {
        if (!result.ok) {
          const err =
            result.reason === 'too_large'
              ? new PoolqError('payload_too_large', `The import exceeds the ${max}-byte limit (--max-import).`)
              : result.reason === 'bad_length'
                ? new PoolqError('invalid_request', 'The content-length header is not a valid length.', 'content-length')
                : unavailable(`The import could not be written to the data directory: ${result.message}`);
          ex.sendError(err, undefined, true);
          return;
        }
        const { view } = imports.submit(jobId, file, options, result.bytes, true);
        ex.send(ACCEPTED, JSON.stringify({ jobId, state: view.state }), undefined, { location: `/imports/${jobId}` });
      });
      return true;
    },
  };
  const getImport: Handler = {
    handle: (ex, input) => {
      const jobId = input.params.jobId;
      const job = imports.get(jobId);
      if (job === undefined)
        ex.sendError(new PoolqError('not_found', `No import job ${JSON.stringify(jobId)} (jobs are forgotten when the server restarts).`));
      else ex.send(OK, JSON.stringify(job));
    },
  };
  return { startImport, getImport };
}
