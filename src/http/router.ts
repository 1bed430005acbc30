// Binds the route table (src/protocol/routes.ts) to uWebSockets.js: one uWS
// registration per entry, a 405 with `Allow` for every other method on a known
// path, a JSON 404 for everything else, and one request pipeline for all:
//   copy from `req` (it is invalid after the callback returns) → auth (401) →
//   readiness (503) → body, streamed with the size limit (413) → pool id from
//   the path (400) → pool hook → handler.parse → pool id from the body → pool
//   hook → handler.handle. A route whose body is declared `streamed` (an
//   import: gigabytes, spooled to a file) has no parse: its handler's stream
//   always takes the body.
// The pool hook is checkPool below: the one place a pool id meets ServerDeps'
// poolGuard, whichever of path or body the route declares it in.
// Also here, for every route: HEAD on GET routes (RFC 9110: GET's status and
// headers, no body), framing refusals (request-framing.ts), and "lingering"
// refusals: a request refused before its body was read has the body read and
// dropped first, so a client still sending sees the status (body-reader.ts).

import type { HttpRequest, HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import { PoolqError } from '../core/errors.js';
import { allowTable, pathParameters, routeLabel, type OperationId, type RouteSpec } from '../protocol/routes.js';
import { parsePoolIdText } from '../protocol/validate.js';
import type { BodyBufferPool } from './body-buffers.js';
import { discardBodyThen, readBody, refuseBody } from './body-reader.js';
import { enterUwsCallback, leaveUwsCallback, type Exchange } from './exchange.js';
import { echo } from '../protocol/limits.js';
import { framingError } from './request-framing.js';

/** What a handler gets from the request, copied before the uWS callback returned. */
export interface RouteInput {
  /** Path parameters by name. */
  readonly params: Readonly<Record<string, string>>;
  /** The raw query string ('' for routes that declare no query parameter). */
  readonly query: string;
  /** The route's declared header parameters, by lower-case name ('' when absent). */
  readonly headers: Readonly<Record<string, string>>;
  /** The pool id of a route that takes it from a path parameter (-1 for other routes: a body's is in the parsed request). */
  poolId: number;
}

/**
 * One operation's code. Body routes have `parse`, which turns the body into the
 * request (synchronously for small bodies: a small body is a view of uWS's
 * chunk, valid only until parse returns) or into a promise of it (a worker
 * parses large ones); `handle` answers.
 */
export interface Handler<T = unknown> {
  parse?(body: Buffer, input: RouteInput): T | Promise<T>;
  handle(ex: Exchange, input: RouteInput, request: T): void;
  /**
   * Takes the body as it streams in instead of parse (binary and NDJSON
   * bodies), after auth, readiness, framing and the path pool id were checked;
   * returns false to leave the body to parse. `guard` is the pool hook for
   * pool ids the handler finds in the body.
   */
  stream?(
    ex: Exchange,
    res: HttpResponse,
    input: RouteInput,
    contentLength: string,
    guard: (poolId: number) => PoolRefusal | null,
  ): boolean;
}

export type PoolRefusal = { error: PoolqError; headers?: Record<string, string> };

export type Handlers = Readonly<Record<OperationId, Handler>>;

/** A refusal of a pool this instance does not serve, or null to let the request through. */
export type PoolGuard = (poolId: number, route: RouteSpec | null) => PoolRefusal | null;

/** What the router asks of the server for every request. */
export interface RouterHost {
  /** Counts the request in flight and wraps its response (`head`: a HEAD request, answered without a body). */
  begin(res: HttpResponse, label: string, head?: boolean): Exchange;
  /** Whether admit would let the request run (no reply sent). */
  admissible(authorized: boolean, needsData: boolean): boolean;
  /** Whether the request carries the configured bearer token (always true without --auth-token). */
  authorized(req: HttpRequest): boolean;
  /** Sends 401 or 503 and returns false when the request may not run now. */
  admit(ex: Exchange, authorized: boolean, needsData: boolean): boolean;
}

export interface BodyLimits {
  maxBytes: number;
  /** For `bulk` bodies (transfers between shards, --max-bucket-import); they are never put on shared memory. */
  maxBulkBytes: number;
  /** Bodies of at least this many bytes go on shared memory, for a worker to parse. */
  sharedFromBytes: number;
  buffers: BodyBufferPool;
}

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});
/** The input of requests with nothing to copy (a body pool id stays in the parsed request, not here). */
const NO_INPUT: RouteInput = Object.freeze({ params: NO_PARAMS, query: '', headers: NO_PARAMS, poolId: -1 });
const UWS_METHOD = { GET: 'get', HEAD: 'head', POST: 'post', PUT: 'put', PATCH: 'patch', DELETE: 'del' } as const;

/** `/pools/{poolId}` → `/pools/:poolId`. */
function uwsPattern(path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1');
}

class BoundRoute {
  readonly label: string;
  readonly paramNames: string[];
  readonly headerNames: string[];
  readonly hasQuery: boolean;
  /** No path parameter, query or header to copy: every request shares NO_INPUT. */
  private readonly nothingToCopy: boolean;

  constructor(
    readonly spec: RouteSpec,
    readonly handler: Handler,
  ) {
    this.label = routeLabel(spec);
    this.paramNames = pathParameters(spec.path);
    const parameters = spec.parameters ?? [];
    this.headerNames = parameters.filter((p) => p.in === 'header').map((p) => p.name.toLowerCase());
    // A route that also takes raw bytes tells them apart by media type.
    if (spec.body?.binary !== undefined) this.headerNames.push('content-type');
    this.hasQuery = parameters.some((p) => p.in === 'query');
    this.nothingToCopy = this.paramNames.length === 0 && this.headerNames.length === 0 && !this.hasQuery;
    if ((spec.body !== undefined && spec.body.streamed !== true) !== (handler.parse !== undefined)) {
      throw new Error(`${this.label}: a route with a body needs a handler with parse (or stream, when streamed), and only such a route`);
    }
    if (spec.body?.streamed === true && handler.stream === undefined) {
      throw new Error(`${this.label}: a streamed body needs a handler with stream`);
    }
  }

  input(req: HttpRequest): RouteInput {
    if (this.nothingToCopy) return NO_INPUT;
    let params = NO_PARAMS;
    if (this.paramNames.length > 0) {
      const copied: Record<string, string> = {};
      for (let i = 0; i < this.paramNames.length; i++) copied[this.paramNames[i]] = req.getParameter(i) ?? '';
      params = copied;
    }
    let headers = NO_PARAMS;
    if (this.headerNames.length > 0) {
      const copied: Record<string, string> = {};
      for (const name of this.headerNames) copied[name] = req.getHeader(name);
      headers = copied;
    }
    return { params, query: this.hasQuery ? (req.getQuery() ?? '') : '', headers, poolId: -1 };
  }
}

export class Router {
  constructor(
    private readonly host: RouterHost,
    private readonly limits: BodyLimits,
    private readonly poolGuard: PoolGuard | null,
  ) {}

  bind(app: TemplatedApp, routes: readonly RouteSpec[], handlers: Handlers): void {
    for (const spec of routes) {
      const route = new BoundRoute(spec, handlers[spec.operationId as OperationId]);
      app[UWS_METHOD[spec.method]](uwsPattern(spec.path), (res, req) => this.serve(route, res, req, false));
      if (spec.method === 'GET') app.head(uwsPattern(spec.path), (res, req) => this.serve(route, res, req, true));
    }
    for (const [path, methods] of allowTable(routes)) {
      const allow = methods.join(', '); // GET routes list HEAD too (allowTable)
      app.any(uwsPattern(path), (res, req) => {
        const method = req.getCaseSensitiveMethod();
        this.host
          .begin(res, 'other')
          .sendError(new PoolqError('method_not_allowed', `${method} is not allowed on ${path}; use ${allow}.`), { allow });
      });
    }
    app.any('/*', (res, req) => {
      const url = req.getUrl();
      const method = req.getCaseSensitiveMethod();
      this.host.begin(res, 'other', method === 'HEAD').sendError(new PoolqError('not_found', `No route for ${method} ${echo(url, 200)}.`));
    });
  }

  private serve(route: BoundRoute, res: HttpResponse, req: HttpRequest, head: boolean): void {
    const spec = route.spec;
    const input = route.input(req);
    const authorized = !spec.auth || this.host.authorized(req);
    const hasBody = spec.body !== undefined;
    const contentLength = hasBody ? req.getHeader('content-length') : '';
    const framing = hasBody ? framingError(req) : null;
    const ex = this.host.begin(res, route.label, head);
    const outer = enterUwsCallback(res);
    try {
      if (!hasBody) {
        if (this.host.admit(ex, authorized, spec.needsData)) this.run(ex, route, input, undefined);
      } else if (!this.host.admissible(authorized, spec.needsData)) {
        discardBodyThen(res, contentLength, () => this.host.admit(ex, authorized, spec.needsData));
      } else if (framing !== null) {
        ex.sendError(framing, undefined, true); // where the body ends is unknown: close
      } else if (route.handler.stream === undefined || !this.streamed(ex, route, res, input, contentLength)) {
        this.readBodyThenRun(ex, route, input, contentLength);
      }
    } finally {
      leaveUwsCallback(outer);
    }
  }

  private readBodyThenRun(ex: Exchange, route: BoundRoute, input: RouteInput, contentLength: string): void {
    const bulk = route.spec.body?.bulk === true;
    const { sharedFromBytes, buffers } = this.limits;
    // a bulk body (an import between shards, --max-bucket-import) may pass --max-body and is never parsed on a worker
    const maxBytes = bulk ? this.limits.maxBulkBytes : Math.min(this.limits.maxBytes, route.spec.maxBodyBytes ?? Infinity);
    readBody(ex.res, contentLength, maxBytes, bulk ? Infinity : sharedFromBytes, buffers, (result) => {
      if (!result.ok) {
        refuseBody(ex, result.reason, result.close, maxBytes, bulk || maxBytes < this.limits.maxBytes);
        return;
      }
      this.run(ex, route, input, result.body);
    });
  }

  /** Offers the body to the handler's stream (after the path pool id and its hook); false: read it for parse. */
  private streamed(ex: Exchange, route: BoundRoute, res: HttpResponse, input: RouteInput, contentLength: string): boolean {
    const spec = route.spec;
    const source = spec.poolId;
    let refusal: PoolRefusal | null = null;
    if (source?.in === 'path') {
      try {
        input.poolId = parsePoolIdText(input.params[source.name], source.name);
        refusal = this.poolGuard?.(input.poolId, spec) ?? null;
      } catch (err) {
        refusal = { error: err as PoolqError };
      }
    }
    if (refusal !== null) {
      const { error, headers } = refusal;
      discardBodyThen(res, contentLength, () => ex.sendError(error, headers));
      return true;
    }
    return route.handler.stream!(ex, res, input, contentLength, (poolId) => this.poolGuard?.(poolId, spec) ?? null);
  }

  /** Pool id from the path, the handler's parse and handle, with every failure answered. */
  private run(ex: Exchange, route: BoundRoute, input: RouteInput, body: Buffer | undefined): void {
    const { spec, handler } = route;
    try {
      const source = spec.poolId;
      if (source?.in === 'path') {
        input.poolId = parsePoolIdText(input.params[source.name], source.name);
        if (!this.checkPool(ex, spec, input.poolId)) return;
      }
      if (body === undefined) {
        handler.handle(ex, input, undefined);
        return;
      }
      const request = handler.parse!(body, input);
      if (request instanceof Promise) {
        request.then(
          (parsed: unknown) => this.handleParsed(ex, route, input, parsed),
          (err: unknown) => ex.sendError(err),
        );
      } else {
        this.handleParsed(ex, route, input, request);
      }
    } catch (err) {
      ex.sendError(err);
    }
  }

  /** The body's pool id through the pool hook, then the handler. */
  private handleParsed(ex: Exchange, route: BoundRoute, input: RouteInput, request: unknown): void {
    try {
      const source = route.spec.poolId;
      if (source?.in === 'body') {
        const poolId = (request as Record<string, unknown>)[source.field];
        if (typeof poolId === 'number' && !this.checkPool(ex, route.spec, poolId)) return;
      }
      route.handler.handle(ex, input, request);
    } catch (err) {
      ex.sendError(err);
    }
  }

  /** The pool hook: false (with the refusal sent) when poolGuard refuses the pool. */
  private checkPool(ex: Exchange, spec: RouteSpec, poolId: number): boolean {
    const refusal = this.poolGuard?.(poolId, spec) ?? null;
    if (refusal === null) return true;
    ex.sendError(refusal.error, refusal.headers);
    return false;
  }
}
