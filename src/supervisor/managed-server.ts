/**
 * One supervised server: its lifecycle loop through the phases, its health watch, restarts by
 * policy, tool calls, and a failure record for everything that goes wrong.
 *
 *   box_unavailable → session_create → workspace_stage → dep_install → process_start
 *   → relay_connect → mcp_init → ready → (runtime | tool_call failures) → backoff → …
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedServer } from '../config/resolve-server.js';
import { BoxError, isBoxError, SERVER_PHASES, type ErrorCode as BoxErrorCode, type ServerPhase } from '../errors/box-error.js';
import { BASE_PATH, installDependencies, stageWorkspace } from '../install/prepare-workspace.js';
import { WsClientTransport } from '../mcp/ws-client-transport.js';
import type { RelayHub } from '../relay/relay-hub.js';
import { relayPath } from '../relay/relay-hub.js';
import { CLOSE_PROCESS_EXITED, CLOSE_STDOUT_CLOSED } from '../relay/close-codes.js';
import type { StdioRelay } from '../relay/stdio-relay.js';
import type { DiskUsage, Identity, ManagedProcess, ProcessExit, Runtime, Session } from '../runtime/types.js';
import type { TaskRegistry } from '../tasks/task-registry.js';
import { delay, linkedSignal } from '../util/abort.js';
import { MCP_BOX_VERSION } from '../version.js';
import { resolveHostFolder, rewriteForContainer } from '../workspace/host-folder.js';
import { checkFolderRules, checkHostPolicy, type FolderRules } from '../workspace/host-policy.js';
import type { DiskTarget, DiskWatched } from './disk-watch.js';
import { quotaBreach } from './disk-watch.js';
import { Redactor, secretValues, urlCredentials } from './redactor.js';
import { RepeatedFailures } from './repeated-failure.js';
import { RestartPolicy } from './restart-policy.js';
import { ServerLog, type LogLine } from './server-log.js';
import type { FailureRecord, ServerState, ServerStatus, StatusEvent } from './types.js';

const INIT_ATTEMPT_MS = 15_000;
const RELAY_RECONNECT_ATTEMPTS = 3;
const EARLY_EXIT_MS = 2000;
const EXIT_SETTLE_MS = 5000;
/** Longer than a signalled exit takes to classify (the container-death settle of the runtime). */
const QUOTA_EXIT_SETTLE_MS = 3000;
const STDERR_TAIL_LINES = 40;
const STDERR_TAIL_BYTES = 16 * 1024;
/** How long a failed start phase waits for its session to show a death it may have caused. */
const SESSION_DEATH_SETTLE_MS = 1500;
/** Failures of a command run in the session: the ones a dying container causes. */
const EXEC_FAILURES = new Set<BoxErrorCode>(['STAGE_FAILED', 'INSTALL_FAILED', 'EXEC_FAILED', 'EXEC_TIMEOUT', 'PROCESS_START_FAILED', 'CONFLICT', 'NOT_FOUND', 'ENGINE_ERROR']);

export interface ServerHost {
  runtime: Runtime;
  tasks: TaskRegistry;
  relays: RelayHub;
  boxEnabled: boolean;
  /** Sessions outlive the supervisor (box.persistentSessions). */
  persistentSessions: boolean;
  configDir: string;
  /** ws://host:port of the relay. */
  relayBaseUrl(): string;
  /** The token the supervisor's own client presents to the relay. */
  relayClientToken: string;
  secrets: string[];
  logCapacity: number;
  emit(event: StatusEvent): void;
  /** The folder rules of this server now (config/state folder, the other servers' folders). */
  folderRules?: (allowedRoots: string[]) => FolderRules;
  /** Every log line as it is written (durable state). */
  onLogLine?: (line: LogLine) => void;
  /** What this server left in an earlier run: its log and last failure. */
  seed?: { logs: LogLine[]; lastFailure: FailureRecord | undefined };
}

/** Why an attempt ended. */
interface Failure {
  error: BoxError;
  exit?: ProcessExit;
  /** Failures that do not spend the restart budget (the engine was away). */
  counts?: boolean;
}

interface Attempt {
  session: Session;
  proc: ManagedProcess | null;
  relay: StdioRelay | null;
  client: Client | null;
  transport: WsClientTransport | null;
  startedAt: number;
}

const NON_RETRYABLE = new Set<BoxErrorCode>(['BOX_DISABLED', 'HOST_PATH_DENIED', 'INVALID_ARGUMENT', 'INVALID_REQUIREMENT', 'STAGE_LIMIT_EXCEEDED', 'IMAGE_MISSING', 'HARDENING_CHECK_FAILED']);

export class ManagedServer implements DiskWatched {
  readonly name: string;
  readonly log: ServerLog;
  private spec: ResolvedServer;
  private readonly host: ServerHost;
  private readonly policy: RestartPolicy;
  private readonly redactor: Redactor;
  private state: ServerState = 'pending';
  private phase: ServerPhase | undefined;
  private error: FailureRecord | undefined;
  private restarts = 0;
  private attempt: Attempt | null = null;
  private identity: { session: Session; identity: Identity } | null = null;
  private loop: Promise<void> | null = null;
  private loopController: AbortController | null = null;
  private watchResolve: ((f: Failure | null) => void) | null = null;
  private readyAt: number | undefined;
  private toolsCount: number | undefined;
  private installTaskId: string | undefined;
  private consecutiveTimeouts = 0;
  private lastExit: ProcessExit | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private readonly repeated = new RepeatedFailures();
  /** The session whose death this server was last charged for: one death spends the budget once. */
  private chargedDeath: string | null = null;
  /** The last failure that spent the budget was a session death (refunded if the engine turns out gone). */
  private deathCharged = false;

  constructor(spec: ResolvedServer, host: ServerHost) {
    this.spec = spec;
    this.name = spec.name;
    this.host = host;
    this.policy = new RestartPolicy(spec.restart);
    this.redactor = new Redactor([...secretValues(spec.env, spec.secretEnv), ...urlCredentials([spec.install.indexUrl, spec.install.npmRegistry, ...(spec.install.extraIndexUrls ?? [])]), ...host.secrets]);
    this.log = new ServerLog(host.logCapacity, (t) => this.redactor.redact(t), host.onLogLine, () => this.redactor.maxLength);
    if (host.seed !== undefined) {
      this.log.seed(host.seed.logs);
      this.error = host.seed.lastFailure;
    }
  }

  get client(): Client | undefined {
    return this.state === 'ready' ? (this.attempt?.client ?? undefined) : undefined;
  }

  status(): ServerStatus {
    const a = this.attempt;
    return {
      name: this.name,
      state: this.state,
      ...(this.phase === undefined ? {} : { phase: this.phase }),
      ...(this.error === undefined ? {} : { error: { ...this.error } }),
      relay: a?.proc != null ? { url: this.relayUrl(a.session), subprotocol: 'mcp' } : null,
      clientMode: this.spec.client,
      ...(a === null ? {} : { session: a.session.info.name }),
      ...(this.identity === null ? {} : { uid: this.identity.identity.uid, workspace: this.identity.identity.workspace }),
      ...(a?.proc != null && a.proc.running ? { pid: a.proc.pid, startedAt: a.proc.startedAt } : {}),
      ...(this.state === 'ready' && this.readyAt !== undefined ? { readyAt: new Date(this.readyAt).toISOString() } : {}),
      restarts: this.restarts,
      ...(this.toolsCount === undefined ? {} : { tools: this.toolsCount }),
      ...(this.installTaskId === undefined ? {} : { installTaskId: this.installTaskId }),
    };
  }

  /** Starts the lifecycle loop (no-op while it runs). */
  start(): void {
    if (this.loop !== null) return;
    if (this.spec.disabled) {
      this.setState('stopped');
      return;
    }
    const controller = new AbortController();
    this.loopController = controller;
    this.loop = this.runLoop(controller.signal).finally(() => {
      if (this.loopController === controller) {
        this.loop = null;
        this.loopController = null;
      }
    });
  }

  /** Stops the process and the loop; the workspace and installed dependencies stay. */
  async stop(reason = 'stopped on request'): Promise<void> {
    const loop = this.loop;
    this.loopController?.abort(new BoxError('ABORTED', 'runtime', reason));
    this.watchResolve?.(null);
    await loop;
    await this.teardown(reason);
    this.setState('stopped');
    this.phase = undefined;
  }

  async restart(): Promise<void> {
    await this.stop('restarting on request');
    this.policy.reset();
    this.repeated.reset();
    this.error = undefined;
    this.restarts++;
    this.start();
  }

  /** Stops and deletes the server's workspace and identity (the shared session stays). */
  async remove(): Promise<void> {
    await this.stop('removed');
    await this.clearFolders();
  }

  /** Deletes the identity and its folders: the next start stages and installs into new ones. */
  private async clearFolders(): Promise<void> {
    const held = this.identity;
    this.identity = null;
    if (held !== null) await held.session.releaseIdentity(held.identity).catch((err: unknown) => this.log.line('lifecycle', `failed to release the workspace: ${String(err)}`));
  }

  async listTools(opts: { signal?: AbortSignal } = {}): Promise<Tool[]> {
    const client = this.readyClient('tools/list');
    const result = await this.guardCall('tools/list', () => client.listTools(undefined, { timeout: this.spec.toolTimeoutMs, ...(opts.signal === undefined ? {} : { signal: opts.signal }) }));
    this.toolsCount = result.tools.length;
    return result.tools;
  }

  async callTool(tool: string, args: Record<string, unknown> = {}, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<CallToolResult> {
    const client = this.readyClient(`tools/call ${tool}`);
    const timeout = opts.timeoutMs ?? this.spec.toolTimeoutMs;
    const result = await this.guardCall(`tool "${tool}"`, () => client.callTool({ name: tool, arguments: args }, undefined, { timeout, ...(opts.signal === undefined ? {} : { signal: opts.signal }) }), timeout);
    this.consecutiveTimeouts = 0;
    return result as CallToolResult;
  }

  diskTarget(): DiskTarget | null {
    const proc = this.attempt?.proc;
    if (this.state !== 'ready' || proc == null || !proc.running || this.identity === null) return null;
    return { session: this.identity.session, identity: this.identity.identity, quota: this.spec.disk };
  }

  /** Its folders hold more than `box.diskMb` / `box.diskFiles`: stopped, and cleared before the next start. */
  onDiskOverQuota(usage: DiskUsage, target: DiskTarget): void {
    const attempt = this.attempt;
    const current = (): boolean => this.state === 'ready' && this.attempt === attempt && this.identity?.identity === target.identity;
    if (!current()) return;
    const mib = (bytes: number): number => Math.round(bytes / 1024 / 1024);
    const what =
      quotaBreach(usage, target.quota) === 'entries'
        ? `holds ${usage.entries} files, above its quota of ${target.quota.maxEntries} (box.diskFiles)`
        : `uses ${mib(usage.bytes)} MiB of disk, above its quota of ${mib(target.quota.maxBytes)} MiB (box.diskMb)`;
    const error = new BoxError('DISK_QUOTA_EXCEEDED', 'runtime', `"${this.name}" ${what}; stopped, and its folders are cleared before the next start`, {
      details: { usage: { ...usage }, quota: { ...target.quota } },
    });
    void (async () => {
      // A writer the file cap just killed (SIGXFSZ) is ending: its exit is the better record.
      if ((await this.exitSoon(attempt?.proc, QUOTA_EXIT_SETTLE_MS)) !== null || !current()) return;
      this.watchResolve?.({ error });
    })();
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────

  private async runLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const startedAt = Date.now();
      let failure: Failure | null;
      let wasReady = false;
      try {
        await this.startAttempt(signal);
        wasReady = true;
        failure = await this.watch();
      } catch (err) {
        failure = signal.aborted ? null : await this.sessionDeathOr(this.toFailure(err));
      }
      if (failure === null || signal.aborted) return;
      await this.teardown(failure.error.message);
      if (failure.error.code === 'DISK_QUOTA_EXCEEDED') await this.clearFolders();
      const counts = failure.counts !== false && this.chargeSessionDeath(failure.error);
      // A session death followed by an unreachable engine was the engine stopping, not a fault of the server's.
      if (failure.error.code === 'ENGINE_UNREACHABLE' && this.deathCharged) this.policy.refundLast();
      this.deathCharged = counts && (failure.error.code === 'CONTAINER_DIED' || failure.error.code === 'SESSION_DEAD');
      let retryable = !NON_RETRYABLE.has(failure.error.code);
      let record = this.record(failure, { retryable, attempt: 0, maxAttempts: 0, startedAt });
      // A start attempt that failed exactly as the one before cannot succeed by trying again.
      const sameInARow = wasReady ? (this.repeated.reset(), 0) : this.repeated.observe(record);
      const hopeless = retryable && this.repeated.exhausted(sameInARow);
      if (hopeless) retryable = false;
      const decision = this.policy.onFailure(Date.now(), { retryable, counts });
      const nextRetryAt = decision.retry ? new Date(Date.now() + decision.delayMs).toISOString() : undefined;
      record = {
        ...record,
        ...(hopeless ? { message: `${record.message} (the same failure ${sameInARow} attempts in a row: not retrying; fix the cause, then restart the server)`, sameFailureCount: sameInARow } : {}),
        retryable,
        attempt: decision.attempt,
        maxAttempts: decision.maxAttempts,
        ...(nextRetryAt === undefined ? {} : { nextRetryAt }),
      };
      this.error = record;
      this.log.line('lifecycle', `failed in ${this.error.phase} (${this.error.code}): ${this.error.message}${decision.retry ? `; retrying in ${decision.delayMs} ms` : '; not retrying'}`);
      if (!decision.retry) {
        this.setState('failed');
        return;
      }
      this.setState('backoff');
      try {
        await delay(decision.delayMs, signal);
      } catch {
        return;
      }
      this.restarts++;
    }
  }

  /**
   * A start phase that fails because its session container died (an extraction cut short, an
   * install killed with it) is SESSION_DEAD in that phase, whatever the phase itself saw.
   */
  private async sessionDeathOr(failure: Failure): Promise<Failure> {
    const { error } = failure;
    // Before the attempt has its session, `this.attempt` is the previous one's.
    const session = error.phase === 'box_unavailable' || error.phase === 'session_create' ? undefined : this.attempt?.session;
    if (session === undefined || error.code === 'SESSION_DEAD' || error.code === 'CONTAINER_DIED' || error.code === 'ENGINE_UNREACHABLE') return failure;
    const settleMs = EXEC_FAILURES.has(error.code) ? SESSION_DEATH_SETTLE_MS : 0;
    const alive = await session.checkAlive({ settleMs }).catch((err: unknown) => (isBoxError(err) && err.code === 'ENGINE_UNREACHABLE' ? null : true));
    if (alive === true) return failure;
    if (alive === null) {
      const away = new BoxError('ENGINE_UNREACHABLE', 'box_unavailable', `The Docker engine went away during ${error.phase}: ${error.message}`, { cause: error, details: { ...error.details, phase: error.phase } });
      return { ...failure, error: away, counts: false };
    }
    const dead = new BoxError('SESSION_DEAD', error.phase, `The session container died during ${error.phase} (${session.diedBecause ?? 'gone'}): ${error.message}`, { cause: error, details: { ...error.details } });
    return { ...failure, error: dead };
  }

  /**
   * Whether a failure spends the budget as far as session deaths go: the first failure a session's
   * death causes does; a later one of the same death (an exec refused by the dead container while
   * the next attempt staged) does not.
   */
  private chargeSessionDeath(error: BoxError): boolean {
    if (error.code !== 'CONTAINER_DIED' && error.code !== 'SESSION_DEAD') return true;
    const session = this.attempt?.session.info.containerId ?? null;
    if (session !== null && session === this.chargedDeath) return false;
    this.chargedDeath = session;
    return true;
  }

  private async startAttempt(signal: AbortSignal): Promise<void> {
    this.lastExit = null;
    this.consecutiveTimeouts = 0;
    this.toolsCount = undefined;
    this.setState('starting', 'box_unavailable');
    if (!this.host.boxEnabled) {
      throw new BoxError('BOX_DISABLED', 'box_unavailable', 'Sandboxing is disabled by config (box.enabled: false); mcp-box never runs servers on the host');
    }
    await this.host.runtime.ping({ signal, maxAgeMs: 2000 });

    this.setPhase('session_create');
    const session = await this.host.runtime.ensureSession(this.spec.profile, { signal, persistent: this.host.persistentSessions });
    this.attempt = { session, proc: null, relay: null, client: null, transport: null, startedAt: Date.now() };

    this.setPhase('workspace_stage');
    const folder = resolveHostFolder({ command: this.spec.command, args: this.spec.args, ...(this.spec.cwd === undefined ? {} : { cwd: this.spec.cwd }), hostPath: this.spec.hostPath }, this.host.configDir);
    const hostPath = folder.hostPath === null ? null : checkHostPolicy(folder.hostPath, { allowedRoots: this.spec.allowedRoots });
    // Again at every stage: a folder (or a link on its path) swapped since it was added.
    if (hostPath !== null && this.host.folderRules !== undefined) checkFolderRules(hostPath, this.host.folderRules(this.spec.allowedRoots));
    if (this.identity !== null && this.identity.session !== session) {
      if (session.holds(this.identity.identity)) {
        // A replacement session re-attached the dead one's volume: same uid, same folders.
        this.identity = { session, identity: this.identity.identity };
      } else {
        await this.identity.session.releaseIdentity(this.identity.identity).catch(() => undefined);
        this.identity = null;
      }
    }
    // The slot only: the stage below creates the identity's folders in the same exec.
    this.identity ??= { session, identity: await session.createIdentity({ signal, provision: false }) };
    const identity = this.identity.identity;
    const staged = await stageWorkspace({ session, identity, hostPath, limits: this.spec.stageLimits, caCertsFile: this.spec.caCertsFile, installOptions: this.spec.install, signal });
    for (const d of staged.stage.dropped) this.log.line('lifecycle', `staging dropped ${d.rel}: ${d.reason}`);
    this.log.line('lifecycle', `staged ${staged.stage.files} files (${staged.stage.bytes} bytes) in ${staged.stage.durationMs} ms`);
    const cmd =
      hostPath === null
        ? { command: this.spec.command, args: this.spec.args, cwd: this.spec.cwd ?? identity.workspace }
        : rewriteForContainer({ command: this.spec.command, args: this.spec.args, ...(this.spec.cwd === undefined ? {} : { cwd: this.spec.cwd }) }, hostPath, identity.workspace);

    this.setPhase('dep_install');
    const installed = await installDependencies({
      session,
      identity,
      staged,
      installOptions: this.spec.install,
      timeoutMs: this.spec.installTimeoutMs,
      tasks: this.host.tasks,
      subject: this.name,
      signal,
      onTask: (id) => {
        this.installTaskId = id;
        this.log.line('lifecycle', `installing dependencies (task ${id})`);
      },
    });
    this.log.line('lifecycle', installed.skipped ? `dependencies up to date (${installed.durationMs} ms)` : `installed ${installed.installed.join(' + ')} dependencies in ${installed.durationMs} ms`);

    this.setPhase('process_start');
    const env = { ...installed.env, ...this.spec.env };
    if (this.spec.env.PATH !== undefined && installed.env.PATH !== undefined) {
      // The server's own PATH comes after the venv / node_modules bins.
      const prefix = installed.env.PATH.slice(0, Math.max(0, installed.env.PATH.length - BASE_PATH.length)).replace(/:$/, '');
      env.PATH = prefix === '' ? this.spec.env.PATH : `${prefix}:${this.spec.env.PATH}`;
    }
    const proc = await session.startProcess({
      id: this.name,
      identity,
      cmd: [cmd.command, ...cmd.args],
      cwd: cmd.cwd,
      env,
      onStderr: (chunk) => this.log.write('stderr', chunk.toString('utf8')),
      ...(this.spec.processLimit === undefined ? {} : { processLimit: this.spec.processLimit }),
      fileSizeLimitBytes: this.spec.disk.maxBytes,
      signal,
    });
    this.attempt.proc = proc;
    void proc.exited.then((exit) => this.onExit(proc, exit));
    this.attempt.relay = this.host.relays.register(session.info.name, this.name, proc, {
      onNonJsonLine: (preview, bytes) => this.log.line('stdout', bytes > preview.length ? `${preview} … [${bytes} bytes in all]` : preview),
      onStdoutClosed: () => this.onStdoutClosed(proc),
      onEvent: (message) => this.log.line('lifecycle', `relay: ${message}`),
    });
    this.log.line('lifecycle', `process started (pid ${proc.pid} in ${session.info.name}, uid ${identity.uid})`);

    if (this.spec.client === 'external') {
      // Health comes from process and engine events; a command that is not there fails here.
      await this.raceExit(proc, delay(Math.min(EARLY_EXIT_MS, 500), signal));
      this.becomeReady();
      return;
    }

    this.setPhase('relay_connect');
    const deadline = Date.now() + this.spec.startupTimeoutMs;
    await this.connectClient(session, proc, signal, deadline);
    const tools = await this.attempt.client?.listTools(undefined, { timeout: this.spec.toolTimeoutMs }).catch(() => null);
    this.toolsCount = tools?.tools.length;
    this.becomeReady();
  }

  /** relay_connect then mcp_init; `initialize` is retried while the process lives, until the deadline. */
  private async connectClient(session: Session, proc: ManagedProcess, signal: AbortSignal, deadline: number): Promise<void> {
    const attempt = this.attempt as Attempt;
    for (let round = 1; ; round++) {
      this.setPhase('relay_connect');
      const transport = new WsClientTransport({ url: this.relayUrl(session), token: this.host.relayClientToken, takeover: true, signal });
      try {
        await this.raceExit(proc, transport.connect());
      } catch (err) {
        if (isBoxError(err) && err.phase !== 'relay_connect') throw err;
        throw new BoxError('RELAY_CONNECT_FAILED', 'relay_connect', `Cannot attach to the relay of "${this.name}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      this.setPhase('mcp_init');
      const client = new Client({ name: 'mcp-box', version: MCP_BOX_VERSION }, { capabilities: {} });
      const remaining = deadline - Date.now();
      try {
        // The SDK's request() never removes the abort listener it adds: each round gets its own signal.
        const round = linkedSignal(signal);
        try {
          await this.raceExit(proc, client.connect(transport, { timeout: Math.max(1000, Math.min(INIT_ATTEMPT_MS, remaining)), signal: round.signal }));
        } finally {
          round.release();
        }
        attempt.client = client;
        attempt.transport = transport;
        // Not transport.onclose: the SDK's own handler (which fails pending requests) lives there.
        client.onclose = () => this.onTransportClosed(client);
        return;
      } catch (err) {
        await client.close().catch(() => undefined);
        if (isBoxError(err)) throw err;
        const timedOut = err instanceof McpError && err.code === ErrorCode.RequestTimeout;
        if (timedOut && proc.running && Date.now() < deadline && !signal.aborted) {
          this.log.line('lifecycle', `no answer to initialize yet (attempt ${round}); the process is alive, trying again`);
          continue;
        }
        const tail = this.stderrTail();
        throw new BoxError(
          timedOut ? 'MCP_INIT_TIMEOUT' : 'MCP_INIT_FAILED',
          'mcp_init',
          timedOut
            ? `"${this.name}" did not answer initialize within its startup deadline (${Math.round(this.spec.startupTimeoutMs / 1000)} s)${tail === '' ? '' : `; stderr:\n${tail}`}`
            : `initialize failed: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
    }
  }

  private becomeReady(): void {
    this.readyAt = Date.now();
    this.policy.onReady(this.readyAt);
    this.repeated.reset();
    this.phase = undefined;
    this.setState('ready');
    this.log.line('lifecycle', `ready${this.toolsCount === undefined ? '' : ` (${this.toolsCount} tools)`}`);
    if (this.spec.client === 'supervisor' && this.spec.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => void this.ping(), this.spec.pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  /** Resolves with the failure that ends a ready server, or null when it is stopped. */
  private watch(): Promise<Failure | null> {
    return new Promise((resolve) => {
      this.watchResolve = (f) => {
        this.watchResolve = null;
        resolve(f);
      };
      if (this.lastExit !== null) this.onExit(this.attempt?.proc ?? null, this.lastExit);
    });
  }

  private onExit(proc: ManagedProcess | null, exit: ProcessExit): void {
    if (proc !== null && this.attempt?.proc !== proc) return;
    this.lastExit = exit;
    // Requests in flight fail now, not after their timeout.
    void this.attempt?.client?.close().catch(() => undefined);
    if (this.state === 'ready') this.watchResolve?.({ error: this.exitError(exit, 'runtime'), exit, counts: exit.reason !== 'engine_lost' });
  }

  private onTransportClosed(client: Client): void {
    const attempt = this.attempt;
    if (attempt === null || attempt.client !== client || this.state !== 'ready' || attempt.proc === null || !attempt.proc.running) return;
    const why = attempt.transport?.closeInfo;
    // The process is ending (its exit record decides) or closed its stdout (onStdoutClosed decides).
    if (why?.code === CLOSE_PROCESS_EXITED || why?.code === CLOSE_STDOUT_CLOSED) return;
    this.log.line('lifecycle', `relay connection dropped (${why?.code ?? '?'} ${why?.reason ?? ''}); reconnecting without restarting the process`);
    void (async () => {
      for (let i = 1; i <= RELAY_RECONNECT_ATTEMPTS; i++) {
        if (this.attempt !== attempt || attempt.proc === null || !attempt.proc.running) return;
        try {
          const transport = new WsClientTransport({ url: this.relayUrl(attempt.session), token: this.host.relayClientToken, takeover: true });
          await transport.connect();
          const next = new Client({ name: 'mcp-box', version: MCP_BOX_VERSION }, { capabilities: {} });
          await next.connect(transport, { timeout: INIT_ATTEMPT_MS });
          if (this.attempt !== attempt) return void next.close();
          attempt.client = next;
          attempt.transport = transport;
          next.onclose = () => this.onTransportClosed(next);
          this.log.line('lifecycle', 'relay reconnected');
          return;
        } catch (err) {
          this.log.line('lifecycle', `relay reconnect ${i}/${RELAY_RECONNECT_ATTEMPTS} failed: ${err instanceof Error ? err.message : String(err)}`);
          await delay(250 * i);
        }
      }
      if ((await this.exitSoon(attempt.proc)) !== null) return;
      this.watchResolve?.({ error: new BoxError('RELAY_DROPPED', 'runtime', `The relay of "${this.name}" dropped and could not be reconnected`) });
    })();
  }

  /** The relay found the process alive with its stdout closed: nothing it does can reach a client. */
  private onStdoutClosed(proc: ManagedProcess): void {
    if (this.attempt?.proc !== proc || this.state !== 'ready') return;
    this.watchResolve?.({ error: new BoxError('STDOUT_CLOSED', 'runtime', `"${this.name}" closed its stdout but kept running (pid ${proc.pid}): no answer can reach a client; restarting it`) });
  }

  private async ping(): Promise<void> {
    const client = this.attempt?.client;
    if (client == null || this.state !== 'ready') return;
    try {
      await client.ping({ timeout: Math.max(1000, Math.min(this.spec.pingIntervalMs, 30_000)) });
    } catch (err) {
      if (this.state !== 'ready' || this.attempt?.client !== client) return;
      // A process being killed (OOM) stops answering first: its exit is the better record.
      if ((await this.exitSoon(this.attempt?.proc)) !== null) return;
      if (this.state !== 'ready' || this.attempt?.client !== client) return;
      this.watchResolve?.({ error: new BoxError('SERVER_UNRESPONSIVE', 'runtime', `"${this.name}" did not answer ping: ${err instanceof Error ? err.message : String(err)}; restarting it`) });
    }
  }

  private async teardown(reason: string): Promise<void> {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
    const attempt = this.attempt;
    if (attempt === null) return;
    await attempt.client?.close().catch(() => undefined);
    if (attempt.relay !== null) this.host.relays.unregister(attempt.session.info.name, this.name, attempt.relay, reason);
    if (attempt.proc?.running === true) {
      const exit = await attempt.proc.stop();
      this.log.line('lifecycle', `process stopped (${exit.stoppedBy ?? exit.reason}, exit ${exit.exitCode})`);
    }
  }

  // ── calls ──────────────────────────────────────────────────────────────────────────────────

  private readyClient(what: string): Client {
    const client = this.client;
    if (client === undefined) {
      const why = this.spec.client === 'external' ? 'its MCP client is external (box.client: "external")' : `it is ${this.state}`;
      throw new BoxError('PROCESS_NOT_RUNNING', 'tool_call', `Cannot run ${what} on "${this.name}": ${why}`, { details: { state: this.state } });
    }
    return client;
  }

  private async guardCall<T>(what: string, call: () => Promise<T>, timeoutMs = this.spec.toolTimeoutMs): Promise<T> {
    const started = Date.now();
    try {
      return await call();
    } catch (err) {
      if (this.lastExit === null && err instanceof McpError && err.code === ErrorCode.ConnectionClosed) {
        // The relay closed: usually the process just ended. Its exit record follows within moments.
        await this.exitSoon(this.attempt?.proc);
      }
      if (this.lastExit !== null) {
        throw this.exitError(this.lastExit, 'runtime', `while ${what} was running`);
      }
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
        this.consecutiveTimeouts++;
        const error = new BoxError('TOOL_TIMEOUT', 'tool_call', `${what} of "${this.name}" did not answer within ${timeoutMs} ms; it was cancelled (notifications/cancelled sent) and the server stays up`, {
          cause: err,
          details: { timeoutMs, consecutiveTimeouts: this.consecutiveTimeouts },
        });
        this.error = this.record({ error }, { retryable: true, attempt: 0, maxAttempts: this.policy.maxAttempts, startedAt: started });
        if (this.spec.recycleAfterTimeouts > 0 && this.consecutiveTimeouts >= this.spec.recycleAfterTimeouts) {
          this.log.line('lifecycle', `${this.consecutiveTimeouts} tool calls in a row timed out: recycling the server`);
          this.watchResolve?.({ error: new BoxError('TOOL_TIMEOUT', 'tool_call', `recycled after ${this.consecutiveTimeouts} consecutive tool-call timeouts`) });
        }
        throw error;
      }
      // The relay answered in the process's place (it died, closed its stdout): its phase and code.
      const relayed = err instanceof McpError ? relayFailure(err.data) : null;
      if (relayed !== null) throw new BoxError(relayed.code, relayed.phase, `${what} of "${this.name}" got no answer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      const code = err instanceof McpError ? err.code : undefined;
      const error = new BoxError('TOOL_CALL_FAILED', 'tool_call', `${what} of "${this.name}" failed: ${this.redactor.redact(err instanceof Error ? err.message : String(err))}`, {
        cause: err,
        details: code === undefined ? {} : { jsonRpcCode: code },
      });
      this.error = this.record({ error }, { retryable: true, attempt: 0, maxAttempts: this.policy.maxAttempts, startedAt: started });
      throw error;
    }
  }

  // ── records ────────────────────────────────────────────────────────────────────────────────

  /**
   * Runs `work` unless the process ends first. When `work` fails, a process that is ending wins:
   * its exit record (127, OOM, …) says more than the relay error it caused.
   */
  private async raceExit<T>(proc: ManagedProcess, work: Promise<T>): Promise<T> {
    const exited = proc.exited.then((exit): never => {
      throw this.exitError(exit, this.phase ?? 'process_start');
    });
    try {
      return await Promise.race([work, exited]);
    } catch (err) {
      const exit = await this.exitSoon(proc);
      if (exit !== null) throw this.exitError(exit, this.phase ?? 'process_start');
      throw err;
    }
  }

  /** The process's exit record if it ends within a moment, else null. */
  private async exitSoon(proc: ManagedProcess | null | undefined, settleMs = EXIT_SETTLE_MS): Promise<ProcessExit | null> {
    if (proc == null) return null;
    return Promise.race([proc.exited, delay(settleMs).then(() => null)]);
  }

  private exitError(exit: ProcessExit, phase: ServerPhase, context = ''): BoxError {
    const early = Date.parse(exit.endedAt) - Date.parse(exit.startedAt) < EARLY_EXIT_MS;
    const notRunnable = exit.exitCode === 126 || exit.exitCode === 127;
    const at: ServerPhase = notRunnable && (early || this.state !== 'ready') ? 'process_start' : exit.reason === 'engine_lost' ? 'box_unavailable' : phase;
    const tooBig = exit.reason === 'exited' && exit.signal === 'SIGXFSZ';
    const code: BoxErrorCode = tooBig ? 'DISK_QUOTA_EXCEEDED' : exit.reason === 'oom' ? 'OOM_KILLED' : exit.reason === 'container_died' ? 'CONTAINER_DIED' : exit.reason === 'engine_lost' ? 'ENGINE_UNREACHABLE' : notRunnable ? 'PROCESS_START_FAILED' : 'PROCESS_EXITED';
    const what = tooBig
      ? `wrote a file past its disk quota of ${Math.round(this.spec.disk.maxBytes / 1024 / 1024)} MiB (box.diskMb) and was killed by SIGXFSZ`
      : exit.reason === 'oom'
        ? 'was killed by the OOM killer (memory limit reached)'
        : exit.reason === 'container_died'
          ? 'died with its session container'
          : exit.reason === 'engine_lost'
            ? 'lost contact with the Docker engine'
            : exit.exitCode === 127
              ? 'could not start: command not found (exit 127)'
              : exit.exitCode === 126
                ? 'could not start: command not executable (exit 126)'
                : `exited with ${exit.signal ?? `code ${exit.exitCode}`}`;
    return new BoxError(code, at, `"${this.name}" ${what}${context === '' ? '' : ` ${context}`}`, { details: { exit: { ...exit, stderrTail: this.redactor.redact(exit.stderrTail) } } });
  }

  private toFailure(err: unknown): Failure {
    let error = isBoxError(err) ? err : new BoxError('ENGINE_ERROR', this.phase ?? 'runtime', err instanceof Error ? err.message : String(err), { cause: err });
    // Session operations say `runtime`; while starting, the phase is the one that was running.
    if (error.phase === 'runtime' && this.state === 'starting' && this.phase !== undefined && this.phase !== 'runtime') {
      error = new BoxError(error.code, this.phase, error.message, { cause: error.cause, details: { ...error.details } });
    }
    const exit = (error.details.exit as ProcessExit | undefined) ?? undefined;
    return { error, ...(exit === undefined ? {} : { exit }), counts: error.code !== 'ENGINE_UNREACHABLE' };
  }

  private record(failure: Failure, info: { retryable: boolean; attempt: number; maxAttempts: number; startedAt: number; nextRetryAt?: string }): FailureRecord {
    const exit = failure.exit ?? (failure.error.details.exit as ProcessExit | undefined);
    const phase = (failure.error.phase === 'config' || failure.error.phase === 'image' || failure.error.phase === 'shutdown' ? this.phase ?? 'runtime' : failure.error.phase) as ServerPhase;
    return {
      phase,
      code: failure.error.code,
      message: this.redactor.redact(failure.error.message),
      retryable: info.retryable,
      ...(exit === undefined ? {} : { exitCode: exit.exitCode, signal: exit.signal, oomKilled: exit.oomKilled }),
      stderrTail: boundedTail(this.redactor.redact(exit?.stderrTail.split('\n').slice(-STDERR_TAIL_LINES).join('\n') ?? this.stderrTail())),
      durationMs: Date.now() - info.startedAt,
      attempt: info.attempt,
      maxAttempts: info.maxAttempts,
      ...(info.nextRetryAt === undefined ? {} : { nextRetryAt: info.nextRetryAt }),
      at: new Date().toISOString(),
    };
  }

  private stderrTail(): string {
    return this.log.tail('stderr', STDERR_TAIL_LINES).join('\n');
  }

  private relayUrl(session: Session): string {
    return `${this.host.relayBaseUrl()}${relayPath(session.info.name, this.name)}`;
  }

  private setPhase(phase: ServerPhase): void {
    this.phase = phase;
    this.host.emit({ name: this.name, state: this.state, previous: this.state, phase, at: new Date().toISOString() });
  }

  private setState(state: ServerState, phase?: ServerPhase): void {
    const previous = this.state;
    this.state = state;
    if (phase !== undefined) this.phase = phase;
    if (state === 'ready' || state === 'stopped') this.phase = undefined;
    if (state === 'backoff' || state === 'failed') this.phase = this.error?.phase;
    this.host.emit({
      name: this.name,
      state,
      previous,
      ...(this.phase === undefined ? {} : { phase: this.phase }),
      ...(this.error === undefined || state === 'ready' ? {} : { error: { ...this.error } }),
      at: new Date().toISOString(),
    });
  }
}

/** The `{ phase, code }` the relay puts in the `data` of the answers it gives in a process's place. */
function relayFailure(data: unknown): { phase: ServerPhase; code: BoxErrorCode } | null {
  if (typeof data !== 'object' || data === null) return null;
  const { phase, code } = data as { phase?: unknown; code?: unknown };
  if (typeof phase !== 'string' || typeof code !== 'string' || !(SERVER_PHASES as readonly string[]).includes(phase)) return null;
  return { phase: phase as ServerPhase, code: code as BoxErrorCode };
}

/** A failure record's stderr tail: its last STDERR_TAIL_BYTES, starting at a line. */
function boundedTail(text: string): string {
  if (text.length <= STDERR_TAIL_BYTES) return text;
  const tail = text.slice(-STDERR_TAIL_BYTES);
  const newline = tail.indexOf('\n');
  return newline === -1 || newline > STDERR_TAIL_BYTES / 2 ? tail : tail.slice(newline + 1);
}
