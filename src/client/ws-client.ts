// poolq over one WebSocket (/ws): appends as binary frames (or JSON), any
// number in flight, each promise settled by its own acknowledgement (durable
// under the server's --fsync); queries; subscriptions with a push callback.
//
// Reconnection: after an unexpected close the socket reconnects with
// exponential backoff, subscribes again, and re-sends every add that carried
// an idempotency key (the server answers a retry of a key with the first
// outcome, so nothing is applied twice). An add without a key that was sent
// but not acknowledged fails with PoolqConnectionError(outcomeUnknown = true).
// Requests made while reconnecting wait and go out once connected.

import WebSocket from 'ws';
import type { QuantileMethod } from '../core/methods.js';
import { encodeBinaryAdd } from '../protocol/ws-binary-frame.js';
import { isErrorReply, isPush, type AckReply, type PushMessage, type ServerMessage } from '../protocol/ws-messages.js';
import { PoolqConnectionError, PoolqRequestError } from './errors.js';
import type { AppendResult } from './http-client.js';

export interface SocketOptions {
  /** ws://host:port/ws */
  url: string;
  token?: string;
  /** Send adds as binary frames (default) or JSON. */
  binary?: boolean;
  /** false: fail everything on the first close. Default: retry forever, 50 ms doubling to 2 s. */
  reconnect?: false | { attempts?: number; minDelayMs?: number; maxDelayMs?: number };
}

export interface SubscribeParams {
  poolId: number;
  percentiles: readonly number[];
  method?: QuantileMethod;
  intervalMs?: number;
}

export interface Subscription {
  readonly topic: string;
  unsubscribe(): Promise<void>;
}

interface Pending {
  frame: string | Uint8Array;
  resolve(reply: AckReply): void;
  reject(err: Error): void;
  /** A keyed add (safe to re-send) or a subscribe (re-made on reconnect). */
  resend: boolean;
  write: boolean;
  /** Runs as the reply is read, before any later message (a subscription's first push follows its reply at once). */
  onReply?: (reply: AckReply) => void;
}

/** Close codes that mean the client itself is at fault: reconnecting would only repeat it. */
const FATAL_CLOSE = new Set([1003, 1007, 1008, 1009]);

export class PoolqSocket {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly outbox: number[] = [];
  private readonly subscriptions = new Map<string, { params: SubscribeParams; onPush: (push: PushMessage) => void }>();
  private closedByUser = false;
  private attempts = 0;
  private connecting: Promise<void> | null = null;
  private readonly binary: boolean;

  private constructor(private readonly options: SocketOptions) {
    this.binary = options.binary ?? true;
  }

  static async connect(options: SocketOptions): Promise<PoolqSocket> {
    const socket = new PoolqSocket(options);
    await socket.open();
    return socket;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Bytes queued in the socket, not yet handed to the OS (for client-side flow control). */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  add(poolId: number, values: Float64Array | readonly number[], options: { key?: string } = {}): Promise<AppendResult> {
    const id = this.takeId();
    const key = options.key ?? null;
    const frame = this.binary
      ? encodeBinaryAdd(id, poolId, values, key)
      : JSON.stringify({ op: 'add', id, poolId, poolValues: Array.from(values), ...(key === null ? {} : { key }) });
    return this.request(id, frame, key !== null, true).then((r) => ({ created: r.created!, count: r.count! }));
  }

  query(poolId: number, percentiles: readonly number[], method?: QuantileMethod): Promise<{ quantiles: number[]; count: number }> {
    const id = this.takeId();
    return this.request(id, JSON.stringify({ op: 'query', id, poolId, percentiles, method }), false, false).then((r) => ({
      quantiles: r.quantiles!,
      count: r.count!,
    }));
  }

  async subscribe(params: SubscribeParams, onPush: (push: PushMessage) => void): Promise<Subscription> {
    const id = this.takeId();
    const reply = await this.request(id, JSON.stringify({ op: 'subscribe', id, ...params }), false, false, (r) =>
      this.subscriptions.set(r.topic!, { params, onPush }),
    );
    const topic = reply.topic!;
    return {
      topic,
      unsubscribe: async () => {
        this.subscriptions.delete(topic);
        const uid = this.takeId();
        await this.request(uid, JSON.stringify({ op: 'unsubscribe', id: uid, topic }), false, false);
      },
    };
  }

  /** Closes after every request in flight was answered (or failed). */
  async close(): Promise<void> {
    const waiting = [...this.pending.values()].map(
      (p) =>
        new Promise<void>((settled) => {
          const { resolve, reject } = p;
          p.resolve = (r) => (resolve(r), settled());
          p.reject = (e) => (reject(e), settled());
        }),
    );
    this.closedByUser = true;
    await Promise.all(waiting);
    const ws = this.ws;
    if (ws !== null && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000);
      });
    }
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return id;
  }

  private request(
    id: number,
    frame: string | Uint8Array,
    resend: boolean,
    write: boolean,
    onReply?: (reply: AckReply) => void,
  ): Promise<AckReply> {
    if (this.closedByUser) return Promise.reject(new PoolqConnectionError('the socket was closed by the client', false));
    return new Promise<AckReply>((resolve, reject) => {
      this.pending.set(id, { frame, resolve, reject, resend, write, onReply });
      if (this.ws !== null && this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
      else this.outbox.push(id);
    });
  }

  private open(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const headers = this.options.token === undefined ? undefined : { authorization: `Bearer ${this.options.token}` };
      const ws = new WebSocket(this.options.url, { headers, perMessageDeflate: false });
      ws.binaryType = 'nodebuffer';
      let opened = false;
      ws.on('open', () => {
        opened = true;
        this.ws = ws;
        this.attempts = 0;
        this.connecting = null;
        // Subscriptions first (their replies are not awaited), then what waited.
        for (const sub of this.subscriptions.values()) {
          const id = this.takeId();
          this.pending.set(id, { frame: '', resolve: () => {}, reject: () => {}, resend: false, write: false });
          ws.send(JSON.stringify({ op: 'subscribe', id, ...sub.params }));
        }
        for (const id of this.outbox.splice(0)) {
          const p = this.pending.get(id);
          if (p !== undefined) ws.send(p.frame);
        }
        resolve();
      });
      ws.on('message', (data: Buffer) => this.onMessage(data));
      ws.on('error', (err) => {
        if (!opened) {
          this.connecting = null;
          reject(new PoolqConnectionError(`cannot connect to ${this.options.url}: ${err.message}`, false, { cause: err }));
        }
      });
      ws.on('close', (code, reason) => {
        if (this.ws === ws) this.ws = null;
        if (opened) this.onClose(code, reason.toString());
      });
    });
    return this.connecting;
  }

  private onMessage(data: Buffer): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(data.toString('utf8')) as ServerMessage;
    } catch {
      return;
    }
    if (isPush(message)) {
      this.subscriptions.get(message.topic)?.onPush(message);
      return;
    }
    const id = (message as { id: unknown }).id;
    if (typeof id !== 'number') return; // an error about a frame without a readable id
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (isErrorReply(message)) p.reject(new PoolqRequestError(message.error, message.message, null, message.field));
    else {
      p.onReply?.(message as AckReply);
      p.resolve(message as AckReply);
    }
  }

  private onClose(code: number, reason: string): void {
    const policy = this.options.reconnect;
    const fatal = this.closedByUser || policy === false || FATAL_CLOSE.has(code) || this.attempts >= (policy?.attempts ?? Infinity);
    for (const [id, p] of this.pending) {
      if (!fatal && p.resend) {
        this.outbox.push(id);
        continue;
      }
      this.pending.delete(id);
      p.reject(new PoolqConnectionError(`the socket closed (${code} ${reason}) before the reply`, p.write));
    }
    if (fatal) {
      for (const id of this.outbox.splice(0)) {
        const p = this.pending.get(id);
        this.pending.delete(id);
        p?.reject(new PoolqConnectionError(`the socket closed (${code} ${reason})`, false));
      }
      return;
    }
    this.outbox.sort((a, b) => a - b);
    const min = (policy === undefined ? undefined : policy.minDelayMs) ?? 50;
    const max = (policy === undefined ? undefined : policy.maxDelayMs) ?? 2000;
    const delay = Math.min(max, min * 2 ** this.attempts++);
    setTimeout(() => {
      this.open().catch(() => this.onClose(1006, 'reconnect failed'));
    }, delay);
  }
}
