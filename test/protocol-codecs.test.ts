// The wire formats of the ingest paths, below the server: binary float64
// bodies, the binary WebSocket add frame, the JSON WebSocket messages and the
// streaming NDJSON batch parser (fast-check: any split of a body into chunks
// parses to the same batch as the whole body).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PoolqError } from '../src/core/errors.js';
import { float64View, firstNonFinite } from '../src/protocol/binary-values.js';
import { NdjsonBatchParser } from '../src/protocol/ndjson-batch.js';
import { decodeBinaryAdd, encodeBinaryAdd, FrameRequestError, FrameViolation } from '../src/protocol/ws-binary-frame.js';
import {
  decodeClientMessage,
  encodeError,
  encodePoolPush,
  encodeQueryReply,
  MessageError,
  parsePoolTopic,
} from '../src/protocol/ws-messages.js';

function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('binary float64 bodies', () => {
  it('reads an aligned body as a view of the same memory (no copy)', () => {
    const values = new Float64Array([3, -0, 1e308, 5e-324]);
    const bytes = new Uint8Array(values.buffer);
    const view = float64View(bytes, 'body');
    expect(view.buffer).toBe(values.buffer);
    expect([...view]).toEqual([3, -0, 1e308, 5e-324]);
    expect(Object.is(view[1], -0)).toBe(true);
  });

  it('copies an unaligned body', () => {
    const backing = new Uint8Array(17);
    new DataView(backing.buffer).setFloat64(1, 2.5, true);
    new DataView(backing.buffer).setFloat64(9, -7, true);
    const view = float64View(backing.subarray(1), 'body');
    expect([...view]).toEqual([2.5, -7]);
  });

  it('refuses a length that is not a multiple of 8, and an empty body', () => {
    for (const n of [0, 1, 7, 9, 15]) {
      const err = thrown(() => float64View(new Uint8Array(n), 'body')) as PoolqError;
      expect(err.code).toBe('invalid_request');
      expect(err.field).toBe('body');
    }
  });

  it('finds the first value that is not finite', () => {
    expect(firstNonFinite(new Float64Array([1, 2, 3]))).toBe(-1);
    expect(firstNonFinite(new Float64Array([1, NaN, Infinity]))).toBe(1);
    expect(firstNonFinite(new Float64Array([1, 2, -Infinity]))).toBe(2);
  });
});

describe('binary WebSocket add frames', () => {
  it('round-trips id, poolId, key and values (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.option(fc.stringMatching(/^[\x21-\x7e]{1,40}$/), { nil: null }),
        fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 300 }),
        (id, poolId, key, values) => {
          const frame = encodeBinaryAdd(id, poolId, values, key);
          expect(frame.byteLength % 8).toBe(0);
          const decoded = decodeBinaryAdd(arrayBufferOf(frame));
          expect(decoded.id).toBe(id);
          expect(decoded.poolId).toBe(poolId);
          expect(decoded.key).toBe(key);
          expect([...decoded.values]).toEqual(values);
        },
      ),
    );
  });

  it('closes (1003) on frames it cannot answer', () => {
    const good = encodeBinaryAdd(1, 2, [3]);
    const cases: Uint8Array[] = [
      new Uint8Array(15),
      Uint8Array.from(good, (b, i) => (i === 0 ? 2 : b)),
      Uint8Array.from(good, (b, i) => (i === 2 ? 1 : b)),
    ];
    for (const frame of cases) {
      const err = thrown(() => decodeBinaryAdd(arrayBufferOf(frame)));
      expect(err).toBeInstanceOf(FrameViolation);
      expect((err as FrameViolation).closeCode).toBe(1003);
    }
  });

  it('answers well-formed frames with bad content with an error naming the field', () => {
    const expectRefusal = (frame: Uint8Array, field: string) => {
      const err = thrown(() => decodeBinaryAdd(arrayBufferOf(frame)));
      expect(err).toBeInstanceOf(FrameRequestError);
      expect((err as FrameRequestError).id).toBe(77);
      expect((err as FrameRequestError).error.field).toBe(field);
    };
    expectRefusal(encodeBinaryAdd(77, 1, [1, NaN]), 'poolValues[1]');
    expectRefusal(encodeBinaryAdd(77, 1, [Infinity]), 'poolValues[0]');
    expectRefusal(encodeBinaryAdd(77, 1, []), 'poolValues');
    expectRefusal(encodeBinaryAdd(77, 1, [1]).subarray(0, 20), 'poolValues');
    const tooBig = encodeBinaryAdd(77, 1, [1]);
    new DataView(tooBig.buffer).setUint32(12, 2 ** 21, true);
    expectRefusal(tooBig, 'poolId');
    expectRefusal(encodeBinaryAdd(77, 1, [1], 'has space'), 'key');
  });
});

describe('JSON WebSocket messages', () => {
  const refusal = (text: string) => thrown(() => decodeClientMessage(text)) as MessageError;

  it('decodes every op', () => {
    const add = decodeClientMessage('{"op":"add","id":1,"poolId":7,"poolValues":[2,1],"key":"k-1"}');
    expect(add).toMatchObject({ op: 'add', id: 1, poolId: 7, key: 'k-1' });
    expect([...(add as { values: Float64Array }).values]).toEqual([2, 1]);
    expect(decodeClientMessage('{"op":"query","id":"q","poolId":7,"percentiles":[50,90],"method":"lower"}')).toEqual({
      op: 'query',
      id: 'q',
      poolId: 7,
      percentiles: [50, 90],
      many: true,
      method: 'lower',
    });
    expect(decodeClientMessage('{"op":"subscribe","id":3,"poolId":7,"percentile":50}')).toMatchObject({ op: 'subscribe', kind: 'pool' });
    expect(decodeClientMessage('{"op":"unsubscribe","id":4,"topic":"pool:7:linear:1000:50"}')).toEqual({
      op: 'unsubscribe',
      id: 4,
      topic: 'pool:7:linear:1000:50',
    });
  });

  it('refuses malformed messages with the id when it is known, and the field', () => {
    expect(refusal('{nope').error.code).toBe('invalid_json');
    expect(refusal('{nope').id).toBeNull();
    expect(refusal('[1]').error.field).toBe('$');
    expect(refusal('{"op":"add","poolId":1,"poolValues":[1]}').error.field).toBe('id');
    expect(refusal('{"op":"add","id":{},"poolId":1,"poolValues":[1]}').error.field).toBe('id');
    const cases: [string, string][] = [
      ['{"op":"nope","id":5}', 'op'],
      ['{"op":"add","id":5,"poolId":-1,"poolValues":[1]}', 'poolId'],
      ['{"op":"add","id":5,"poolId":1,"poolValues":[1,"x"]}', 'poolValues[1]'],
      ['{"op":"add","id":5,"poolId":1,"poolValues":[1e400]}', 'poolValues[0]'],
      ['{"op":"add","id":5,"poolId":1,"poolValues":[1],"key":""}', 'key'],
      ['{"op":"query","id":5,"poolId":1}', 'percentile'],
      ['{"op":"query","id":5,"poolId":1,"percentile":101}', 'percentile'],
      ['{"op":"query","id":5,"poolId":1,"percentile":1,"method":"cubic"}', 'method'],
      ['{"op":"subscribe","id":5,"topic":7,"poolId":1}', 'topic'],
      ['{"op":"unsubscribe","id":5}', 'topic'],
    ];
    for (const [text, field] of cases) {
      const err = refusal(text);
      expect(err.id, text).toBe(5);
      expect(err.error.field, text).toBe(field);
    }
  });

  it('names pool topics by their parameters, so equal subscriptions share one', () => {
    const a = parsePoolTopic({ poolId: 7, percentiles: [50, 99], intervalMs: 100 });
    const b = parsePoolTopic({ poolId: 7, percentiles: [50, 99], intervalMs: 100, method: 'linear' });
    expect(a.name).toBe(b.name);
    expect(parsePoolTopic({ poolId: 7, percentile: 50 }).name).not.toBe(a.name);
    for (const intervalMs of [0, 9, 1.5, '100', 3_600_001]) {
      expect((thrown(() => parsePoolTopic({ poolId: 7, percentile: 50, intervalMs })) as PoolqError).field).toBe('intervalMs');
    }
  });

  it('encodes replies and pushes as JSON that keeps -0', () => {
    expect(encodeQueryReply(1, [-0], 1, false)).toBe('{"id":1,"ok":true,"quantile":-0,"count":1}');
    expect(JSON.parse(encodeError('a"b', 'invalid_request', 'm "x"', 'f'))).toEqual({
      id: 'a"b',
      error: 'invalid_request',
      message: 'm "x"',
      field: 'f',
    });
    expect(JSON.parse(encodePoolPush('t', 7, 0, null))).toEqual({ topic: 't', poolId: 7, count: 0, quantiles: null });
  });
});

describe('NDJSON batches', () => {
  const parse = (text: string, chunks: number[] = [], limits = {}) => {
    const bytes = Buffer.from(text);
    const parser = new NdjsonBatchParser(limits);
    let at = 0;
    for (const cut of [...chunks, bytes.length]) {
      parser.push(bytes.subarray(at, Math.max(at, cut)));
      at = Math.max(at, cut);
    }
    const batch = parser.end();
    return { ...batch, entries: batch.entries.map((e) => ({ poolId: e.poolId, values: [...e.values] })) };
  };
  const lineError = (text: string, limits = {}) => thrown(() => parse(text, [], limits)) as PoolqError;

  it('combines lines per pool, skips blank lines, accepts CRLF and a last line without newline', () => {
    const text = '{"poolId":1,"poolValues":[1,2]}\r\n\n{"poolId":2,"poolValues":[3]}\n  \n{"poolValues":[4],"poolId":1}';
    expect(parse(text)).toEqual({
      entries: [
        { poolId: 1, values: [1, 2, 4] },
        { poolId: 2, values: [3] },
      ],
      lines: 3,
      values: 4,
    });
  });

  it('gives the same batch for any split of the body into chunks (fast-check)', () => {
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ poolId: i % 7, poolValues: [i, i * 0.5, -i] }));
    const text = lines.join('\n') + '\n';
    const whole = parse(text);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 20 }), (cuts) => {
        expect(
          parse(
            text,
            [...cuts].sort((a, b) => a - b),
          ),
        ).toEqual(whole);
      }),
    );
  });

  it('names the bad line (1-based) and the field in it', () => {
    const ok = '{"poolId":1,"poolValues":[1]}';
    expect(lineError(`${ok}\n${ok}\n{"poolId":1,"poolValues":[1,"x"]}\n`).field).toBe('line[3].poolValues[1]');
    expect(lineError(`${ok}\n{nope\n`).field).toBe('line[2]');
    expect(lineError(`${ok}\n{nope\n`).code).toBe('invalid_json');
    expect(lineError(`${ok}\n\n[1,2]\n`).field).toBe('line[3]');
    expect(lineError(`{"poolId":-3,"poolValues":[1]}`).field).toBe('line[1].poolId');
    expect(lineError('\n\n').field).toBe('line[1]');
    expect(lineError(`${ok}\n${ok}\n${ok}\n`, { maxLines: 2 }).field).toBe('line[3]');
    expect(lineError(`${ok}\n{"poolId":1,"poolValues":[1,2,3]}\n`, { maxValues: 3 }).field).toBe('line[2]');
    expect(lineError(`${ok}\n{"poolId":1,"poolValues":[${'1,'.repeat(100)}1]}\n`, { maxLineBytes: 100 }).field).toBe('line[2]');
  });

  it('holds at most one line of the body at a time', () => {
    const parser = new NdjsonBatchParser({ maxLineBytes: 64 });
    const line = Buffer.from('{"poolId":1,"poolValues":[1,2,3]}\n');
    for (let i = 0; i < 10_000; i++) parser.push(line);
    expect(parser.end().values).toBe(30_000);
    // a partial line past the limit is refused while streaming, before the newline arrives
    const p2 = new NdjsonBatchParser({ maxLineBytes: 64 });
    p2.push(Buffer.from('{"poolId":1,"poolValues":['));
    expect((thrown(() => p2.push(Buffer.from('1,'.repeat(40)))) as PoolqError).field).toBe('line[1]');
  });
});
