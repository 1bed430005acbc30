// poolq's typed client (`import { PoolqClient, PoolqSocket } from 'poolq/client'`).

export { AppendBatcher, type BatcherOptions } from './append-batcher.js';
export { PoolqConnectionError, PoolqRequestError } from './errors.js';
export { PoolqClient, type AppendResult, type ClientOptions, type PoolSummary, type WriteOptions } from './http-client.js';
export { PoolqSocket, type SocketOptions, type SubscribeParams, type Subscription } from './ws-client.js';
export type { PushMessage } from '../protocol/ws-messages.js';
