// Live updates over the server's WebSocket (/ws): one socket per page, topic
// subscriptions ({"op":"subscribe","topic":"pool"|"import",…}) and their
// pushes handed to the subscriber by topic name. When the socket cannot be
// opened (an old server, a proxy without WebSockets) `subscribe` resolves to
// null and the caller polls instead.

import { storedToken } from './api.js';

type Push = Record<string, unknown> & { topic: string };

let socket: Promise<WebSocket | null> | null = null;
const listeners = new Map<string, (push: Push) => void>();
const pending = new Map<number, (topic: string | null) => void>();
let nextId = 1;

function open(): Promise<WebSocket | null> {
  const token = storedToken();
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws${token === null ? '' : `?token=${encodeURIComponent(token)}`}`;
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => resolve(ws);
    ws.onerror = () => resolve(null);
    ws.onclose = () => {
      socket = null; // the next subscribe opens a new one
      for (const settle of pending.values()) settle(null);
      pending.clear();
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; ok?: boolean; topic?: string };
      if (message.id !== undefined) {
        pending.get(message.id)?.(message.ok === true ? (message.topic ?? null) : null);
        pending.delete(message.id);
      } else if (message.topic !== undefined) {
        listeners.get(message.topic)?.(message as Push);
      }
    };
  });
}

/** Subscribes; resolves to an unsubscribe function, or null when there is no live channel (poll then). */
export async function subscribe(params: Record<string, unknown>, onPush: (push: Push) => void): Promise<(() => void) | null> {
  socket ??= open();
  const ws = await socket;
  if (ws === null || ws.readyState !== WebSocket.OPEN) {
    socket = null;
    return null;
  }
  const id = nextId++;
  const topic = await new Promise<string | null>((resolve) => {
    pending.set(id, resolve);
    ws.send(JSON.stringify({ op: 'subscribe', id, ...params }));
  });
  if (topic === null) return null;
  listeners.set(topic, onPush);
  return () => {
    listeners.delete(topic);
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ op: 'unsubscribe', id: nextId++, topic }));
  };
}
