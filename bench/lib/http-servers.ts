// The servers `npm run bench:http` compares, all started by the tests' one
// helper: the bare uWS server (bench/http-hello.ts: the ceiling), poolq with
// --fsync never and with the default --fsync always (fresh data dirs, npm
// start's environment), and the fastify peer (bench/peers/fastify_peer.mjs).
// Services are prefilled and answer one request of each kind correctly
// before any load.

import path from 'node:path';
import { ROOT, startHttpProcess, startServer, type ServerProcess } from '../../test/helpers/server-process.js';
import { addBody, type BodyShape } from './http-scenarios.js';

export const SERVERS = ['hello', 'poolq-never', 'poolq-always', 'fastify'] as const;
export type ServerName = (typeof SERVERS)[number];

/** Starts one server pinned to `cpu`; poolq keeps its data in `dataDir`. */
export function startNamed(name: ServerName, cpu: number | null, dataDir: string): Promise<ServerProcess> {
  if (name === 'hello') return startHttpProcess(path.join(ROOT, 'dist/bench/http-hello.js'), (port) => [String(port)], { cpu });
  if (name === 'fastify') return startHttpProcess(path.join(ROOT, 'bench/peers/fastify_peer.mjs'), (port) => [String(port)], { cpu });
  return startServer(name === 'poolq-never' ? ['--fsync', 'never'] : [], { cpu, dataDir });
}

/** POST a JSON body; the fastify peer answers appends in plain text, so the text it is. */
async function post(server: ServerProcess, p: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(server.url(p), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, text: await res.text() };
}

/** Fills pools 0 … pools − 1 with `values` values each (16 requests in flight). */
export async function prefill(server: ServerProcess, shape: BodyShape, values: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let id = next++; id < shape.pools; id = next++) {
      const r = await post(server, '/add', addBody({ ...shape, values }, id));
      if (r.status !== 200) throw new Error(`prefill POST /add pool ${id}: ${r.status} ${r.text}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/** One request of each kind, checked for the documented answer. */
export async function smoke(name: ServerName, server: ServerProcess, shape: BodyShape, prefilled: number): Promise<void> {
  if (name === 'hello') {
    const echo = await post(server, '/echo', addBody(shape));
    if (echo.status !== 200 || echo.text !== 'ok') throw new Error(`hello: POST /echo answered ${echo.status} ${echo.text}`);
    return;
  }
  const add = await post(server, '/add', `{"poolId":${shape.pools + 12345},"poolValues":[1,7,2,6]}`);
  const query = await post(server, '/query', '{"poolId":0,"percentile":99.5}');
  if (
    add.status !== 200 ||
    !/Inserted/.test(add.text) ||
    query.status !== 200 ||
    (JSON.parse(query.text) as { count?: number }).count !== prefilled
  ) {
    throw new Error(
      `${name} smoke test: add → ${add.status} ${add.text}, query pool 0 → ${query.status} ${query.text} (expected count ${prefilled})`,
    );
  }
}
