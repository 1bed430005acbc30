// Running HAProxy for a local cluster: master-worker mode in the foreground
// (`-W -db`), with a master CLI socket so a reload (after the bucket map
// changed) is one `reload` command and its end is observable: the worker that
// answers `show proc` changes, and the old one leaves once its connections are
// done (`option idle-close-on-response`, at most `hard-stop-after`).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

export function haproxyBinary(): string {
  for (const candidate of ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy']) if (existsSync(candidate)) return candidate;
  try {
    return execFileSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('haproxy is not installed (Debian: apt-get install -y haproxy)');
  }
}

/** Checks a configuration file with `haproxy -c`; throws with HAProxy's own message. */
export function checkHaproxyConfig(configPath: string): void {
  try {
    execFileSync(haproxyBinary(), ['-c', '-f', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer };
    throw new Error(`haproxy -c rejected ${configPath}:\n${e.stderr?.toString() ?? ''}${e.stdout?.toString() ?? ''}`, { cause: err });
  }
}

/** One command on the master CLI socket; resolves with its whole answer. */
export function masterCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let answer = '';
    const timer = setTimeout(() => socket.destroy(new Error(`haproxy master CLI: no answer to ${command} in ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${command}\n`)); // the master CLI answers and closes once our side is shut
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

export interface HaproxyWorkers {
  current: number[];
  old: number[];
}

/** Parses `show proc`: the current worker pids and the old ones still finishing their connections. */
export async function haproxyWorkers(socketPath: string): Promise<HaproxyWorkers> {
  const text = await masterCommand(socketPath, 'show proc');
  const workers: HaproxyWorkers = { current: [], old: [] };
  let section: 'master' | 'current' | 'old' = 'master';
  for (const line of text.split('\n')) {
    if (line.startsWith('# workers')) section = 'current';
    else if (line.startsWith('# old workers')) section = 'old';
    else if (line.startsWith('#')) continue;
    const m = /^(\d+)\s+worker\b/.exec(line);
    if (m !== null && section !== 'master') workers[section].push(Number(m[1]));
  }
  return workers;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reloads through the master socket and waits until a new worker serves (the old ones may still finish connections). */
export async function reloadHaproxy(socketPath: string, timeoutMs = 10_000): Promise<void> {
  const before = await haproxyWorkers(socketPath);
  await masterCommand(socketPath, 'reload').catch(() => {}); // the master re-executes itself and may drop the connection
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await haproxyWorkers(socketPath).catch(() => null);
    if (now !== null && now.current.length > 0 && now.current.every((pid) => !before.current.includes(pid))) return;
    if (Date.now() > deadline) throw new Error(`haproxy reload did not finish in ${timeoutMs} ms (show proc: ${JSON.stringify(now)})`);
    await sleep(50);
  }
}

/**
 * Waits until every old worker has exited, so no request routed by an old
 * map can still arrive anywhere; false if some remain after `timeoutMs`.
 */
export async function waitForOldWorkers(socketPath: string, timeoutMs = 40_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await haproxyWorkers(socketPath).catch(() => null);
    if (now !== null && now.old.length === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

export interface HaproxyProcess {
  proc: ChildProcess;
  masterSocket: string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Starts HAProxy in master-worker mode and resolves once its worker serves. */
export async function startHaproxy(configPath: string, masterSocket: string, onOutput: (line: string) => void): Promise<HaproxyProcess> {
  const proc = spawn(haproxyBinary(), ['-W', '-db', '-S', `${masterSocket},mode,600`, '-f', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        onOutput(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
  }
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (done) throw new Error(`haproxy exited at start-up (code ${await exited})`);
    const workers = existsSync(masterSocket) ? await haproxyWorkers(masterSocket).catch(() => null) : null;
    if (workers !== null && workers.current.length > 0) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error('haproxy did not start a worker within 10 s');
    }
    await sleep(50);
  }
  return {
    proc,
    masterSocket,
    exited,
    stop: async () => {
      if (done) return;
      proc.kill('SIGUSR1'); // soft stop: finish what is in flight
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
