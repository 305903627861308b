/**
 * The CLI's client of a running `serve`: where it is, the token, JSON requests, error envelopes.
 * It loads neither the engine client nor the supervisor (see cli-modules.test.ts).
 */
import { existsSync } from 'node:fs';
import { clientToken } from '../config/api-token.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../defaults.js';
import { loadConfig } from '../config/load-config.js';
import { BoxError, describeError, type ErrorCode, type Phase } from '../errors/box-error.js';

export interface ClientOptions {
  url?: string | undefined;
  token?: string | undefined;
  config?: string | undefined;
}

/** How to start serve, said wherever the CLI finds it is not running. */
export const START_SERVE_HINT =
  'start it with `mcp-box serve --config FILE` (or `npm start`), or point --url / $MCP_BOX_URL at the serve that runs';

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  static from(opts: ClientOptions): ApiClient {
    const configPath = opts.config ?? (existsSync('mcp-box.json') ? 'mcp-box.json' : undefined);
    const loaded = configPath === undefined ? null : loadConfig(configPath);
    const host = loaded?.config.server.host ?? DEFAULT_HOST;
    const port = loaded?.config.server.port ?? DEFAULT_PORT;
    const baseUrl = (
      opts.url ??
      process.env.MCP_BOX_URL ??
      `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`
    ).replace(/\/$/, '');
    const token = clientToken({
      token: opts.token,
      configToken: loaded?.config.server.token,
      stateDir: loaded?.stateDir,
    });
    if (token === null) {
      throw new BoxError(
        'INVALID_ARGUMENT',
        'request',
        'No API token: pass --token, set MCP_BOX_TOKEN, ' +
          'or run from the folder of the config (its .mcp-box/token is read)',
      );
    }
    return new ApiClient(baseUrl, token);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw serveUnreachable(this.baseUrl, err);
    }
    const text = await res.text();
    const parsed = text === '' ? {} : (JSON.parse(text) as unknown);
    if (!res.ok) {
      const e =
        (parsed as { error?: { code?: string; message?: string; phase?: string; details?: Record<string, unknown> } })
          .error ?? {};
      throw new BoxError(
        (e.code ?? 'ENGINE_ERROR') as ErrorCode,
        (e.phase ?? 'request') as Phase,
        e.message ?? `HTTP ${res.status}`,
        { details: { status: res.status, ...e.details } },
      );
    }
    return parsed as T;
  }
}

/**
 * fetch() failed before any answer: nothing listens at the URL (connection refused: serve is not
 * running), or the host does not resolve or answer. Never the engine: serve may be down while
 * Docker is fine.
 */
export function serveUnreachable(baseUrl: string, err: unknown): BoxError {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const why =
    code === 'ECONNREFUSED'
      ? `mcp-box serve is not running at ${baseUrl} (connection refused)`
      : `mcp-box serve does not answer at ${baseUrl}: ` +
        `${typeof cause?.message === 'string' ? cause.message : describeError(err)}`;
  return new BoxError('SERVE_UNREACHABLE', 'request', `${why}; ${START_SERVE_HINT}`, {
    cause: err,
    details: { url: baseUrl, ...(code === undefined ? {} : { errno: code }) },
  });
}
