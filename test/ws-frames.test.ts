// /ws protocol violations written frame by frame against the real server
// (--max-body 64KiB): where --max-body is enforced (whole messages, however
// fragmented, 1009 up to twice the limit), what the uWebSockets.js binding
// drops itself without a close frame (1006: past twice --max-body, text that
// is not UTF-8, framing errors), and that the server still sees why
// (poolq_ws_closes_total). Nothing refused changes any pool.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBinaryAdd } from '../src/protocol/ws-binary-frame.js';
import { startServer, type ServerProcess } from './helpers/server-process.js';
import { watchSocket, wsCloses, type WatchedSocket } from './helpers/ws-watch.js';

const MAX_BODY = 64 << 10;
/** Values that fill a binary add frame (16-byte header) to exactly `bytes`. */
const valuesFor = (bytes: number) => (bytes - 16) / 8;

let server: ServerProcess;
const url = () => `ws://127.0.0.1:${server.port}/ws`;

beforeAll(async () => {
  server = await startServer(['--max-body', '64KiB']);
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** A masked client frame; `announced` claims another payload length than the bytes that follow. */
function clientFrame(opcode: number, payload: Uint8Array, opts: { fin?: boolean; rsv1?: boolean; announced?: number } = {}): Buffer {
  const length = opts.announced ?? payload.length;
  const head = [((opts.fin ?? true) ? 0x80 : 0) | (opts.rsv1 ? 0x40 : 0) | opcode];
  if (length < 126) head.push(0x80 | length);
  else if (length < 65536) head.push(0x80 | 126, length >> 8, length & 255);
  else {
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(length));
    head.push(0x80 | 127, ...big);
  }
  const mask = [0x12, 0x34, 0x56, 0x78];
  return Buffer.concat([Buffer.from(head), Buffer.from(mask), Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]);
}

/** Writes bytes under `ws`'s own framing. */
function writeRaw(socket: WatchedSocket, bytes: Buffer): void {
  (socket.ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(bytes);
}

/** Runs `act` and returns the closes it caused, by cause (poolq_ws_closes_total, causes that did not move left out). */
async function closesDuring(act: () => Promise<void>): Promise<Record<string, number>> {
  const before = await wsCloses(server.url('/metrics'));
  await act();
  const after = await wsCloses(server.url('/metrics'));
  return Object.fromEntries(
    Object.entries(after)
      .filter(([cause, n]) => n !== before[cause])
      .map(([cause, n]) => [cause, n - before[cause]]),
  );
}

/** Closes from the client side and waits for the server's answer, so the server has counted it. */
async function closeClean(socket: WatchedSocket): Promise<void> {
  socket.ws.close(1000);
  expect((await socket.closed).code).toBe(1000);
}

async function poolStatus(poolId: number): Promise<number> {
  return (await fetch(server.url(`/pools/${poolId}`))).status;
}

describe('--max-body on /ws messages', () => {
  it('takes a message of exactly --max-body and closes with 1009 one value over it', async () => {
    const closes = await closesDuring(async () => {
      const fits = await watchSocket(url());
      fits.ws.send(encodeBinaryAdd(1, 3001, new Float64Array(valuesFor(MAX_BODY))));
      expect(await fits.next(1)).toEqual([{ id: 1, ok: true, created: true, count: valuesFor(MAX_BODY) }]);
      await closeClean(fits);

      const over = await watchSocket(url());
      over.ws.send(encodeBinaryAdd(1, 3002, new Float64Array(valuesFor(MAX_BODY) + 1)));
      expect(await over.closed).toMatchObject({ code: 1009, reason: `a message may hold at most ${MAX_BODY} bytes (--max-body)` });
      expect(await poolStatus(3002)).toBe(404);
    });
    expect(closes).toEqual({ client: 1, too_big: 1 });
  });

  it('applies the limit to a whole fragmented message: fragments within it are one add, fragments past it close with 1009', async () => {
    const closes = await closesDuring(async () => {
      const frame = encodeBinaryAdd(2, 3003, new Float64Array(valuesFor(48 << 10)));
      const fits = await watchSocket(url());
      fits.ws.send(frame.subarray(0, 10), { binary: true, fin: false }); // the header itself is split
      fits.ws.send(frame.subarray(10), { fin: true });
      expect(await fits.next(1)).toEqual([{ id: 2, ok: true, created: true, count: valuesFor(48 << 10) }]);
      await closeClean(fits);

      const over = await watchSocket(url());
      const big = encodeBinaryAdd(3, 3004, new Float64Array(valuesFor(96 << 10)));
      over.ws.send(big.subarray(0, 48 << 10), { binary: true, fin: false });
      over.ws.send(big.subarray(48 << 10), { fin: true });
      expect((await over.closed).code).toBe(1009);
      expect(await poolStatus(3004)).toBe(404);
    });
    expect(closes).toEqual({ client: 1, too_big: 1 });
  });
});

describe("the binding's own drops (1006, no close frame)", () => {
  it('drops a frame announcing more than twice --max-body at its header, before any payload', async () => {
    const closes = await closesDuring(async () => {
      const socket = await watchSocket(url());
      const started = performance.now();
      writeRaw(socket, clientFrame(2, new Uint8Array(0), { announced: 2 * MAX_BODY + 1 }));
      expect((await socket.closed).code).toBe(1006);
      expect(performance.now() - started).toBeLessThan(1000);
    });
    expect(closes).toEqual({ too_big_dropped: 1 });
  });

  it('drops a fragmented message once its fragments pass twice --max-body', async () => {
    const closes = await closesDuring(async () => {
      const socket = await watchSocket(url());
      const big = encodeBinaryAdd(4, 3005, new Float64Array(valuesFor(3 * MAX_BODY)));
      socket.ws.send(big.subarray(0, MAX_BODY + 8), { binary: true, fin: false });
      socket.ws.send(big.subarray(MAX_BODY + 8), { fin: true });
      expect((await socket.closed).code).toBe(1006);
      expect(await poolStatus(3005)).toBe(404);
    });
    expect(closes).toEqual({ too_big_dropped: 1 });
  });

  it('checks UTF-8 over the whole text message: a character split across fragments is fine, bytes that are not UTF-8 drop the socket', async () => {
    const closes = await closesDuring(async () => {
      const split = await watchSocket(url());
      const text = Buffer.from(JSON.stringify({ op: 'add', id: 'ünïcödé €', poolId: 3006, poolValues: [1] }));
      const cut = text.indexOf(Buffer.from('€')) + 1; // inside the 3-byte €
      split.ws.send(text.subarray(0, cut), { binary: false, fin: false });
      split.ws.send(text.subarray(cut), { fin: true });
      expect(await split.next(1)).toEqual([{ id: 'ünïcödé €', ok: true, created: true, count: 1 }]);
      await closeClean(split);

      for (const bytes of [
        Buffer.from('{"op":"add","id":1,"poolId":3007,"poolValues":[1],"key":"\xff"}', 'latin1'),
        Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d]), // an encoded UTF-16 surrogate
      ]) {
        const socket = await watchSocket(url());
        socket.ws.send(bytes, { binary: false });
        expect((await socket.closed).code).toBe(1006);
      }
      expect(await poolStatus(3007)).toBe(404);
    });
    expect(closes).toEqual({ client: 1, invalid_utf8: 2 });
  });

  it('drops a frame with a reserved bit set (no extension was negotiated)', async () => {
    const closes = await closesDuring(async () => {
      const socket = await watchSocket(url());
      writeRaw(socket, clientFrame(2, encodeBinaryAdd(5, 3008, [1]), { rsv1: true }));
      expect((await socket.closed).code).toBe(1006);
      expect(await poolStatus(3008)).toBe(404);
    });
    expect(closes).toEqual({ lost: 1 });
  });
});
