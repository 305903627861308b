/**
 * `mcp-box serve`: runtime + supervisor + HTTP API on one port. Start-up reaps what dead owners
 * left, then starts the configured servers. The token comes from the config or is generated once
 * and kept in `<stateDir>/token` (mode 0600) — never printed.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/load-config.js';
import type { Logger } from '../log/logger.js';
import type { DockerRuntimeOptions } from '../runtime/docker/docker-runtime.js';
import type { ReapReport } from '../runtime/types.js';
import { createSupervisor, type Supervisor } from '../supervisor/supervisor.js';
import { once } from '../util/once.js';
import { StateStore } from '../state/state-store.js';
import { mountApi } from './api-routes.js';
import { EventLog } from './event-log.js';
import { McpSessionTable } from '../mcp-http/mcp-sessions.js';
import { HttpServer } from './http-server.js';
import { Metrics } from './metrics.js';

export { DEFAULT_PORT } from '../defaults.js';
import { DEFAULT_PORT, DEFAULT_RELAY_MAX_LINE_BYTES } from '../defaults.js';

export interface ServeHandle {
  supervisor: Supervisor;
  http: HttpServer;
  url: string;
  /** Where the generated token was written (null when the config sets one). */
  tokenFile: string | null;
  reaped: ReapReport;
  close(): Promise<void>;
}

export async function startServe(
  loaded: LoadedConfig,
  opts: { runtimeOptions?: DockerRuntimeOptions; log?: Pick<Logger, 'warn' | 'error'> } = {},
): Promise<ServeHandle> {
  const { config } = loaded;
  const { token, tokenFile } = resolveToken(config.server.token, loaded.stateDir);
  const metrics = new Metrics();
  const http = new HttpServer({
    host: config.server.host ?? '127.0.0.1',
    port: config.server.port ?? DEFAULT_PORT,
    token,
    ...(config.server.allowedHosts === undefined ? {} : { allowedHosts: config.server.allowedHosts }),
    maxPayload: (config.box.relay?.maxLineBytes ?? DEFAULT_RELAY_MAX_LINE_BYTES) + 64 * 1024,
    // By default a REST body may be as large as a relay message (maxPayload).
    ...(config.server.maxBodyBytes === undefined ? {} : { maxBodyBytes: config.server.maxBodyBytes }),
    ...(config.server.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: config.server.headersTimeoutMs }),
    onUnexpectedError: (err, where) => {
      metrics.onUnexpectedHttpError(where);
      const text =
        `unexpected error in an HTTP ${where} handler (answered 500, still serving): ` +
        `${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
      if (opts.log === undefined) process.emitWarning(text);
      else opts.log.error(text, { where });
    },
  });
  // Servers are added once the port listens, so their relay URLs are real from the start.
  // MCP_BOX_TAG labels every container and volume (mcp-box.tag) — for operators and test runs.
  const tag = process.env.MCP_BOX_TAG;
  // With persistent sessions the owner id is the state dir's, so the next serve adopts its sessions.
  const ownerId =
    config.box.persistentSessions === true
      ? createHash('sha256').update(loaded.stateDir).digest('hex').slice(0, 12)
      : undefined;
  const runtimeOptions: DockerRuntimeOptions = {
    ...(tag === undefined || tag === '' ? {} : { tag }),
    ...(ownerId === undefined ? {} : { ownerId }),
    ...opts.runtimeOptions,
  };
  // A full disk (or a removed state folder) must not stop serve: each failed write is dropped and
  // counted; the operator hears of it once a minute at most.
  let lastStateWarning = 0;
  const state = new StateStore(loaded.stateDir, undefined, {
    onWriteError: (err, path) => {
      metrics.onStateWriteError();
      if (Date.now() - lastStateWarning < 60_000) return;
      lastStateWarning = Date.now();
      const text =
        `cannot write the state file ${path} ` +
        `(records dropped, still serving; ${state.writeErrors} failed writes so far): ` +
        `${err instanceof Error ? err.message : String(err)}`;
      if (opts.log === undefined) process.emitWarning(text);
      else opts.log.error(text, { path });
    },
  });
  const supervisor = await createSupervisor(
    { ...config, mcpServers: {}, server: { ...config.server, token } },
    { configDir: loaded.configDir, http, runtimeOptions, state },
  );
  const events = new EventLog();
  supervisor.on('status', (e) => {
    metrics.onStatus(e);
    if (e.previous !== e.state) events.append('status', e);
  });
  supervisor.tasks.on('update', (t) => {
    metrics.onTask(t);
    events.append('task', t);
  });
  const mcpSessions = new McpSessionTable<StreamableHTTPServerTransport>();
  mountApi(http, {
    supervisor,
    events,
    metrics,
    mcpSessions,
    onWarning: (text) => (opts.log === undefined ? process.emitWarning(text) : opts.log.warn(text, { where: '/mcp' })),
  });
  await http.listen();
  const stopLoopMonitor = metrics.monitorEventLoop();
  const reaped = await supervisor.runtime.reap().catch(() => ({ removedContainers: [], removedVolumes: [], kept: [] }));
  for (const [name, def] of Object.entries(config.mcpServers)) supervisor.addParsed(name, def);
  const close = once(async () => {
    await mcpSessions.closeAll();
    await supervisor.close();
    await http.close();
    stopLoopMonitor();
  });
  return { supervisor, http, url: http.url, tokenFile, reaped, close };
}

function resolveToken(configured: string | undefined, stateDir: string): { token: string; tokenFile: string | null } {
  if (configured !== undefined) return { token: configured, tokenFile: null };
  const file = join(stateDir, 'token');
  if (existsSync(file)) {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing.length >= 16) return { token: existing, tokenFile: file };
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, tokenFile: file };
}

export { clientToken } from '../config/api-token.js';
