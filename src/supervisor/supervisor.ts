/**
 * `createSupervisor(config)`: the library entry point. It owns the runtime, the relay's HTTP/WS
 * server, the task registry and one ManagedServer per configured server.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { DEFAULT_DISK_CHECK_SEC, DEFAULT_RELAY_MAX_LINE_BYTES, DEFAULT_STATE_DIR } from '../defaults.js';
import { parseConfig, parseServerDefinition } from '../config/parse-config.js';
import { assertServerName } from '../config/server-name.js';
import { resolveServer } from '../config/resolve-server.js';
import type { McpBoxConfig, ServerDefinition } from '../config/schema.js';
import { BoxError } from '../errors/box-error.js';
import { RelayHub, type RelayUpgradeRouter } from '../relay/relay-hub.js';
import { capabilityPath } from '../util/capability-url.js';
import { checkFolderRules, type FolderRules } from '../workspace/host-policy.js';
import { createDockerRuntime, type DockerRuntimeOptions } from '../runtime/docker/docker-runtime.js';
import type { Runtime } from '../runtime/types.js';
import { TaskRegistry } from '../tasks/task-registry.js';
import { once } from '../util/once.js';
import { DiskWatch } from './disk-watch.js';
import type { DurableState } from './durable-state.js';
import { ManagedServer } from './managed-server.js';
import { Redactor, secretValues, urlCredentials } from './redactor.js';
import type { LogLine } from './server-log.js';
import type { ListChangedEvent, ServerStatus, ServerView, StatusEvent } from './types.js';

const HISTORY_LIMIT = 500;

export interface SupervisorOptions {
  /** Folder relative paths in the config resolve against (the config file's folder). Default: cwd. */
  configDir?: string;
  /** A runtime to use instead of a Docker runtime made from `runtimeOptions`. */
  runtime?: Runtime;
  runtimeOptions?: DockerRuntimeOptions;
  /**
   * Where the relay's WebSocket route is served, for clients other than the supervisor's own
   * (serve passes its API server; `createSupervisor` from the package opens one with `listen`).
   * Without it no port is open: the supervisor's client reaches each process in process.
   */
  http?: RelayEndpoint;
  /** Runs at the end of `close()` (what the caller opened for this supervisor, e.g. its relay port). */
  afterClose?: () => Promise<void>;
  /** Log lines kept per server (default 2000). */
  logCapacity?: number;
  /** Durable state: logs, history, failures and tasks survive a restart (a task cut off by it: INTERRUPTED). */
  state?: DurableState;
}

/** An HTTP server's relay route and its base URL (http://host:port). */
export interface RelayEndpoint extends RelayUpgradeRouter {
  readonly url: string;
}

/** A supervisor with no port of its own (see `SupervisorOptions.http`). */
export async function createSupervisor(
  config: McpBoxConfig | unknown,
  opts: SupervisorOptions = {},
): Promise<Supervisor> {
  const parsed = parseConfig(config);
  const supervisor = new Supervisor(parsed, opts);
  for (const [name, def] of Object.entries(parsed.mcpServers)) supervisor.addParsed(name, def);
  return supervisor;
}

export class Supervisor extends EventEmitter<{ status: [StatusEvent]; listChanged: [ListChangedEvent] }> {
  readonly tasks: TaskRegistry;
  readonly relays: RelayHub;
  readonly runtime: Runtime;
  /** Where external clients reach the relay, or null (library mode without `listen`). */
  readonly http: RelayEndpoint | null;
  readonly token: string;
  private readonly config: McpBoxConfig;
  private readonly opts: SupervisorOptions;
  private readonly servers = new Map<string, ManagedServer>();
  /** The folder of each server that has one (no two servers' folders overlap). */
  private readonly folders = new Map<string, string>();
  private readonly histories = new Map<string, StatusEvent[]>();
  private readonly redactor: Redactor;
  private readonly diskWatch: DiskWatch;
  private closing = false;

  constructor(config: McpBoxConfig, opts: SupervisorOptions) {
    super();
    this.config = config;
    this.opts = opts;
    this.token = config.server.token ?? randomBytes(24).toString('base64url');
    this.redactor = new Redactor([this.token]);
    this.tasks = new TaskRegistry({ redact: (t) => this.redactor.redact(t) });
    const store = opts.state;
    if (store !== undefined) {
      // Tasks cut off by the end of an earlier run come back failed (INTERRUPTED): persist that.
      for (const t of this.tasks.restore(store.loadTasks())) store.appendTask(t);
      this.tasks.on('started', (t) => store.appendTask(t));
      this.tasks.on('update', (t) => {
        if (t.state !== 'working') store.appendTask(t);
      });
    }
    const relay = config.box.relay ?? {};
    const maxLineBytes = relay.maxLineBytes ?? DEFAULT_RELAY_MAX_LINE_BYTES;
    this.relays = new RelayHub({
      maxLineBytes,
      ...(relay.heartbeatSec === undefined ? {} : { heartbeatMs: relay.heartbeatSec * 1000 }),
      ...(relay.detachedBufferBytes === undefined ? {} : { detachedBufferBytes: relay.detachedBufferBytes }),
    });
    this.runtime = opts.runtime ?? createDockerRuntime(opts.runtimeOptions ?? {});
    this.http = opts.http ?? null;
    if (this.http !== null) this.relays.mount(this.http);
    this.diskWatch = new DiskWatch({
      intervalMs: (config.box.diskCheckSec ?? DEFAULT_DISK_CHECK_SEC) * 1000,
      servers: () => this.servers.values(),
      onError: (name, err) =>
        this.servers
          .get(name)
          ?.log.line(
            'lifecycle',
            `could not measure the disk use: ${err instanceof Error ? err.message : String(err)}`,
          ),
    });
    this.diskWatch.start();
  }

  /**
   * Adds a server and starts it in the background; returns its first status. `inferFolder: false`
   * (servers added through the HTTP API): no folder from the command line, only an explicit
   * box.hostPath.
   */
  add(name: string, def: ServerDefinition | unknown, opts: { inferFolder?: boolean } = {}): ServerStatus {
    return this.addParsed(name, parseServerDefinition(def, name), opts);
  }

  /** @internal */
  addParsed(name: string, def: ServerDefinition, opts: { inferFolder?: boolean } = {}): ServerStatus {
    if (this.closing) throw new BoxError('CONFLICT', 'config', 'The supervisor is closing');
    assertServerName(name);
    if (this.servers.has(name))
      throw new BoxError('CONFLICT', 'config', `A server named ${JSON.stringify(name)} already exists`);
    const configDir = this.opts.configDir ?? process.cwd();
    const spec = resolveServer(name, def, this.config.box, configDir, opts);
    if (spec.hostPath !== undefined && spec.hostPath !== '') {
      checkFolderRules(spec.hostPath, this.folderRules(name, spec.allowedRoots));
      this.folders.set(name, spec.hostPath);
    }
    this.redactor.add([
      ...secretValues(spec.env, spec.secretEnv),
      ...urlCredentials([spec.install.indexUrl, spec.install.npmRegistry, ...(spec.install.extraIndexUrls ?? [])]),
    ]);
    const state = this.opts.state;
    const earlier = state?.loadServer(name);
    if (earlier !== undefined && earlier.history.length > 0)
      this.histories.set(name, earlier.history.slice(-HISTORY_LIMIT));
    const server = new ManagedServer(spec, {
      runtime: this.runtime,
      tasks: this.tasks,
      relays: this.relays,
      boxEnabled: this.config.box.enabled !== false,
      persistentSessions: this.config.box.persistentSessions === true,
      configDir: this.opts.configDir ?? process.cwd(),
      listChanged: (server, kind) => this.emit('listChanged', { name: server, kind }),
      relayUrl: (session, process) => {
        const capability = this.relays.capability(session.info.name, process);
        if (this.http === null || capability === undefined) return null;
        return `${this.http.url.replace(/^http/, 'ws')}${capabilityPath(capability)}`;
      },
      connectTransport: async (session, process) => {
        const relay = this.relays.get(session.info.name, process);
        if (relay === undefined)
          throw new BoxError(
            'RELAY_CONNECT_FAILED',
            'relay_connect',
            `No relay is registered for "${process}" in ${session.info.name}`,
          );
        // In process: no socket, no token; it takes the process over from a client that holds it alone, and shares
        // it with the clients that asked to share.
        const transport = relay.connectInProcess({ takeover: true, shared: true });
        await transport.connect();
        return transport;
      },
      secrets: [this.token],
      logCapacity: this.opts.logCapacity ?? 2000,
      emit: (event) => this.record(event),
      folderRules: (allowedRoots) => this.folderRules(name, allowedRoots),
      ...(state === undefined ? {} : { onLogLine: (line: LogLine) => state.appendLog(name, line) }),
      ...(earlier === undefined ? {} : { seed: { logs: earlier.logs, lastFailure: earlier.lastFailure } }),
    });
    this.servers.set(name, server);
    server.start();
    return server.status();
  }

  async remove(name: string): Promise<void> {
    const server = this.server(name);
    this.servers.delete(name);
    this.folders.delete(name);
    await server.remove();
    this.histories.delete(name);
    this.opts.state?.forgetServer(name);
  }

  async restart(name: string): Promise<ServerStatus> {
    const server = this.server(name);
    await server.restart();
    return server.status();
  }

  async stop(name: string): Promise<ServerStatus> {
    const server = this.server(name);
    await server.stop();
    return server.status();
  }

  /**
   * A new capability for the server's relay URL: the old URL is refused from now on, and a client that connected
   * through it is closed (4003). The process keeps running.
   */
  revokeRelay(name: string): ServerStatus {
    const server = this.server(name);
    const { session } = server.status();
    if (session === undefined || this.relays.revoke(session, name) === undefined) {
      throw new BoxError('PROCESS_NOT_RUNNING', 'relay_connect', `"${name}" has no running process, so no relay URL`, {
        details: { state: server.status().state },
      });
    }
    return server.status();
  }

  start(name: string): ServerStatus {
    const server = this.server(name);
    server.start();
    return server.status();
  }

  get(name: string): ServerView {
    const server = this.server(name);
    const client = server.client;
    return { ...server.status(), ...(client === undefined ? {} : { client }) };
  }

  has(name: string): boolean {
    return this.servers.has(name);
  }

  list(): ServerStatus[] {
    return [...this.servers.values()].map((s) => s.status());
  }

  listTools(name: string, opts: { signal?: AbortSignal } = {}): Promise<Tool[]> {
    return this.server(name).listTools(opts);
  }

  callTool(
    name: string,
    tool: string,
    args: Record<string, unknown> = {},
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<CallToolResult> {
    return this.server(name).callTool(tool, args, opts);
  }

  logs(name: string, after = 0, limit = 200): { lines: LogLine[]; next: number; first: number } {
    return this.server(name).log.read(after, limit);
  }

  /** Stops every server (escalation), deletes their workspaces, closes the relay and the runtime. */
  readonly close = once(async (): Promise<void> => {
    this.closing = true;
    await this.diskWatch.close();
    await Promise.allSettled([...this.servers.values()].map((s) => s.remove()));
    this.servers.clear();
    this.relays.closeAll('mcp-box is shutting down');
    this.tasks.close();
    await this.runtime.close();
    this.opts.state?.flush();
    await this.opts.afterClose?.();
  });

  /** State transitions of a server, oldest first (bounded), with the phase and cause of failures. */
  history(name: string): StatusEvent[] {
    this.server(name);
    return [...(this.histories.get(name) ?? [])];
  }

  private record(event: StatusEvent): void {
    if (event.previous !== event.state) {
      const list = this.histories.get(event.name) ?? [];
      list.push(event);
      if (list.length > HISTORY_LIMIT) list.splice(0, list.length - HISTORY_LIMIT);
      this.histories.set(event.name, list);
      this.opts.state?.appendHistory(event.name, event);
      if (event.error !== undefined && (event.state === 'backoff' || event.state === 'failed'))
        this.opts.state?.appendFailure(event.name, event.error);
    }
    this.emit('status', event);
  }

  /** What server `name`'s folder may not be, hold or overlap (checked when added and at every stage). */
  private folderRules(name: string, allowedRoots: string[]): FolderRules {
    const configDir = this.opts.configDir ?? process.cwd();
    return {
      allowedRoots,
      protectedFolders: [
        { path: configDir, what: 'the config folder' },
        {
          path: this.opts.state?.dir ?? resolve(configDir, this.config.state.dir ?? DEFAULT_STATE_DIR),
          what: 'the state folder',
        },
      ],
      otherServers: [...this.folders]
        .filter(([other]) => other !== name)
        .map(([other, folder]) => ({ name: other, folder })),
    };
  }

  private server(name: string): ManagedServer {
    const server = this.servers.get(name);
    if (server === undefined) throw new BoxError('NOT_FOUND', 'config', `No server named ${JSON.stringify(name)}`);
    return server;
  }
}
