// The load side of `npm run bench:ingest`, run as a child process (pinned to
// its own CPU) so the server's core is not shared with the client. One
// scenario per run, given as a JSON argument; prints one JSON result line.
//
//   ws-json / ws-binary  `connections` sockets, each keeping `depth` 10-value
//                        adds in flight (pipelined), to random pools of 1000
//   bulk                 10^6-value application/octet-stream bodies into ONE pool
//                        (fresh random doubles each)
//   ndjson               POST /batch bodies of 1000 pools x 100 values
//   push                 1000 subscribers (intervalMs 100) while paced appends
//                        flow at `rate`/s; latency from the ack of the first
//                        change a push reports to the push's arrival
//   stall                a subscriber that never reads while appends flow:
//                        the server's RSS and unsent bytes before and after

import { readFileSync } from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { encodeBinaryAdd } from '../../src/protocol/ws-binary-frame.js';
import { uniform, wideDouble } from './data.js';

interface Args {
  scenario: 'ws-json' | 'ws-binary' | 'bulk' | 'ndjson' | 'push' | 'stall';
  port: number;
  durationS: number;
  connections?: number;
  depth?: number;
  serverPid?: number;
  rate?: number;
}

const args = JSON.parse(process.argv[2]) as Args;
const base = `http://127.0.0.1:${args.port}`;
const wsUrl = `ws://127.0.0.1:${args.port}/ws`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomValues = (n: number) => Array.from({ length: n }, () => Math.round(Math.random() * 1e9) / 1e3);

function openSocket(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Pipelined adds: every ack sends the next frame; counts acks in the measured window. */
async function wsAdds(binary: boolean): Promise<object> {
  const frames = Array.from({ length: 4096 }, (_, i) => {
    const poolId = Math.floor(Math.random() * 1000);
    const values = randomValues(10);
    return binary
      ? Buffer.from(encodeBinaryAdd(i, poolId, values))
      : `{"op":"add","id":${i},"poolId":${poolId},"poolValues":[${values.join(',')}]}`;
  });
  const sockets = await Promise.all(Array.from({ length: args.connections ?? 32 }, openSocket));
  let acks = 0;
  let errors = 0;
  let measuring = false;
  let stopped = false;
  let next = 0;
  for (const ws of sockets) {
    ws.on('message', (data: Buffer) => {
      if (measuring) {
        if (data.includes('"error"')) errors++;
        else acks++;
      }
      if (!stopped) ws.send(frames[next++ & 4095]);
    });
    for (let i = 0; i < (args.depth ?? 32); i++) ws.send(frames[next++ & 4095]);
  }
  await sleep(1000); // warm-up
  measuring = true;
  const started = performance.now();
  await sleep(args.durationS * 1000);
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stopped = true;
  await sleep(300);
  for (const ws of sockets) ws.terminate();
  return { requests: acks, errors, seconds, rps: acks / seconds, valuesPerS: (acks * 10) / seconds };
}

/** Back-to-back POSTs of `nextBody()` from `connections` keep-alive connections. */
async function posts(path: string, nextBody: () => Buffer, contentType: string, valuesPerRequest: number): Promise<object> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: args.connections ?? 2 });
  let done = 0;
  let errors = 0;
  let stop = false;
  const latencies: number[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const body = nextBody();
      const t = performance.now();
      const req = http.request(
        `${base}${path}`,
        { method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': body.length } },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200 || res.statusCode === 201) {
              done++;
              latencies.push(performance.now() - t);
            } else errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  await one(); // creates the pool(s) and warms up
  done = 0;
  latencies.length = 0;
  const started = performance.now();
  const timer = setTimeout(() => (stop = true), args.durationS * 1000);
  await Promise.all(
    Array.from({ length: args.connections ?? 2 }, async () => {
      while (!stop) await one();
    }),
  );
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: done,
    errors,
    seconds,
    rps: done / seconds,
    valuesPerS: (done * valuesPerRequest) / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/** Fresh random doubles in every body: a repeated body would make the pool's runs counted, a different (cheaper) merge. */
async function bulk(): Promise<object> {
  const n = 1_000_000;
  const next = () => {
    return Buffer.from(uniform(n, wideDouble).buffer);
  };
  return posts('/pools/1/values', next, 'application/octet-stream', n);
}

async function ndjson(): Promise<object> {
  const lines = Array.from({ length: 1000 }, (_, i) => `{"poolId":${100_000 + i},"poolValues":[${randomValues(100).join(',')}]}\n`);
  const body = Buffer.from(lines.join(''));
  return posts('/batch', () => body, 'application/x-ndjson', 100_000);
}

async function push(): Promise<object> {
  const subscribers = 1000;
  const pools = 100;
  const intervalMs = 100;
  const rate = args.rate ?? 10_000;
  // ack times of each pool's appends, by the count they produced
  const ackAt = Array.from({ length: pools }, () => new Map<number, number>());
  const latencies: number[] = [];
  let measuring = false;
  const sockets: WebSocket[] = [];
  for (let s = 0; s < subscribers; s += 50)
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, subscribers - s) }, openSocket))));
  sockets.forEach((ws, i) => {
    const pool = i % pools;
    let lastCount = -1;
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { topic?: string; count?: number };
      if (m.topic === undefined || m.count === undefined || !('poolId' in m)) return;
      const arrived = performance.now();
      if (measuring && lastCount >= 0 && m.count > lastCount) {
        // the oldest change this push reports: the append that took the count past lastCount
        const acks = ackAt[pool];
        let first = Infinity;
        for (let c = lastCount + 1; c <= m.count; c++) {
          const t = acks.get(c);
          if (t !== undefined && t < first) first = t;
        }
        if (first !== Infinity) latencies.push(arrived - first);
      }
      lastCount = m.count;
    });
    ws.send(JSON.stringify({ op: 'subscribe', id: 1, poolId: 500_000 + pool, percentiles: [50, 99], intervalMs }));
  });
  const writers = await Promise.all(Array.from({ length: 4 }, openSocket));
  // acks come back in request order: the i-th ack of writer w answers its i-th add
  const sentPool: number[][] = writers.map(() => []);
  const acked = writers.map(() => 0);
  writers.forEach((ws, w) => {
    ws.on('message', (data: Buffer) => {
      const ack = JSON.parse(data.toString()) as { count?: number };
      const pool = sentPool[w][acked[w]++];
      if (ack.count !== undefined) ackAt[pool].set(ack.count, performance.now());
    });
  });
  await sleep(500);
  // This process's own event-loop delay: a push that waits in its queue counts as latency too.
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  let sent = 0;
  const send = () => {
    const w = sent % writers.length;
    const pool = sent % pools;
    sentPool[w].push(pool);
    writers[w].send(encodeBinaryAdd(sent >>> 0, 500_000 + pool, [Math.random()]));
    sent++;
  };
  const started = performance.now();
  const total = rate * (args.durationS + 1);
  // paced in 1 ms steps
  while (sent < total) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (sent < Math.min(due, total)) send();
    if (!measuring && performance.now() - started > 1000) {
      measuring = true; // first second: warm-up
      loopDelay.enable();
    }
    await sleep(1);
  }
  await sleep(intervalMs * 3);
  const seconds = (performance.now() - started) / 1000;
  for (const ws of [...sockets, ...writers]) ws.terminate();
  latencies.sort((a, b) => a - b);
  loopDelay.disable();
  return {
    subscribers,
    intervalMs,
    appendsPerS: sent / seconds,
    pushes: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1),
    clientLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
  };
}

async function stall(): Promise<object> {
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${args.serverPid}/status`, 'utf8'))![1]) * 1024;
  const buffered = async () => Number(/^poolq_ws_buffered_bytes (\S+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1]);
  const stalled = await openSocket();
  const percentiles = Array.from({ length: 1000 }, (_, i) => i / 10);
  for (let t = 0; t < 5; t++) stalled.send(JSON.stringify({ op: 'subscribe', id: t, poolId: 600_000, percentiles, intervalMs: 10 + t }));
  await sleep(200);
  (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
  const rssBefore = rss();
  const writer = await openSocket();
  let inFlight = 0;
  let appends = 0;
  writer.on('message', () => inFlight--);
  const until = performance.now() + args.durationS * 1000;
  while (performance.now() < until) {
    while (inFlight < 16) {
      writer.send(encodeBinaryAdd(0, 600_000, [Math.random()]));
      inFlight++;
      appends++;
    }
    await sleep(1);
  }
  const result = { appends, rssBefore, rssAfter: rss(), bufferedBytes: await buffered() };
  stalled.terminate();
  writer.terminate();
  return result;
}

const run: Record<Args['scenario'], () => Promise<object>> = {
  'ws-json': () => wsAdds(false),
  'ws-binary': () => wsAdds(true),
  bulk,
  ndjson,
  push,
  stall,
};

run[args.scenario]().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
