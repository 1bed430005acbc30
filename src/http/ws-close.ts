// How a /ws socket ends, for the close codes the server sends and for
// poolq_ws_closes_total. The uWebSockets.js binding drops some sockets itself,
// without a close frame (the client sees 1006): past its maxPayloadLength, on
// a text frame that is not UTF-8, on a framing error, or when a pinged socket
// stays silent. Its close handler then gets code 1006 and a reason text, the
// only place such a drop can be told apart from a lost connection.

/** Codes the server closes with itself (docs/api.md, "Limits and close codes"). */
export const WS_CLOSE = {
  goingAway: 1001,
  unsupportedData: 1003,
  policyViolation: 1008,
  messageTooBig: 1009,
} as const;

export const WS_CLOSE_CAUSES = [
  'client',
  'shutdown',
  'unsupported_data',
  'backlog',
  'too_big',
  'too_big_dropped',
  'invalid_utf8',
  'idle',
  'lost',
] as const;

export type WsCloseCause = (typeof WS_CLOSE_CAUSES)[number];

const SERVER_CAUSES: Record<number, WsCloseCause> = {
  [WS_CLOSE.goingAway]: 'shutdown',
  [WS_CLOSE.unsupportedData]: 'unsupported_data',
  [WS_CLOSE.policyViolation]: 'backlog',
  [WS_CLOSE.messageTooBig]: 'too_big',
};

// The reasons uWebSockets 20.x (WebSocketProtocol.h, WebSocketContext.h) passes with 1006; anything else is 'lost'.
const BINDING_REASONS: readonly [string, WsCloseCause][] = [
  ['WebSocket timed out from inactivity', 'idle'],
  ['Received invalid UTF-8', 'invalid_utf8'],
  ['Received too big message', 'too_big_dropped'],
];

/**
 * Why a socket closed. `serverCode`: the code the server ended it with, 0 if
 * it did not; `code` and `reason`: what the binding's close handler got.
 */
export function closeCause(serverCode: number, code: number, reason: () => string): WsCloseCause {
  // FrameViolation (protocol layer) carries its code as a number; 1003 is the only one it uses.
  if (serverCode !== 0) return SERVER_CAUSES[serverCode] ?? 'unsupported_data';
  if (code !== 1006) return 'client';
  const text = reason();
  for (const [prefix, cause] of BINDING_REASONS) if (text.startsWith(prefix)) return cause;
  return 'lost';
}
