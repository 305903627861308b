/** The CLI's client of a running `serve`: where it is, the token, JSON requests, error envelopes. */
import { existsSync } from 'node:fs';
import { BoxError, type ErrorCode, type Phase } from '../errors/box-error.js';
import { loadConfig } from '../config/load-config.js';
import { clientToken, DEFAULT_PORT } from '../server/serve.js';

export interface ClientOptions {
  url?: string | undefined;
  token?: string | undefined;
  config?: string | undefined;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  static from(opts: ClientOptions): ApiClient {
    const configPath = opts.config ?? (existsSync('mcp-box.json') ? 'mcp-box.json' : undefined);
    const loaded = configPath === undefined ? null : loadConfig(configPath);
    const host = loaded?.config.server.host ?? '127.0.0.1';
    const port = loaded?.config.server.port ?? DEFAULT_PORT;
    const baseUrl = (opts.url ?? process.env.MCP_BOX_URL ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`).replace(/\/$/, '');
    const token = clientToken({ token: opts.token, configToken: loaded?.config.server.token, stateDir: loaded?.stateDir });
    if (token === null) {
      throw new BoxError('INVALID_ARGUMENT', 'config', 'No API token: pass --token, set MCP_BOX_TOKEN, or run from the folder of the config (its .mcp-box/token is read)');
    }
    return new ApiClient(baseUrl, token);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new BoxError('ENGINE_UNREACHABLE', 'config', `mcp-box serve does not answer at ${this.baseUrl}: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    const parsed = text === '' ? {} : (JSON.parse(text) as unknown);
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string; phase?: string; details?: Record<string, unknown> } }).error ?? {};
      throw new BoxError((e.code ?? 'ENGINE_ERROR') as ErrorCode, (e.phase ?? 'config') as Phase, e.message ?? `HTTP ${res.status}`, { details: { status: res.status, ...e.details } });
    }
    return parsed as T;
  }
}
