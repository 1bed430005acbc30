// One request/response pair and everything that may happen to it: abort,
// a reply written now or after an async step (always corked: by uWS inside its
// callbacks, by res.cork() elsewhere), metrics and the slow-request log. A uWS HttpResponse must not be touched after onAborted or
// after end(); `Exchange` is the one place that enforces it.

import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { PoolqError } from '../core/errors.js';
import { ERROR_STATUS } from '../protocol/error-status.js';

export const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The response whose socket uWS has corked at this moment. uWS corks a socket
 * while it runs that socket's route handler and onData callbacks, so a reply
 * written there goes out in one send without res.cork(); res.cork() costs a
 * native call that calls back into JS, and skipping it where uWS already corks
 * answers ~8 % more queries per second (docs/performance.md).
 * Anywhere else (after an await, a timer, a worker) replies cork themselves.
 */
let corkedByUws: HttpResponse | null = null;

/** Runs `fn` inside a uWS callback of `res` (route handler or onData): replies to `res` skip res.cork(). */
export function inUwsCallback<T>(res: HttpResponse, fn: () => T): T {
  const outer = enterUwsCallback(res);
  try {
    return fn();
  } finally {
    leaveUwsCallback(outer);
  }
}

/** inUwsCallback without a closure, for the per-request path: call leaveUwsCallback(outer) in a finally. */
export function enterUwsCallback(res: HttpResponse): HttpResponse | null {
  const outer = corkedByUws;
  corkedByUws = res;
  return outer;
}

export function leaveUwsCallback(outer: HttpResponse | null): void {
  corkedByUws = outer;
}

export interface ExchangeHooks {
  finished(ex: Exchange, status: string): void;
  internalError(ex: Exchange, err: unknown): void;
}

/** JSON number text that keeps -0 (JSON.stringify(-0) is "0"; numpy's -0.0 is not). */
/** A number as JSON: -0 keeps its sign; NaN (no value: an empty window) is null. */
export function jsonNumber(value: number): string {
  if (Number.isNaN(value)) return 'null';
  return Object.is(value, -0) ? '-0' : String(value);
}

export function errorBody(code: string, message: string, field?: string): string {
  return JSON.stringify(field === undefined ? { error: code, message } : { error: code, message, field });
}

export class Exchange {
  aborted = false;
  done = false;
  private abortListener: (() => void) | null = null;
  /** A HEAD request: status and headers as for GET (content-length included), no body. */
  head = false;
  readonly startedAt = performance.now();

  constructor(
    readonly res: HttpResponse,
    readonly route: string,
    private readonly hooks: ExchangeHooks,
  ) {
    res.onAborted(() => {
      this.aborted = true;
      this.abortListener?.();
      if (!this.done) {
        this.done = true;
        this.hooks.finished(this, '499');
      }
    });
  }

  /** Runs `listener` if the client goes away before the reply (uWS keeps one abort handler per response: this one). */
  whenAborted(listener: () => void): void {
    this.abortListener = listener;
  }

  get open(): boolean {
    return !this.aborted && !this.done;
  }

  send(status: string, body: string | Buffer, contentType = JSON_TYPE, headers?: Record<string, string>, close = false): void {
    if (!this.open) return;
    this.done = true;
    if (corkedByUws === this.res) this.write(status, body, contentType, headers, close);
    else this.res.cork(() => this.write(status, body, contentType, headers, close));
    this.hooks.finished(this, status.slice(0, 3));
  }

  private write(
    status: string,
    body: string | Buffer,
    contentType: string,
    headers: Record<string, string> | undefined,
    close: boolean,
  ): void {
    const res = this.res;
    res.writeStatus(status).writeHeader('content-type', contentType);
    if (headers !== undefined) for (const name in headers) res.writeHeader(name, headers[name]);
    // endWithoutBody(length) leaves uWS waiting for those bytes (the next request on the
    // connection then closes it), and an explicit undefined length is written as 2^63:
    // HEAD writes its content-length itself and calls endWithoutBody() with no arguments.
    if (this.head) {
      res.writeHeader('content-length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.length));
      if (close) res.writeHeader('connection', 'close');
      res.endWithoutBody();
    } else res.end(body, close);
  }

  sendEmpty(status: string): void {
    if (!this.open) return;
    this.done = true;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(status).endWithoutBody();
    });
    this.hooks.finished(this, status.slice(0, 3));
  }

  sendError(err: unknown, headers?: Record<string, string>, close = false): void {
    if (err instanceof PoolqError) {
      if (err.retryAfterSeconds !== undefined) headers = { ...headers, 'retry-after': String(err.retryAfterSeconds) };
      this.send(ERROR_STATUS[err.code], errorBody(err.code, err.message, err.field), JSON_TYPE, headers, close);
      return;
    }
    this.hooks.internalError(this, err);
    this.send(ERROR_STATUS.internal, errorBody('internal', 'The server failed to handle this request; it was logged.'));
  }

  /** Runs `then` on a value that may be a promise, routing any failure to sendError. */
  settle<T>(value: T | Promise<T>, then: (value: T) => void): void {
    if (value instanceof Promise) {
      value.then(
        (v) => {
          try {
            then(v);
          } catch (err) {
            this.sendError(err);
          }
        },
        (err: unknown) => this.sendError(err),
      );
    } else {
      then(value);
    }
  }
}
