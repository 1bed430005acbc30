// Talking to one shard's /cluster and /pools endpoints from the cluster tools,
// straight to its address from the shard map (never through the proxy, whose
// routing is what the tools change).

export class ShardRequestError extends Error {
  constructor(
    readonly shard: string,
    readonly status: number,
    readonly answer: string,
    what: string,
  ) {
    super(`${shard}: ${what} answered ${status}: ${answer.slice(0, 500)}`);
    this.name = 'ShardRequestError';
  }
}

export interface ShardClient {
  readonly name: string;
  readonly address: string;
  json<T>(method: string, path: string, body?: Uint8Array): Promise<T>;
  bytes(method: string, path: string): Promise<{ bytes: Uint8Array; headers: Headers }>;
}

export function shardClient(name: string, address: string, authToken: string | null): ShardClient {
  const headers: Record<string, string> = authToken === null ? {} : { authorization: `Bearer ${authToken}` };
  const send = async (method: string, path: string, body?: Uint8Array): Promise<Response> => {
    try {
      return await fetch(`http://${address}${path}`, { method, headers, body, signal: AbortSignal.timeout(120_000) });
    } catch (err) {
      throw new Error(`${name} (${address}): ${method} ${path} failed: ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    name,
    address,
    async json<T>(method: string, path: string, body?: Uint8Array): Promise<T> {
      const res = await send(method, path, body);
      const text = await res.text();
      if (!res.ok) throw new ShardRequestError(name, res.status, text, `${method} ${path}`);
      return JSON.parse(text) as T;
    },
    async bytes(method: string, path: string) {
      const res = await send(method, path);
      if (!res.ok) throw new ShardRequestError(name, res.status, await res.text(), `${method} ${path}`);
      return { bytes: new Uint8Array(await res.arrayBuffer()), headers: res.headers };
    },
  };
}

export type { ClusterStatus, BucketReport } from '../../http/cluster-admin.js';
