// The ceiling for the HTTP benches: a bare uWebSockets.js server on the same
// native binding poolq uses, doing the least an HTTP server can do.
//   GET /, GET /readyz → "hello"
//   POST /echo         → reads the whole body with onData (copied into one buffer
//                        sized from content-length, as a real handler must: uWS
//                        neuters each chunk when the callback returns), replies "ok"
// Usage: node dist/bench/http-hello.js PORT

import { loadNativeUws } from '../src/http/uws-loader.js';

const { uws } = loadNativeUws();
const port = Number(process.argv[2]);
const app = uws.App();

app.get('/', (res) => void res.end('hello'));
app.get('/readyz', (res) => void res.end('hello'));

// Large bodies reuse buffers, as poolq's body reader does: the first touch of
// fresh memory (~4 ms per MiB here) would otherwise be added to every big body.
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
      if (!aborted) res.cork(() => void res.end('ok'));
    }
  });
});

app.any('/*', (res) => void res.writeStatus('404 Not Found').end('not found'));

app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error(`http-hello: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
