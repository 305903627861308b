/**
 * The package's `createSupervisor`: the supervisor, plus — only when asked with `listen` — an HTTP
 * server of its own for the relay's WebSocket route, so platforms' own MCP clients can attach to a
 * process (`relay.url` in each server's status). Without `listen` no port is opened: the
 * supervisor's client reaches each process in process. (`serve` composes its API server, token and
 * runtime itself.) This module sits above both supervisor/ and server/, so neither imports the other.
 */
import { randomBytes } from 'node:crypto';
import { parseConfig } from './config/parse-config.js';
import { DEFAULT_RELAY_MAX_LINE_BYTES } from './defaults.js';
import { HttpServer } from './server/http-server.js';
import { createSupervisor as createCore, type Supervisor, type SupervisorOptions } from './supervisor/supervisor.js';

export interface CreateSupervisorOptions extends Omit<SupervisorOptions, 'http' | 'afterClose'> {
  /**
   * Open a relay port (WebSocket, bearer token `supervisor.token`): `true` for the config's
   * `server.host`/`server.port` (default 127.0.0.1 and a free port), or the address to use.
   */
  listen?: boolean | { host?: string; port?: number };
}

export async function createSupervisor(config: unknown, opts: CreateSupervisorOptions = {}): Promise<Supervisor> {
  const { listen, ...rest } = opts;
  if (listen === undefined || listen === false) return createCore(config, rest);
  const parsed = parseConfig(config);
  const address = listen === true ? {} : listen;
  const token = parsed.server.token ?? randomBytes(24).toString('base64url');
  const http = new HttpServer({
    host: address.host ?? parsed.server.host ?? '127.0.0.1',
    port: address.port ?? parsed.server.port ?? 0,
    token,
    ...(parsed.server.allowedHosts === undefined ? {} : { allowedHosts: parsed.server.allowedHosts }),
    maxPayload: (parsed.box.relay?.maxLineBytes ?? DEFAULT_RELAY_MAX_LINE_BYTES) + 64 * 1024,
  });
  await http.listen();
  try {
    // The port is the supervisor's: it closes with it.
    const supervisor = await createCore(
      { ...parsed, server: { ...parsed.server, token } },
      { ...rest, http, afterClose: () => http.close() },
    );
    return supervisor;
  } catch (err) {
    await http.close();
    throw err;
  }
}
