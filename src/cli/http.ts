// The CLI's HTTP helpers: the server URL and token options every command
// shares, and JSON requests that turn poolq's error replies into one line.

export interface ServerOptions {
  url: string;
  token?: string;
}

export class CliError extends Error {}

export function headersFor(options: ServerOptions, extra: Record<string, string> = {}): Record<string, string> {
  return options.token === undefined ? extra : { ...extra, authorization: `Bearer ${options.token}` };
}

export function urlOf(options: ServerOptions, path: string): string {
  return new URL(path, options.url.endsWith('/') ? options.url : `${options.url}/`).toString();
}

async function failure(res: Response): Promise<CliError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error: string; message: string };
    return new CliError(`${res.status} ${body.error}: ${body.message}`);
  } catch {
    return new CliError(`${res.status}: ${text.slice(0, 200)}`);
  }
}

export async function getText(options: ServerOptions, path: string): Promise<string> {
  const res = await fetch(urlOf(options, path), { headers: headersFor(options) });
  if (!res.ok) throw await failure(res);
  return res.text();
}

export async function getJson<T>(options: ServerOptions, path: string): Promise<T> {
  return JSON.parse(await getText(options, path)) as T;
}

export async function sendBody<T>(options: ServerOptions, path: string, init: RequestInit & { duplex?: 'half' }): Promise<T> {
  const res = await fetch(urlOf(options, path), { ...init, headers: headersFor(options, init.headers as Record<string, string>) });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}
