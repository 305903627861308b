/** `mcp-box serve`: the supervisor and its HTTP API until a stop signal (loaded only when run). */
import { SHUTDOWN_GRACE_MS } from '../defaults.js';
import { loadConfig } from '../config/load-config.js';
import { createLogger, parseLogFormat, parseLogLevel } from '../log/logger.js';
import { startServe } from '../server/serve.js';
import { MCP_BOX_VERSION } from '../version.js';
import type { CommandInput } from './command-table.js';
import type { serveOptions } from './command-options.js';
import { EXIT } from './exit-codes.js';

/** SIGHUP too: a closed terminal must stop serve like Ctrl-C does, not kill it with its sessions. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

export async function serve({ values }: CommandInput<typeof serveOptions>): Promise<number> {
  const log = createLogger({ format: parseLogFormat(values['log-format']), level: parseLogLevel(values['log-level']) });
  const loaded = loadConfig(values.config);
  const handle = await startServe(loaded, { log });
  log.info(
    `mcp-box ${MCP_BOX_VERSION} serving ${Object.keys(loaded.config.mcpServers).length} server(s) from ${loaded.path}`,
    { config: loaded.path },
  );
  log.info(`listening on ${handle.url} (API, relay and events)`, { url: handle.url });
  log.info(
    handle.tokenFile === null
      ? 'API token: the one in the config (server.token)'
      : `API token: in ${handle.tokenFile} (mode 0600)`,
  );
  if (handle.reaped.removedContainers.length > 0)
    log.info(`reaped ${handle.reaped.removedContainers.length} container(s) left by dead supervisors`, {
      containers: handle.reaped.removedContainers,
    });
  handle.supervisor.on('status', (e) => {
    if (e.previous === e.state) {
      if (e.phase !== undefined) log.debug(`${e.name}: phase ${e.phase}`, { server: e.name, phase: e.phase });
      return;
    }
    const failed = e.error !== undefined && (e.state === 'backoff' || e.state === 'failed');
    const why = failed ? ` — ${e.error?.phase}/${e.error?.code}: ${e.error?.message.split('\n')[0] ?? ''}` : '';
    const fields = {
      server: e.name,
      state: e.state,
      previous: e.previous,
      ...(failed ? { phase: e.error?.phase, code: e.error?.code } : {}),
    };
    (failed ? log.warn : log.info)(`${e.name}: ${e.previous ?? '-'} → ${e.state}${why}`, fields);
  });
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      // Repeats are normal (`kill %1` signals the job, then npm forwards it to serve once more), and
      // must not fall through to the default action, which would exit without removing the sessions.
      if (stopping) return log.info(`${signal}: already stopping`, { signal });
      stopping = true;
      log.info(`${signal}: stopping servers (grace ${SHUTDOWN_GRACE_MS / 1000} s)`, { signal });
      const timer = setTimeout(() => {
        log.error('shutdown grace exceeded; exiting');
        process.exit(EXIT.failed);
      }, SHUTDOWN_GRACE_MS);
      timer.unref();
      void handle.close().finally(resolve);
    };
    for (const signal of STOP_SIGNALS) process.on(signal, stop);
  });
  log.info('stopped');
  return EXIT.ok;
}
