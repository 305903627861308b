/** Runs the real CLI `node dist/cli.js serve --config FILE` as a child process, as a user would. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import { eventually } from './runtime.js';

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Every serve started through here, so a suite can stop them all in afterAll. */
export const startedServes: ChildProcess[] = [];

export async function startServeProcess(configPath: string, env: Record<string, string> = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--config', configPath], {
    env: { ...process.env, MCP_BOX_TAG: inject('runTag'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  startedServes.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const url = await eventually(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], 30_000);
  return { child, url, output: () => out };
}

/** SIGTERM to every serve still running (each removes its own sessions), and waits for them. */
export async function stopAllServes(): Promise<void> {
  for (const child of startedServes.splice(0).filter((c) => c.exitCode === null && c.signalCode === null)) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

export type ServeApi = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<{ status: number; json: Record<string, unknown> }>;

/** An HTTP API caller for a serve whose URL and token are known once it runs (hence the getters). */
export function serveApi(url: () => string, token: () => string): ServeApi {
  return async (method, path, body, headers = {}) => {
    const res = await fetch(`${url()}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token()}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      json: (text.startsWith('{') ? JSON.parse(text) : { text }) as Record<string, unknown>,
    };
  };
}

/** Runs the built CLI (`dist/cli.js`) in `cwd` as an operator would, and returns its exit code and output. */
export function runCli(args: string[], cwd: string): { code: number; out: string } {
  try {
    return {
      code: 0,
      out: execFileSync(process.execPath, [`${process.cwd()}/dist/cli.js`, ...args], {
        cwd,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
}
