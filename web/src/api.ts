// Talking to poolq from the page: JSON requests with the bearer token (asked
// for on the first 401 and kept in sessionStorage, so it lives as long as the
// tab), errors turned into ApiError with poolq's error code.

import { subscribe } from './live.js';

const TOKEN_KEY = 'poolq-token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The token this tab was given, if any. */
export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders(): Record<string, string> {
  const token = storedToken();
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

/** Shows the token dialog and resolves once a token was entered. */
function askForToken(message: string): Promise<void> {
  const dialog = document.getElementById('token-dialog') as HTMLDialogElement;
  const input = document.getElementById('token-input') as HTMLInputElement;
  (document.getElementById('token-error') as HTMLElement).textContent = message;
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        if (input.value === '') {
          resolve(askForToken('A token is needed to read this server.')); // closed with Escape
          return;
        }
        sessionStorage.setItem(TOKEN_KEY, input.value);
        input.value = '';
        resolve();
      },
      { once: true },
    );
    if (!dialog.open) dialog.showModal();
  });
}

let pendingToken: Promise<void> | null = null;

/** Waits for a (new) token; concurrent 401s share one dialog. */
function tokenNeeded(): Promise<void> {
  const hadToken = sessionStorage.getItem(TOKEN_KEY) !== null;
  pendingToken ??= askForToken(hadToken ? 'That token was refused.' : '').finally(() => (pendingToken = null));
  return pendingToken;
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as { error: string; message: string };
    return new ApiError(res.status, body.error, body.message);
  } catch {
    return new ApiError(res.status, 'http', `HTTP ${res.status}`);
  }
}

/** A JSON request; a 401 asks for the token and tries again. */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  for (;;) {
    const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
    if (res.status === 401) {
      await tokenNeeded();
      continue;
    }
    if (!res.ok) throw await errorOf(res);
    return (res.status === 204 ? null : await res.json()) as T;
  }
}

export async function metricsText(): Promise<string> {
  const res = await fetch('/metrics');
  if (!res.ok) throw await errorOf(res);
  return res.text();
}

export interface UploadProgress {
  phase: 'uploading' | 'importing' | 'done' | 'failed';
  /** 0 … 1 over the whole import: the upload is the first half, parsing and committing the second. */
  fraction: number;
  detail: string;
}

export interface ImportJob {
  jobId: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  bytes: number;
  bytesTotal: number;
  values: number;
  error: { message: string; line?: number } | null;
}

/** Sends a file to POST /imports (XMLHttpRequest: fetch reports no upload progress), then follows the job. */
export function uploadImport(query: string, file: File, onProgress: (p: UploadProgress) => void): Promise<ImportJob> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/imports?${query}`);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable)
        onProgress({ phase: 'uploading', fraction: (0.5 * e.loaded) / e.total, detail: `uploading ${percent(e.loaded / e.total)}` });
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload failed (network error).'));
    xhr.onload = () => {
      if (xhr.status === 401) {
        void tokenNeeded().then(() => uploadImport(query, file, onProgress).then(resolve, reject));
        return;
      }
      const body = JSON.parse(xhr.responseText) as { jobId: string; error?: string; message?: string };
      if (xhr.status !== 202) {
        reject(new ApiError(xhr.status, body.error ?? 'http', body.message ?? `HTTP ${xhr.status}`));
        return;
      }
      followImport(body.jobId, onProgress).then(resolve, reject);
    };
    xhr.send(file);
  });
}

/** What the bar shows for a job's state. */
function progressOf(job: ImportJob): UploadProgress {
  const parsed = job.bytesTotal > 0 ? job.bytes / job.bytesTotal : 0;
  if (job.state === 'done') return { phase: 'done', fraction: 1, detail: `done: ${job.values.toLocaleString('en')} values imported` };
  if (job.state === 'failed') {
    const where = job.error?.line !== undefined ? ` (line ${job.error.line})` : '';
    return { phase: 'failed', fraction: 0.5 + 0.5 * parsed, detail: `failed${where}: ${job.error?.message ?? ''}` };
  }
  return { phase: 'importing', fraction: 0.5 + 0.5 * parsed, detail: `${job.state}: ${job.values.toLocaleString('en')} values` };
}

/** Follows the job by its pushes over /ws, or by polling GET /imports/{jobId} where there is no live channel. */
async function followImport(jobId: string, onProgress: (p: UploadProgress) => void): Promise<ImportJob> {
  const finished = (job: ImportJob): boolean => job.state === 'done' || job.state === 'failed';
  let settle!: (job: ImportJob) => void;
  const ended = new Promise<ImportJob>((resolve) => (settle = resolve));
  const unsubscribe = await subscribe({ topic: 'import', jobId }, (push) => {
    const job = push as unknown as ImportJob;
    onProgress(progressOf(job));
    if (finished(job)) settle(job);
  });
  if (unsubscribe !== null) {
    const job = await ended;
    unsubscribe();
    return job;
  }
  for (;;) {
    const job = await api<ImportJob>(`/imports/${jobId}`);
    onProgress(progressOf(job));
    if (finished(job)) return job;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function percent(fraction: number): string {
  return `${Math.round(fraction * 100)} %`;
}
