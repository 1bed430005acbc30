// Structured logs (pino, JSON lines on stdout): one line at start-up, one per
// error and per slow request; no per-request log.

import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'poolq', pid: process.pid } });
}
