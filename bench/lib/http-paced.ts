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
  /** Paced run before the measured one, same rate and connections, not recorded. */
  warmupMs?: number;
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
  /** Non-2xx responses, warm-up included. */
  non2xx: number;
  /** The first few non-2xx responses (head and body), for the report. */
  non2xxSamples: string[];
  socketErrors: number;
  /** Requests not answered when the run ended (abandoned). */
  unanswered: number;
  /** Requests whose connection broke while they were in flight. */
  lost: number;
}

interface Pending {
  intended: number;
}

// One read buffer for every connection: onread callbacks run synchronously and
// each copies what it needs into its connection's accumulator.
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const CR = 13;
const LF = 10;
const CONTENT_LENGTH = Buffer.from('content-length:');

function lower(b: number): number {
  return b >= 65 && b <= 90 ? b | 0x20 : b;
}

class Conn {
  socket: Socket;
  busy = false;
  broken = false;
  intended = 0;
  writtenAt = 0;
  /** Bytes received and not yet consumed (normally one small response). */
  private acc = Buffer.allocUnsafe(16 * 1024);
  private accLen = 0;

  constructor(
    host: string,
    port: number,
    private readonly onResponse: (conn: Conn, status: number, raw: Buffer, len: number) => void,
    private readonly onError: (conn: Conn, err: Error) => void,
  ) {
    // onread: reads land in READ_BUFFER, no Buffer per chunk (less garbage, fewer GC pauses in the client)
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number) => {
          this.onBytes(n);
          return true;
        },
      },
    });
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

  /** n bytes arrived in READ_BUFFER. */
  private onBytes(n: number): void {
    if (this.accLen + n > this.acc.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.acc.length * 2, this.accLen + n));
      this.acc.copy(grown, 0, 0, this.accLen);
      this.acc = grown;
    }
    READ_BUFFER.copy(this.acc, this.accLen, 0, n);
    this.accLen += n;
    for (;;) {
      const total = this.completeLength();
      if (total < 0) return;
      const status = (this.acc[9] - 48) * 100 + (this.acc[10] - 48) * 10 + (this.acc[11] - 48);
      this.onResponse(this, status, this.acc, total);
      if (this.accLen > total) this.acc.copyWithin(0, total, this.accLen);
      this.accLen -= total;
      if (this.accLen === 0) return;
    }
  }

  /** Length of the complete response at the start of acc, or -1 while it is incomplete. */
  private completeLength(): number {
    const a = this.acc;
    const len = this.accLen;
    let contentLength = -1;
    // walk the header lines: "HTTP/1.1 200 OK\r\nname: value\r\n...\r\n\r\n"
    let i = 0;
    while (i + 1 < len) {
      if (a[i] === CR && a[i + 1] === LF) {
        const line = i + 2;
        if (line + 1 < len && a[line] === CR && a[line + 1] === LF) {
          const headEnd = line + 2;
          if (contentLength >= 0) return headEnd + contentLength <= len ? headEnd + contentLength : -1;
          return this.slowLength(headEnd);
        }
        if (line + CONTENT_LENGTH.length < len && lower(a[line]) === 0x63 /* c */) {
          let k = 0;
          while (k < CONTENT_LENGTH.length && lower(a[line + k]) === CONTENT_LENGTH[k]) k++;
          if (k === CONTENT_LENGTH.length) {
            let j = line + k;
            while (j < len && a[j] === 32) j++;
            let v = 0;
            while (j < len && a[j] >= 48 && a[j] <= 57) v = v * 10 + (a[j++] - 48);
            contentLength = v;
          }
        }
        i = line;
      } else {
        i++;
      }
    }
    return -1;
  }

  /** Responses without content-length (chunked, or no body): rare here, so strings are fine. */
  private slowLength(headEnd: number): number {
    const head = this.acc.toString('latin1', 0, headEnd);
    if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const end = this.acc.subarray(0, this.accLen).indexOf('\r\n0\r\n\r\n', headEnd - 2);
      return end < 0 ? -1 : end + 7;
    }
    return headEnd; // no body (204, 304)
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
  const warmupMs = opts.warmupMs ?? 0;
  const measured = Math.max(1, Math.round((opts.rate * opts.durationMs) / 1000));
  const total = measured + Math.round((opts.rate * warmupMs) / 1000);
  const intervalMs = 1000 / opts.rate;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const latency = new Float64Array(measured);
  const service = new Float64Array(measured);
  let tMeasure = Number.POSITIVE_INFINITY; // set when the schedule starts
  let recorded = 0;
  let completed = 0;
  let sent = 0;
  let non2xx = 0;
  let socketErrors = 0;
  let lost = 0;
  const non2xxSamples: string[] = [];
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

  const onResponse = (conn: Conn, status: number, raw: Buffer, len: number): void => {
    const now = performance.now();
    if (conn.intended >= tMeasure && recorded < measured) {
      latency[recorded] = (now - conn.intended) * 1000;
      service[recorded] = (now - conn.writtenAt) * 1000;
      recorded++;
    }
    completed++;
    if (status < 200 || status > 299) {
      non2xx++;
      if (non2xxSamples.length < 3) non2xxSamples.push(raw.toString('utf8', 0, Math.min(len, 600)));
    }
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
  tMeasure = t0 + (total - measured) * intervalMs;
  let k = 0;
  const pump = (): void => {
    if (finished) return;
    const now = performance.now();
    while (k < total) {
      const intended = t0 + k * intervalMs;
      if (intended > now) break;
      const lag = (now - intended) * 1000;
      if (lag > maxSendLag && intended >= tMeasure) maxSendLag = lag;
      k++;
      const conn = idle.pop();
      if (conn !== undefined) {
        dispatch(conn, intended, now);
      } else {
        if (intended >= tMeasure) queued++;
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
  }, warmupMs + opts.durationMs + timeoutMs);
  await done;
  clearTimeout(deadline);
  const elapsedMs = performance.now() - tMeasure;
  for (const c of conns) c.socket.destroy();

  const n = recorded;
  const lat = latency.subarray(0, n).sort();
  const svc = service.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += lat[i];
  return {
    targetRate: opts.rate,
    achievedRate: (recorded * 1000) / elapsedMs,
    sent,
    completed: recorded,
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
    non2xxSamples,
    socketErrors,
    unanswered: total - completed - lost,
    lost,
  };
}
