// A `ws` client socket as the /ws end-of-life tests watch it: every reply, the
// pings it got and its close (code, reason, when); and the server's
// poolq_ws_closes_total by cause, read from /metrics.

import WebSocket, { type ClientOptions } from 'ws';

/** A reply or push as the tests read it. */
export type WsReply = { id?: unknown; ok?: boolean; error?: string; [key: string]: unknown };

export interface WsClose {
  code: number;
  reason: string;
  /** performance.now() at the close. */
  at: number;
}

export interface WatchedSocket {
  ws: WebSocket;
  /** performance.now() once open. */
  openedAt: number;
  replies: WsReply[];
  /** performance.now() of every ping received. */
  pings: number[];
  closed: Promise<WsClose>;
  /** Resolves once `n` replies arrived (or the socket closed): the first n. */
  next(n: number): Promise<WsReply[]>;
}

export async function watchSocket(url: string, options?: ClientOptions): Promise<WatchedSocket> {
  const ws = new WebSocket(url, options);
  const replies: WsReply[] = [];
  const pings: number[] = [];
  let wake = () => {};
  ws.on('message', (data: Buffer) => {
    replies.push(JSON.parse(data.toString()) as WsReply);
    wake();
  });
  ws.on('ping', () => pings.push(performance.now()));
  const closed = new Promise<WsClose>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString(), at: performance.now() });
      wake();
    }),
  );
  // A socket the server drops may also report an error (ECONNRESET); the close carries the outcome.
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('close', () => reject(new Error('closed before it opened')));
  });
  const next = async (n: number): Promise<WsReply[]> => {
    while (replies.length < n && ws.readyState !== WebSocket.CLOSED) await new Promise<void>((resolve) => (wake = resolve));
    return replies.slice(0, n);
  };
  return { ws, openedAt: performance.now(), replies, pings, closed, next };
}

/** poolq_ws_closes_total by cause. */
export async function wsCloses(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^poolq_ws_closes_total\{cause="(\w+)"\} (\S+)$/gm)) counts[m[1]] = Number(m[2]);
  return counts;
}
