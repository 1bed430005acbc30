// The ceiling for `npm run bench:http`: a bare uWebSockets.js server on the
// same native binding poolq uses, doing the least an HTTP server can do.
//   GET /      → "hello"
//   POST /echo → reads the whole body with onData (copied into one buffer sized
//                from content-length, as a real handler must, since uWS neuters
//                each chunk when the callback returns; bodies ≥ 1 MiB into
//                recycled buffers), then replies "ok".
// Usage: node dist/bench/http-hello.js [port]   (0 or absent: any free port)
// Prints one JSON line {"msg":"hello ready","port":p} once it listens.

import { loadNativeUws } from '../src/http/uws-loader.js';

const { uws, packageName } = loadNativeUws();
const wantedPort = Number(process.argv[2] ?? 0);
const app = uws.App();

app.get('/', (res) => {
  res.end('hello');
});

// Large bodies reuse buffers, as poolq's body reader does: on this VM the first
// touch of fresh memory costs ~4 ms/MiB, which a fresh 10 MB buffer per body
// would add to every request here (bench:latency sends 10 MB bodies).
const LARGE_BODY = 1 << 20;
const spare: Buffer[] = [];
function takeBuffer(size: number): Buffer {
  if (size < LARGE_BODY) return Buffer.allocUnsafe(size);
  const i = spare.findIndex((b) => b.length >= size);
  return i >= 0 ? spare.splice(i, 1)[0] : Buffer.allocUnsafeSlow(size);
}
function giveBuffer(buffer: Buffer): void {
  if (buffer.length >= LARGE_BODY && spare.length < 4) spare.push(buffer);
}

app.post('/echo', (res, req) => {
  const declared = Number(req.getHeader('content-length'));
  let body = takeBuffer(Number.isSafeInteger(declared) && declared > 0 ? declared : 0);
  let received = 0;
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((chunk, isLast) => {
    const bytes = new Uint8Array(chunk);
    if (received + bytes.byteLength > body.byteLength) {
      const grown = takeBuffer(Math.max(received + bytes.byteLength, body.byteLength * 2));
      body.copy(grown, 0, 0, received);
      giveBuffer(body);
      body = grown;
    }
    body.set(bytes, received);
    received += bytes.byteLength;
    if (isLast) {
      giveBuffer(body);
      if (!aborted) {
        res.cork(() => {
          res.end('ok');
        });
      }
    }
  });
});

app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end('not found');
});

app.listen('127.0.0.1', wantedPort, (token) => {
  if (!token) {
    console.error(`http-hello: cannot listen on 127.0.0.1:${wantedPort}`);
    process.exit(1);
  }
  const port = uws.us_socket_local_port(token);
  console.log(JSON.stringify({ msg: 'hello ready', port, uws: packageName, node: process.version }));
});

const stop = (): void => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
