// A small open-loop, rate-paced HTTP/1.1 load client on raw sockets, for
// latency at a fixed request rate (`npm run bench:http` runs it at 50 % of the
// measured peak; `bench:latency` can reuse it).
//
// Why not autocannon's overallRate: autocannon limits by counting requests per
// one-second window (a setInterval resets the count), so it sends as fast as it
// can until the second's quota is used and then idles — a full-speed burst,
// not a rate — and its histogram records whole milliseconds. wrk has no rate
// limit at all. This client spaces request k at t0 + k/rate (constant rate,
// like wrk2), keeps one request in flight per keep-alive connection (no
// pipelining), and measures latency from the *intended* send time, so a
// request that waited for a free connection carries that wait (no coordinated
// omission). It also reports service time (from the actual write).
//
// It spins on setImmediate between sends to keep sub-30 µs spacing, so it uses
// one core while it runs — the same as wrk does.

import { connect, type Socket } from 'node:net';

export interface PacedOptions {
  host?: string;
  port: number;
  /** Requests per second to offer. */
  rate: number;
  durationMs: number;
  connections: number;
  /** Returns the next raw HTTP/1.1 request (a full request with headers and body). */
  nextRequest: () => string | Buffer;
  /** Give up on the run if a response takes longer than this (counted as a socket error). */
  timeoutMs?: number;
}

export interface PacedResult {
  targetRate: number;
  /** Responses per second actually completed over the run. */
  achievedRate: number;
  sent: number;
  completed: number;
  /** Latency from the intended send time (includes waiting for a free connection), µs. */
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
  /** Latency from the actual socket write, µs. */
  serviceP50Us: number;
  serviceP99Us: number;
  /** Requests that found no idle connection when due and queued. */
  queued: number;
  /** Largest lag of the sender behind the schedule, µs (client saturation). */
  maxSendLagUs: number;
  non2xx: number;
  socketErrors: number;
  /** Requests not answered when the run ended (abandoned). */
  unanswered: number;
  /** Requests whose connection broke while they were in flight. */
  lost: number;
}

interface Pending {
  intended: number;
}

class Conn {
  socket: Socket;
  busy = false;
  broken = false;
  intended = 0;
  writtenAt = 0;
  private buf: Buffer | null = null;

  constructor(
    host: string,
    port: number,
    private readonly onResponse: (conn: Conn, status: number) => void,
    private readonly onError: (conn: Conn, err: Error) => void,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.onError(this, err));
    this.socket.on('close', () => {
      if (this.busy) this.onError(this, new Error('connection closed with a request in flight'));
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(req: string | Buffer, intended: number, now: number): void {
    this.busy = true;
    this.intended = intended;
    this.writtenAt = now;
    this.socket.write(req);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const buf = this.buf;
      if (buf === null) return;
      const headEnd = buf.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buf.toString('latin1', 0, headEnd);
      const status = Number(head.slice(9, 12));
      let total: number;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (cl !== null) {
        total = headEnd + 4 + Number(cl[1]);
      } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
        const end = buf.indexOf('\r\n0\r\n\r\n', headEnd + 2);
        if (end < 0) return;
        total = end + 7;
      } else {
        total = headEnd + 4; // no body (204, 304)
      }
      if (buf.length < total) return;
      this.buf = buf.length > total ? buf.subarray(total) : null;
      this.onResponse(this, status);
    }
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** Runs one paced load and returns its latency distribution. */
export async function runPaced(opts: PacedOptions): Promise<PacedResult> {
  const host = opts.host ?? '127.0.0.1';
  const total = Math.max(1, Math.round((opts.rate * opts.durationMs) / 1000));
  const intervalMs = 1000 / opts.rate;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const latency = new Float64Array(total);
  const service = new Float64Array(total);
  let completed = 0;
  let sent = 0;
  let non2xx = 0;
  let socketErrors = 0;
  let lost = 0;
  let queued = 0;
  let maxSendLag = 0;
  const backlog: Pending[] = [];
  let backlogHead = 0;
  const idle: Conn[] = [];
  let finished = false;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });

  const dispatch = (conn: Conn, intended: number, now: number): void => {
    sent++;
    conn.send(opts.nextRequest(), intended, now);
  };

  const onResponse = (conn: Conn, status: number): void => {
    const now = performance.now();
    if (completed < total) {
      latency[completed] = (now - conn.intended) * 1000;
      service[completed] = (now - conn.writtenAt) * 1000;
    }
    completed++;
    if (status < 200 || status > 299) non2xx++;
    conn.busy = false;
    if (backlogHead < backlog.length) {
      const p = backlog[backlogHead++];
      dispatch(conn, p.intended, now);
    } else {
      idle.push(conn);
    }
    checkDone();
  };
  const checkDone = (): void => {
    if (completed + lost >= total && !finished) {
      finished = true;
      resolveDone();
    }
  };

  const conns: Conn[] = [];
  const onError = (conn: Conn, err: Error): void => {
    if (conn.broken || finished) return;
    conn.broken = true;
    socketErrors++;
    if (process.env.PACED_DEBUG) console.error(`paced: ${err.message}`);
    // the request in flight is lost; replace the connection so the run can go on
    if (conn.busy) lost++;
    conn.busy = false;
    conn.socket.destroy();
    const i = conns.indexOf(conn);
    if (i >= 0 && !finished) {
      const fresh = new Conn(host, opts.port, onResponse, onError);
      conns[i] = fresh;
      fresh.ready().then(
        () => {
          if (backlogHead < backlog.length) dispatch(fresh, backlog[backlogHead++].intended, performance.now());
          else idle.push(fresh);
        },
        () => {},
      );
    }
    checkDone();
  };

  for (let i = 0; i < opts.connections; i++) conns.push(new Conn(host, opts.port, onResponse, onError));
  await Promise.all(conns.map((c) => c.ready()));
  idle.push(...conns);

  const t0 = performance.now();
  let k = 0;
  const pump = (): void => {
    if (finished) return;
    const now = performance.now();
    while (k < total) {
      const intended = t0 + k * intervalMs;
      if (intended > now) break;
      const lag = (now - intended) * 1000;
      if (lag > maxSendLag) maxSendLag = lag;
      k++;
      const conn = idle.pop();
      if (conn !== undefined) {
        dispatch(conn, intended, now);
      } else {
        queued++;
        backlog.push({ intended });
      }
    }
    if (backlogHead > 4096 && backlogHead * 2 > backlog.length) {
      backlog.splice(0, backlogHead);
      backlogHead = 0;
    }
    if (k < total) setImmediate(pump);
  };
  setImmediate(pump);

  const deadline = setTimeout(() => {
    if (!finished) {
      finished = true;
      resolveDone();
    }
  }, opts.durationMs + timeoutMs);
  await done;
  clearTimeout(deadline);
  const elapsedMs = performance.now() - t0;
  for (const c of conns) c.socket.destroy();

  const n = Math.min(completed, total);
  const lat = latency.subarray(0, n).sort();
  const svc = service.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += lat[i];
  return {
    targetRate: opts.rate,
    achievedRate: (completed * 1000) / elapsedMs,
    sent,
    completed,
    p50Us: percentile(lat, 50),
    p90Us: percentile(lat, 90),
    p99Us: percentile(lat, 99),
    p999Us: percentile(lat, 99.9),
    maxUs: n > 0 ? lat[n - 1] : Number.NaN,
    meanUs: n > 0 ? sum / n : Number.NaN,
    serviceP50Us: percentile(svc, 50),
    serviceP99Us: percentile(svc, 99),
    queued,
    maxSendLagUs: maxSendLag,
    non2xx,
    socketErrors,
    unanswered: total - completed - lost,
    lost,
  };
}
