// A lean HTTP/1.1 client for latency probes: raw keep-alive TCP sockets, each
// request written as prebuilt bytes, each response read by its content-length.
// node:http's client costs tens of µs per request in this process and adds its
// own scheduling delays to every sample; here a probe costs a socket write and
// a few indexOf calls, so the floor of the measurement is the server's and the
// kernel's, not the client library's. One request in flight per connection.

import net from 'node:net';

export interface ProbeResult {
  status: number;
  body: string;
}

interface Pending {
  resolve: (r: ProbeResult) => void;
  reject: (err: Error) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');

class ProbeConnection {
  private readonly socket: net.Socket;
  private buffer: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  private pending: Pending | null = null;
  busy = false;

  constructor(host: string, port: number) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  request(bytes: Buffer<ArrayBufferLike>): Promise<ProbeResult> {
    if (this.busy) throw new Error('ProbeConnection: one request at a time');
    this.busy = true;
    return new Promise<ProbeResult>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buffer.subarray(0, end).toString('latin1');
    const match = /\r\ncontent-length: *(\d+)/i.exec(head);
    const length = match === null ? 0 : Number(match[1]);
    const total = end + 4 + length;
    if (this.buffer.length < total) return;
    const status = Number(head.slice(9, 12));
    const body = this.buffer.subarray(end + 4, total).toString('utf8');
    this.buffer = this.buffer.subarray(total);
    const pending = this.pending;
    this.pending = null;
    this.busy = false;
    pending?.resolve({ status, body });
  }

  private fail(err: Error): void {
    const pending = this.pending;
    this.pending = null;
    pending?.reject(err);
  }
}

/** A few keep-alive connections; each probe takes a free one (or opens another). */
export class ProbeClient {
  private readonly idle: ProbeConnection[] = [];
  private readonly all: ProbeConnection[] = [];

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** The bytes of `POST path` with a JSON body (build them before starting the clock). */
  postBytes(path: string, json: string): Buffer<ArrayBufferLike> {
    const body = Buffer.from(json);
    const head = `POST ${path} HTTP/1.1\r\nHost: ${this.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head, 'latin1'), body]);
  }

  /** Sends one prebuilt request; resolves when the whole response has arrived. */
  async send(bytes: Buffer<ArrayBufferLike>): Promise<ProbeResult> {
    const connection = this.idle.pop() ?? this.open();
    const result = await connection.request(bytes); // a failed connection is not reused
    this.idle.push(connection);
    return result;
  }

  close(): void {
    for (const c of this.all) c.close();
  }

  private open(): ProbeConnection {
    const c = new ProbeConnection(this.host, this.port);
    this.all.push(c);
    return c;
  }
}
