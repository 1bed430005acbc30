// An open-loop HTTP/1.1 client at a fixed request rate, on raw keep-alive
// sockets: request k is due at t0 + k/rate (like wrk2), each connection has
// one request in flight (no pipelining), and latency is measured from the
// *intended* send time, so a request that waited for a free connection carries
// that wait (no coordinated omission). Service time, from the actual write, is
// reported beside it.
//
// Why not autocannon's overallRate: it counts requests per one-second window,
// so it bursts at full speed until the quota is used and then idles, and its
// histogram has whole milliseconds. At high rates this client spins on
// setImmediate between sends (a core, as wrk uses); below 1000 requests/s it
// sleeps between them. With `maxConnections` it opens another connection when
// none is idle instead of queueing, as a fleet of independent clients would.

import { connect, type Socket } from 'node:net';
import { summarize, type Summary } from './stats.js';

export interface PacedOptions {
  port: number;
  /** Requests per second to offer. */
  rate: number;
  durationMs: number;
  /** Paced run before the measured one (same rate), not recorded. */
  warmupMs?: number;
  /** Connections opened before the run. */
  connections: number;
  /** Open up to this many connections rather than queue (default: `connections`, i.e. queue). */
  maxConnections?: number;
  /** The next raw request (request line, headers and body). */
  nextRequest: () => Buffer;
}

export interface PacedResult {
  targetRate: number;
  /** Responses per second completed in the measured window. */
  achievedRate: number;
  /** From the intended send time, µs. */
  latencyUs: Summary;
  /** From the actual socket write, µs. */
  serviceUs: Summary;
  /** Measured requests that found no idle connection and queued. */
  queued: number;
  /** Largest lag of the sender behind its schedule, µs (client saturation). */
  maxSendLagUs: number;
  connectionsOpened: number;
  non2xx: number;
  non2xxSamples: string[];
  socketErrors: number;
  /** Requests lost with a broken connection or never answered. */
  lost: number;
}

// One read buffer for every connection: onread callbacks run synchronously and
// copy what they need, so no Buffer is made per chunk.
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length: *(\d+)/i;

class Conn {
  readonly socket: Socket;
  busy = false;
  broken = false;
  intended = 0;
  writtenAt = 0;
  private acc = Buffer.allocUnsafe(16 * 1024);
  private accLen = 0;

  constructor(
    port: number,
    private readonly onResponse: (conn: Conn, status: number, raw: string) => void,
    onError: (conn: Conn) => void,
  ) {
    const callback = (n: number): boolean => {
      this.onBytes(n);
      return true;
    };
    this.socket = connect({ host: '127.0.0.1', port, noDelay: true, onread: { buffer: READ_BUFFER, callback } });
    this.socket.on('error', () => onError(this));
    this.socket.on('close', () => {
      if (this.busy) onError(this);
      this.broken = true; // an idle connection the server closed is not used again
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(req: Buffer, intended: number, now: number): void {
    this.busy = true;
    this.intended = intended;
    this.writtenAt = now;
    this.socket.write(req);
  }

  private onBytes(n: number): void {
    if (this.accLen + n > this.acc.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.acc.length * 2, this.accLen + n));
      this.acc.copy(grown, 0, 0, this.accLen);
      this.acc = grown;
    }
    READ_BUFFER.copy(this.acc, this.accLen, 0, n);
    this.accLen += n;
    for (;;) {
      const end = this.acc.subarray(0, this.accLen).indexOf(HEADER_END);
      if (end < 0) return;
      const head = this.acc.toString('latin1', 0, end);
      const total = end + 4 + Number(CONTENT_LENGTH.exec(head)?.[1] ?? 0); // every server here sends content-length
      if (total > this.accLen) return;
      const status = Number(head.slice(9, 12));
      this.onResponse(this, status, status >= 200 && status < 300 ? '' : this.acc.toString('utf8', 0, Math.min(total, 600)));
      this.acc.copyWithin(0, total, this.accLen);
      this.accLen -= total;
    }
  }
}

export async function runPaced(opts: PacedOptions): Promise<PacedResult> {
  const warmupMs = opts.warmupMs ?? 0;
  const measured = Math.max(1, Math.round((opts.rate * opts.durationMs) / 1000));
  const total = measured + Math.round((opts.rate * warmupMs) / 1000);
  const intervalMs = 1000 / opts.rate;
  const maxConnections = Math.max(opts.connections, opts.maxConnections ?? 0);
  const latency = new Float64Array(measured);
  const service = new Float64Array(measured);
  let recorded = 0;
  let completed = 0;
  let lost = 0;
  let non2xx = 0;
  let socketErrors = 0;
  let queued = 0;
  let maxSendLag = 0;
  const non2xxSamples: string[] = [];
  const backlog: number[] = []; // intended send times waiting for a connection
  let backlogHead = 0;
  const idle: Conn[] = [];
  const conns: Conn[] = [];
  let finished = false;
  let resolveDone = (): void => {};
  const done = new Promise<void>((r) => (resolveDone = r));
  const finish = (): void => {
    if (!finished && (completed + lost >= total || performance.now() > deadline)) {
      finished = true;
      resolveDone();
    }
  };

  let [t0, tMeasure, deadline] = [0, Infinity, Infinity]; // set once the connections are open

  const onResponse = (conn: Conn, status: number, raw: string): void => {
    const now = performance.now();
    if (conn.intended >= tMeasure && recorded < measured) {
      latency[recorded] = (now - conn.intended) * 1000;
      service[recorded++] = (now - conn.writtenAt) * 1000;
    }
    completed++;
    if (status < 200 || status > 299) {
      non2xx++;
      if (non2xxSamples.length < 3) non2xxSamples.push(raw);
    }
    conn.busy = false;
    release(conn, now);
    finish();
  };
  const onError = (conn: Conn): void => {
    if (conn.broken || finished) return;
    conn.broken = true;
    socketErrors++;
    if (conn.busy) lost++;
    conn.busy = false;
    conn.socket.destroy();
    open(); // keep the connection count
    finish();
  };
  const release = (conn: Conn, now: number): void => {
    if (backlogHead < backlog.length) conn.send(opts.nextRequest(), backlog[backlogHead++], now);
    else idle.push(conn);
  };
  const open = (): Conn => {
    const conn = new Conn(opts.port, onResponse, onError);
    conns.push(conn);
    conn.ready().then(
      () => release(conn, performance.now()),
      () => {},
    );
    return conn;
  };

  for (let i = 0; i < opts.connections; i++) open();
  await Promise.all(conns.map((c) => c.ready()));
  t0 = performance.now();
  tMeasure = t0 + (total - measured) * intervalMs;
  deadline = t0 + warmupMs + opts.durationMs + 5000;

  let k = 0;
  const pump = (): void => {
    if (finished) return;
    const now = performance.now();
    for (; k < total && t0 + k * intervalMs <= now; k++) {
      const intended = t0 + k * intervalMs;
      if (intended >= tMeasure) maxSendLag = Math.max(maxSendLag, (now - intended) * 1000);
      let conn = idle.pop();
      while (conn?.broken) conn = idle.pop();
      if (conn !== undefined) {
        conn.send(opts.nextRequest(), intended, now);
      } else {
        if (intended >= tMeasure) queued++;
        backlog.push(intended);
        if (conns.filter((c) => !c.broken).length < maxConnections) open();
      }
    }
    if (backlogHead > 4096 && backlogHead * 2 > backlog.length) {
      backlog.splice(0, backlogHead);
      backlogHead = 0;
    }
    if (k >= total) return;
    if (intervalMs < 1) setImmediate(pump);
    else setTimeout(pump, Math.max(0, t0 + k * intervalMs - performance.now()));
  };
  pump();
  const timer = setInterval(finish, 250);
  await done;
  clearInterval(timer);
  const elapsedMs = performance.now() - tMeasure;
  for (const c of conns) c.socket.destroy();
  return {
    targetRate: opts.rate,
    achievedRate: (recorded * 1000) / elapsedMs,
    latencyUs: summarize(latency.subarray(0, recorded)),
    serviceUs: summarize(service.subarray(0, recorded)),
    queued,
    maxSendLagUs: maxSendLag,
    connectionsOpened: conns.length,
    non2xx,
    non2xxSamples,
    socketErrors,
    lost: total - completed,
  };
}
