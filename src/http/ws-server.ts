// The /ws endpoint on the HTTP server's own uWS app: appends acknowledged
// exactly like HTTP (after the group commit's fdatasync under --fsync=always),
// any number of requests in flight per socket with replies in request order,
// queries, and live subscriptions (subscription-hub.ts).
//
// Order: every request takes a slot in its socket's reply queue when it
// arrives; a reply leaves only when every earlier slot has left. A query
// behind a pending add is computed when its turn comes, so it sees that add
// (read-your-writes per socket).
//
// Limits and close codes (docs/api.md, "WebSocket"; ws-close.ts):
//   1009  a message over --max-body. uWS drops a connection whose message
//         passes its own maxPayloadLength without a close frame (1006 at
//         the client), so that limit is set to twice --max-body and this
//         server closes with 1009 between the two.
//   1006  a text message that is not UTF-8, a framing error, and a socket
//         that sends nothing, not even a pong, for --ws-idle-timeout: uWS
//         drops these itself before any handler runs (so 1007 cannot be
//         sent); the close handler learns why (ws-close.ts).
//   1003  a binary frame that is not a valid add frame (ws-binary-frame.ts)
//   1008  replies not read: more than --ws-max-backlog bytes wait to be sent
//   1001  the server is shutting down
// A subscriber over PUSH_LIMIT_BYTES of unsent data skips pushes and gets the
// newest one when it drains, so a stalled subscriber holds at most that much.

import { timingSafeEqual } from 'node:crypto';
import type { TemplatedApp, WebSocket } from '@trufflesuite/uws-js-unofficial';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { QuantileEngine } from '../core/engine.js';
import { PoolqError, unavailable } from '../core/errors.js';
import type { SortedRun } from '../core/sorted-run.js';
import { decodeBinaryAdd, FrameRequestError, FrameViolation } from '../protocol/ws-binary-frame.js';
import {
  decodeClientMessage,
  encodeAddAck,
  encodeError,
  encodeOk,
  encodeQueryReply,
  encodeSubscribed,
  MessageError,
  type ClientMessage,
  type RequestId,
} from '../protocol/ws-messages.js';
import type { RequestOffload as Offload } from '../protocol/offload.js';
import { ERROR_STATUS } from '../protocol/error-status.js';
import { errorBody, JSON_TYPE } from './exchange.js';
import type { IngestWriter } from './ingest-writer.js';
import type { Metrics } from './metrics.js';
import type { SubscriptionHub } from './subscription-hub.js';
import { closeCause, WS_CLOSE } from './ws-close.js';

/** Unsent bytes above which a subscriber skips pushes (keeping the newest). */
export const PUSH_LIMIT_BYTES = 64 << 10;

/** Returns an error for a pool this instance must not serve (a cluster answers 421), or null. */
export type PoolGuard = (poolId: number) => PoolqError | null;

export interface WsDeps {
  config: Config;
  engine: QuantileEngine;
  logger: Logger;
  metrics: Metrics;
  offload: Offload | null;
  hub: SubscriptionHub;
  /** null until recovery finished. */
  writer(): IngestWriter | null;
  state(): 'starting' | 'ready' | 'stopping';
  poolGuard?: PoolGuard;
}

interface Slot {
  text: string | null;
  compute: (() => string) | null;
  after: (() => void) | null;
}

interface SocketState {
  slots: Slot[];
  head: number;
  flushQueued: boolean;
  closed: boolean;
  /** The code this server closed the socket with; 0 while it did not. */
  endedWith: number;
  /** Adds sent to storage and not yet answered. */
  writes: number;
}

type Socket = WebSocket<SocketState>;

function settle<T>(value: T | Promise<T>, ok: (v: T) => void, fail: (err: unknown) => void): void {
  if (value instanceof Promise) value.then(ok, fail);
  else ok(value);
}

export class WsServer {
  private readonly sockets = new Set<Socket>();
  private readonly expectedAuthorization: Buffer | null;
  private writesInFlight = 0;
  private idle: (() => void) | null = null;

  constructor(
    private readonly deps: WsDeps,
    app: TemplatedApp,
  ) {
    const { config } = deps;
    this.expectedAuthorization = config.authToken === null ? null : Buffer.from(`Bearer ${config.authToken}`);
    app.ws<SocketState>('/ws', {
      maxPayloadLength: Math.min(2 * config.maxBodyBytes, 2 ** 31 - 1),
      idleTimeout: config.wsIdleTimeoutSeconds,
      sendPingsAutomatically: true,
      // uWS drops a send past maxBackpressure; replies must never be dropped,
      // so the socket is closed (1008) at our own, lower limit instead.
      maxBackpressure: config.wsMaxBacklogBytes + config.maxBodyBytes + (1 << 20),
      closeOnBackpressureLimit: 0,
      upgrade: (res, req, context) => {
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const authorized = this.authorized(req.getHeader('authorization'), req.getQuery('token') ?? '');
        const refuse = (status: string, err: PoolqError, headers: Record<string, string>) => {
          res.cork(() => {
            res.writeStatus(status).writeHeader('content-type', JSON_TYPE);
            for (const name in headers) res.writeHeader(name, headers[name]);
            res.end(errorBody(err.code, err.message), true);
          });
        };
        if (!authorized) {
          refuse(
            '401 Unauthorized',
            new PoolqError('unauthorized', '/ws needs Authorization: Bearer <token> or ?token=<token> (--auth-token).'),
            {
              'www-authenticate': 'Bearer',
            },
          );
          return;
        }
        if (deps.state() !== 'ready') {
          refuse(
            '503 Service Unavailable',
            unavailable(deps.state() === 'starting' ? 'poolq is recovering its data; retry shortly.' : 'poolq is shutting down.'),
            {
              'retry-after': '1',
            },
          );
          return;
        }
        res.upgrade<SocketState>(
          { slots: [], head: 0, flushQueued: false, closed: false, endedWith: 0, writes: 0 },
          key,
          protocol,
          extensions,
          context,
        );
      },
      open: (ws) => {
        this.sockets.add(ws);
      },
      message: (ws, message, isBinary) => this.onMessage(ws, message, isBinary),
      drain: (ws) => deps.hub.drained(ws),
      close: (ws, code, message) => {
        const state = ws.getUserData();
        state.closed = true;
        this.sockets.delete(ws);
        deps.hub.removeTarget(ws);
        deps.metrics.wsClosed(closeCause(state.endedWith, code, () => Buffer.from(message).toString('latin1')));
      },
    });
  }

  get connections(): number {
    return this.sockets.size;
  }

  get bufferedBytes(): number {
    let bytes = 0;
    for (const ws of this.sockets) bytes += ws.getBufferedAmount();
    return bytes;
  }

  /** Resolves when no add is waiting for storage, or after graceMs. */
  async settle(graceMs: number): Promise<void> {
    if (this.writesInFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Closes every socket with 1001 (shutdown), after their replies were sent. */
  closeAll(): void {
    for (const ws of [...this.sockets]) {
      const state = ws.getUserData();
      if (state.closed) continue;
      this.flush(ws, state);
      this.end(ws, state, WS_CLOSE.goingAway, 'poolq is shutting down');
    }
  }

  private authorized(header: string, token: string): boolean {
    const expected = this.expectedAuthorization;
    if (expected === null) return true;
    const matches = (given: Buffer) => given.length === expected.length && timingSafeEqual(given, expected);
    return matches(Buffer.from(header)) || (token !== '' && matches(Buffer.from(`Bearer ${token}`)));
  }

  // ---- messages --------------------------------------------------------------

  private onMessage(ws: Socket, message: ArrayBuffer, isBinary: boolean): void {
    const state = ws.getUserData();
    if (state.closed) return;
    if (message.byteLength > this.deps.config.maxBodyBytes) {
      this.end(ws, state, WS_CLOSE.messageTooBig, `a message may hold at most ${this.deps.config.maxBodyBytes} bytes (--max-body)`);
      return;
    }
    if (isBinary) {
      let add;
      try {
        add = decodeBinaryAdd(message);
      } catch (err) {
        if (err instanceof FrameViolation) {
          this.end(ws, state, err.closeCode, err.message.slice(0, 120));
        } else if (err instanceof FrameRequestError) {
          this.reply(ws, state, this.errorText(err.id, err.error, 'WS add'));
        } else throw err;
        return;
      }
      this.add(ws, state, add.id, add.poolId, add.values, add.key);
      return;
    }
    let msg: ClientMessage;
    try {
      msg = decodeClientMessage(Buffer.from(message).toString('utf8'));
    } catch (err) {
      if (!(err instanceof MessageError)) throw err;
      this.reply(ws, state, this.errorText(err.id, err.error, 'WS message'));
      return;
    }
    switch (msg.op) {
      case 'add':
        this.add(ws, state, msg.id, msg.poolId, msg.values, msg.key);
        return;
      case 'query': {
        const { id, poolId, percentiles, many, method } = msg;
        this.deferred(ws, state, () => {
          try {
            this.checkServing(poolId, false);
            const values = this.deps.engine.quantiles(poolId, percentiles, method);
            this.deps.metrics.observe('WS query', '200', 0);
            return encodeQueryReply(id, values, this.deps.engine.countOf(poolId)!, many);
          } catch (err) {
            return this.errorText(id, err, 'WS query');
          }
        });
        return;
      }
      case 'subscribe': {
        const hub = this.deps.hub;
        let spec;
        try {
          spec = hub.parse(msg.kind, msg.params);
          for (const poolId of spec.poolIds) this.checkServing(poolId, false);
        } catch (err) {
          this.reply(ws, state, this.errorText(msg.id, err, 'WS subscribe'));
          return;
        }
        const id = msg.id;
        const topic = spec;
        // Subscribed when its turn comes, so the first push follows the reply.
        this.deferred(
          ws,
          state,
          () => encodeSubscribed(id, topic.name),
          () => hub.subscribe(ws, topic),
        );
        return;
      }
      case 'unsubscribe': {
        const { id, topic } = msg;
        this.deferred(ws, state, () =>
          this.deps.hub.unsubscribe(ws, topic)
            ? encodeOk(id)
            : encodeError(id, 'invalid_request', 'This socket is not subscribed to that topic.', 'topic'),
        );
        return;
      }
    }
  }

  private add(ws: Socket, state: SocketState, id: RequestId, poolId: number, values: Float64Array, key: string | null): void {
    const slot = this.slot(state);
    const done = (text: string) => {
      slot.text = text;
      this.ready(ws, state);
    };
    const fail = (err: unknown) => done(this.errorText(id, err, 'WS add'));
    let writer: IngestWriter;
    let sorted: SortedRun | Promise<SortedRun>;
    try {
      this.checkServing(poolId, true);
      writer = this.deps.writer()!;
      const { offload, engine, config } = this.deps;
      sorted = offload !== null && values.length >= config.offloadSortValues ? offload.sortBatch(values) : engine.sortBatch(values);
    } catch (err) {
      fail(err);
      return;
    }
    state.writes++;
    this.writesInFlight++;
    const finished = () => {
      state.writes--;
      if (--this.writesInFlight === 0 && this.idle !== null) this.idle();
    };
    settle(
      sorted,
      (run) => {
        let outcome;
        try {
          outcome = writer.append(poolId, run, key);
        } catch (err) {
          finished();
          fail(err);
          return;
        }
        settle(
          outcome,
          (o) => {
            finished();
            this.deps.metrics.observe('WS add', '200', 0);
            done(encodeAddAck(id, o.created, o.count));
          },
          (err) => {
            finished();
            fail(err);
          },
        );
      },
      (err) => {
        finished();
        fail(err);
      },
    );
  }

  /** Throws when this request may not be served now: recovering, shutting down (writes), or a pool this instance does not own. */
  private checkServing(poolId: number, writes: boolean): void {
    const state = this.deps.state();
    if (state === 'starting' || (writes && (state === 'stopping' || this.deps.writer() === null))) {
      throw unavailable(state === 'starting' ? 'poolq is recovering its data; retry shortly.' : 'poolq is shutting down.');
    }
    const refusal = this.deps.poolGuard?.(poolId) ?? null;
    if (refusal !== null) throw refusal;
  }

  private errorText(id: RequestId | null, err: unknown, route: string): string {
    if (err instanceof PoolqError) {
      this.deps.metrics.observe(route, ERROR_STATUS[err.code].slice(0, 3), 0);
      return encodeError(id, err.code, err.message, err.field);
    }
    this.deps.logger.error({ route, err }, 'websocket request failed');
    this.deps.metrics.observe(route, '500', 0);
    return encodeError(id, 'internal', 'The server failed to handle this request; it was logged.');
  }

  // ---- the reply queue -------------------------------------------------------

  private slot(state: SocketState): Slot {
    const slot: Slot = { text: null, compute: null, after: null };
    state.slots.push(slot);
    return slot;
  }

  /** A reply known now: sent at once unless earlier replies are pending. */
  private reply(ws: Socket, state: SocketState, text: string): void {
    if (state.head === state.slots.length) {
      this.send(ws, state, text);
      return;
    }
    this.slot(state).text = text;
  }

  /** A reply computed when its turn comes (now if nothing is pending); `after` runs once it was sent. */
  private deferred(ws: Socket, state: SocketState, compute: () => string, after: (() => void) | null = null): void {
    if (state.head === state.slots.length) {
      this.send(ws, state, compute());
      after?.();
      return;
    }
    const slot = this.slot(state);
    slot.compute = compute;
    slot.after = after;
  }

  /** A pending slot got its text: flush once, after every reply settled in this turn (one cork, one send). */
  private ready(ws: Socket, state: SocketState): void {
    if (state.flushQueued || state.closed) return;
    state.flushQueued = true;
    queueMicrotask(() => {
      state.flushQueued = false;
      if (!state.closed) ws.cork(() => this.flush(ws, state));
    });
  }

  private flush(ws: Socket, state: SocketState): void {
    const slots = state.slots;
    while (state.head < slots.length && !state.closed) {
      const slot = slots[state.head];
      let text = slot.text;
      if (text === null) {
        if (slot.compute === null) break;
        text = slot.compute();
      }
      slots[state.head++] = undefined as unknown as Slot;
      this.send(ws, state, text);
      slot.after?.();
    }
    if (state.head === slots.length) {
      slots.length = 0;
      state.head = 0;
    } else if (state.head >= 1024) {
      slots.splice(0, state.head);
      state.head = 0;
    }
  }

  private send(ws: Socket, state: SocketState, text: string): void {
    if (state.closed) return;
    ws.send(text);
    if (ws.getBufferedAmount() > this.deps.config.wsMaxBacklogBytes) {
      this.end(ws, state, WS_CLOSE.policyViolation, 'reply backlog over --ws-max-backlog: read replies');
    }
  }

  /** Sends a close frame; uWS runs the close handler before end() returns. */
  private end(ws: Socket, state: SocketState, code: number, reason: string): void {
    state.closed = true;
    state.endedWith = code;
    ws.end(code, reason);
  }
}
